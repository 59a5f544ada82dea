import XCTest
@testable import TaoSpec

/// The anchor-shape strings of TAO's YOLO specs, read as Python would evaluate them, and their errors.
final class AnchorShapesTests: XCTestCase {
    func parse(_ s: String) throws -> [AnchorShapes.Shape] { try AnchorShapes.parse(s, field: "big_anchor_shape", file: "spec.txt", line: 7) }

    func testTheFormsTAOSpecsUse() throws {
        // NVIDIA's yolo_v4 KITTI example.
        XCTAssertEqual(try parse("[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]"),
                       [.init(width: 114.94, height: 60.67), .init(width: 159.06, height: 114.59), .init(width: 297.59, height: 176.38)])
        // Tuples of lists, integers, a trailing comma, spaces and line breaks, exponents, underscores.
        XCTAssertEqual(try parse(" ( [10,14] , [23, 27], ) "), [.init(width: 10, height: 14), .init(width: 23, height: 27)])
        XCTAssertEqual(try parse("[(1e2, 2.5E-1), (1_000, +3.)]"), [.init(width: 100, height: 0.25), .init(width: 1000, height: 3)])
        XCTAssertEqual(try parse("[(.5, 7)]"), [.init(width: 0.5, height: 7)])
    }

    func testBadShapesNameTheFieldAndWhere() {
        func fails(_ s: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try parse(s), file: file, line: line) { e in
                let m = "\(e)"
                XCTAssertTrue(m.hasPrefix("spec.txt:7: big_anchor_shape: "), m, file: file, line: line)
                XCTAssertTrue(m.contains(expected), m, file: file, line: line)
            }
        }
        fails("[(10, 14), (23, 27, 5)]", "anchor 2 has 3 numbers")
        fails("[(10, 14), (23)]", "anchor 2 has 1 numbers")
        fails("[]", "no anchor shapes")
        fails("", "expected '[' or '(' at character 1")
        fails("[(10, 14) (23, 27)]", "expected ',' or ']' at character 11")
        fails("[(10, 14), (23, 27)", "missing ']'")
        fails("[(10, x)]", "expected a number at character 7")
        fails("[(10, 14)] extra", "unexpected text after the list at character 12")
        fails("[(10, -14)]", "widths and heights must be above 0")
        fails("[(10, 1e999)]", "expected a number")
        fails("10, 14", "expected '[' or '('")
    }
}
