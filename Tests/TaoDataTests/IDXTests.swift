import XCTest
import Foundation
@testable import TaoData

final class IDXTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("idx-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ bytes: [UInt8], gzip: Bool = false) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        if gzip {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/gzip")
            p.arguments = ["-f", url.path]
            try p.run(); p.waitUntilExit()
            return url.path + ".gz"
        }
        return url.path
    }

    func header(_ dims: [Int]) -> [UInt8] {
        [0, 0, 8, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8((d >> (8 * (3 - $0))) & 0xFF) } }
    }

    func testReadsGzippedImagesAndLabels() throws {
        let img = try write("img", header([2, 2, 3]) + [0, 255, 51, 0, 0, 0, 1, 2, 3, 4, 5, 6], gzip: true)
        let lab = try write("lab", header([2]) + [7, 2], gzip: true)
        let set = try LabelledImages(idxImages: img, idxLabels: lab)
        XCTAssertEqual(set.count, 2)
        XCTAssertEqual(set.labels, [7, 2])
        XCTAssertEqual(set.shape, [1, 2, 3])
        XCTAssertEqual(set.images[1], 1)
        XCTAssertEqual(set.images[2], 0.2, accuracy: 1e-6)
        XCTAssertEqual(set.classes, 8)
    }

    func testTruncatedFileIsAnErrorNamingTheFile() throws {
        let img = try write("short", header([2, 2, 2]) + [1, 2, 3])
        XCTAssertThrowsError(try IDXFile(path: img)) { e in
            XCTAssertTrue("\(e)".contains("short") && "\(e)".contains("8 bytes"), "\(e)")
        }
    }

    func testNotAnIDXFileAndMissingFile() throws {
        let junk = try write("junk.txt", Array("hello world".utf8))
        XCTAssertThrowsError(try IDXFile(path: junk)) { e in XCTAssertTrue("\(e)".contains("magic"), "\(e)") }
        XCTAssertThrowsError(try IDXFile(path: dir.appendingPathComponent("nope").path)) { e in XCTAssertTrue("\(e)".contains("no such file"), "\(e)") }
    }

    func testLabelCountMismatchNamesBothFiles() throws {
        let img = try write("img", header([2, 1, 1]) + [1, 2])
        let lab = try write("lab", header([3]) + [1, 2, 3])
        XCTAssertThrowsError(try LabelledImages(idxImages: img, idxLabels: lab)) { e in
            XCTAssertTrue("\(e)".contains("lab") && "\(e)".contains("img"), "\(e)")
        }
    }
}
