import Foundation
import TaoData
import TaoTestSupport
import XCTest
@testable import TaoReport

/// Event files read back by TensorBoard's own reader (tensorboard_read.py, .venv's tensorboard).
final class EventWriterTests: XCTestCase {
    struct Read: Decodable {
        struct TensorEvents: Decodable {
            struct Row: Decodable { var step: Int; var shape: [Int]; var value: AnyValue }
            var plugin: String
            var events: [Row]
        }
        var scalars: [String: [[Double]]]
        var images: [String: [[AnyValue]]]
        var tensors: [String: TensorEvents]
    }

    /// A JSON value of the reader's output: a number, a bool, a string or a (nested) list.
    enum AnyValue: Decodable {
        case number(Double), bool(Bool), string(String), list([AnyValue])
        init(from d: Decoder) throws {
            let c = try d.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) } else if let n = try? c.decode(Double.self) { self = .number(n) }
            else if let s = try? c.decode(String.self) { self = .string(s) } else { self = .list(try c.decode([AnyValue].self)) }
        }
        var number: Double? { if case .number(let n) = self { return n }; return nil }
        var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
        var list: [AnyValue] { if case .list(let l) = self { return l }; return [] }
        var string: String? { if case .string(let s) = self { return s }; return nil }
    }

    func read(_ dir: String) throws -> Read {
        try JSONDecoder().decode(Read.self, from: PythonReference.run("Tests/TaoReportTests/tensorboard_read.py", arguments: [dir]))
    }

    func testTensorBoardReadsOurScalarsImagesTextAndPRCurves() throws {
        let dir = NSTemporaryDirectory() + "tao-events-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try EventWriter(dir: dir)
        XCTAssertTrue((w.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents."))
        let losses = [0.6931, 0.52, 0.4375]
        for (i, l) in losses.enumerated() { try w.scalars([("loss", l), ("val_mAP", i == 1 ? .nan : 0.25 * Double(i))], step: i + 1) }
        let chart = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "s", values: [1, 2], color: RGB.series(0))])
        let png = try chart.png()
        try w.image("validation/images", png: png, width: chart.width, height: chart.height, step: 3)
        try w.text("spec", "    model_config {\n      arch: \"resnet\"\n    }", step: 0)
        // 3 thresholds: 0, 0.5, 1.
        try w.prCurve("evaluate/pr_car", truePositives: [8, 5, 0], falsePositives: [4, 1, 0], trueNegatives: [0, 0, 0], falseNegatives: [2, 5, 10], step: 7)
        // A second writer in the same folder (a resumed run): TensorBoard reads both files as one run.
        try EventWriter(dir: dir).scalars([("loss", 0.25)], step: 4)

        let r = try read(dir)
        XCTAssertEqual(r.scalars["loss"]?.map { $0[0] }, [1, 2, 3, 4])
        for (got, want) in zip(r.scalars["loss"]!.map { $0[1] }, losses + [0.25]) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        XCTAssertEqual(r.scalars["val_mAP"]?.map { $0[0] }, [1, 3], "the NaN of epoch 2 is left out")
        let img = try XCTUnwrap(r.images["validation/images"]?.first)
        XCTAssertEqual(img[0].number, 3); XCTAssertEqual(img[1].number, Double(chart.width)); XCTAssertEqual(img[2].number, Double(chart.height))
        XCTAssertEqual(img[3].number, Double(png.count)); XCTAssertEqual(img[4].number, 1, "a PNG")
        let text = try XCTUnwrap(r.tensors["spec"])
        XCTAssertEqual(text.plugin, "text")
        XCTAssertEqual(text.events.first?.value.list.first?.string, "    model_config {\n      arch: \"resnet\"\n    }")
        let pr = try XCTUnwrap(r.tensors["evaluate/pr_car"])
        XCTAssertEqual(pr.plugin, "pr_curves")
        XCTAssertEqual(pr.events.first?.shape, [6, 3])
        XCTAssertEqual(pr.events.first?.step, 7)
        let rows = pr.events.first!.value.list.map { $0.list.compactMap(\.number) }
        XCTAssertEqual(rows[0], [8, 5, 0]); XCTAssertEqual(rows[1], [4, 1, 0]); XCTAssertEqual(rows[3], [2, 5, 10])
        XCTAssertEqual(rows[4][0], 8.0 / 12, accuracy: 1e-6); XCTAssertEqual(rows[4][1], 5.0 / 6, accuracy: 1e-6)
        XCTAssertEqual(rows[5][0], 0.8, accuracy: 1e-6); XCTAssertEqual(rows[5][2], 0, accuracy: 1e-6)
    }
}
