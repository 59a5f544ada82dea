import XCTest
import Foundation
import TaoData
import TaoTensor
import TaoTestSupport
@testable import TaoTasks

/// YOLO's anchor k-medians (TAO's kmeans) against an independent numpy implementation, the boxes
/// read from KITTI folders, the report, and bad input.
final class AnchorKMeansTests: XCTestCase {
    func testMatchesNumpyReferenceFromTheSameStart() throws {
        var rng = SplitMix64(seed: 3)
        func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
        // Three populations of sizes (small squares, wide, tall) with noise, as labels tend to be.
        let boxes = (0..<300).map { i -> AnchorKMeans.Size in
            let (w, h) = [(0.05, 0.06), (0.3, 0.12), (0.1, 0.4)][i % 3]
            return AnchorKMeans.Size(width: w * (0.6 + 0.8 * uniform()), height: h * (0.6 + 0.8 * uniform()))
        }
        for (k, seed) in [(9, UInt64(1)), (6, 7), (3, 11)] {
            let start = AnchorKMeans.initialIndices(n: boxes.count, count: k, seed: seed)
            XCTAssertEqual(Set(start).count, k, "distinct starting boxes")
            let ours = try AnchorKMeans.cluster(boxes, initial: start)
            let spec: [String: Any] = ["boxes": boxes.map { [$0.width, $0.height] }, "initial": start, "max_steps": 10_000]
            let out = try PythonReference.run("Tests/TaoTasksTests/kmeans_reference.py", input: try JSONSerialization.data(withJSONObject: spec))
            let ref = try XCTUnwrap(try JSONSerialization.jsonObject(with: out) as? [String: Any])
            let centers = try XCTUnwrap(ref["centers"] as? [[Double]])
            XCTAssertEqual(ours.steps, ref["steps"] as? Int, "k \(k)")
            XCTAssertEqual(ours.centers.count, k)
            for (c, r) in zip(ours.centers, centers) {
                XCTAssertEqual(c.width, r[0], accuracy: 1e-12); XCTAssertEqual(c.height, r[1], accuracy: 1e-12)
            }
            XCTAssertTrue(zip(ours.centers, ours.centers.dropFirst()).allSatisfy { $0.area <= $1.area }, "sorted by area")
            XCTAssertGreaterThan(ours.steps, 1)
        }
        // With a round limit it stops there.
        XCTAssertEqual(try AnchorKMeans.cluster(boxes, initial: [0, 1, 2, 3], maxSteps: 1).steps, 1)
    }

    func testIoUOfCornerAlignedBoxes() {
        let a = AnchorKMeans.Size(width: 0.2, height: 0.1), b = AnchorKMeans.Size(width: 0.1, height: 0.3)
        // Intersection 0.1 × 0.1; union 0.02 + 0.03 − 0.01.
        XCTAssertEqual(AnchorKMeans.iou(a, b), 0.01 / 0.04, accuracy: 1e-15)
        XCTAssertEqual(AnchorKMeans.iou(a, a), 1, accuracy: 1e-15)
    }

    func testBoxesFromKITTIFoldersRelativeToEachImage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kmeans-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sub in ["a/images", "a/labels", "b/images", "b/labels"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        func image(_ path: String, _ w: Int, _ h: Int) throws {
            try Data(ImageCodec.encodePNG(Image(width: w, height: h, channels: 3, pixels: [UInt8](repeating: 90, count: w * h * 3)))).write(to: URL(fileURLWithPath: path))
        }
        func label(_ path: String, _ boxes: [(Double, Double, Double, Double)]) throws {
            let text = boxes.map { "car 0.00 0 0.00 \($0.0) \($0.1) \($0.2) \($0.3) 0 0 0 0 0 0 0" }.joined(separator: "\n") + "\n"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        try image("\(dir)/a/images/0.png", 200, 100); try label("\(dir)/a/labels/0.txt", [(10, 10, 60, 35), (0, 0, 4, 80)])
        try image("\(dir)/b/images/1.png", 50, 40); try label("\(dir)/b/labels/1.txt", [(5, 4, 30, 24)])
        let all = try AnchorKMeans.boxes(labelFolders: ["\(dir)/a/labels", "\(dir)/b/labels"], imageFolders: ["\(dir)/a/images", "\(dir)/b/images"])
        XCTAssertEqual(all, [.init(width: 0.25, height: 0.25), .init(width: 0.02, height: 0.8), .init(width: 0.5, height: 0.5)])
        // min_x / size_x: boxes not wider than 3% of the image are left out.
        XCTAssertEqual(try AnchorKMeans.boxes(labelFolders: ["\(dir)/a/labels"], imageFolders: ["\(dir)/a/images"], minWidth: 0.03).count, 1)
        XCTAssertThrowsError(try AnchorKMeans.boxes(labelFolders: ["\(dir)/a/labels"], imageFolders: [])) { XCTAssertTrue("\($0)".contains("pair one to one"), "\($0)") }
        try image("\(dir)/a/images/2.png", 20, 20)
        XCTAssertThrowsError(try AnchorKMeans.boxes(labelFolders: ["\(dir)/a/labels"], imageFolders: ["\(dir)/a/images"])) {
            XCTAssertTrue("\($0)".contains("2.png") && "\($0)".contains("has no label file"), "\($0)")
        }
        try label("\(dir)/a/labels/2.txt", [(5, 5, 30, 10)])
        XCTAssertThrowsError(try AnchorKMeans.boxes(labelFolders: ["\(dir)/a/labels"], imageFolders: ["\(dir)/a/images"])) {
            XCTAssertTrue("\($0)".contains("2.txt:1") && "\($0)".contains("outside"), "\($0)")
        }
        XCTAssertThrowsError(try AnchorKMeans.fit(all, clusters: 3, seed: 1)) { XCTAssertTrue("\($0)".contains("3 clusters need more boxes"), "\($0)") }
    }

    func testReportAsTAOPrintsAndAsSpecLines() {
        let centers = (1...6).map { AnchorKMeans.Size(width: Double($0) / 10, height: Double($0) / 20) }
        let tiny = AnchorKMeans.report(centers, width: 416, height: 256, scales: 2)
        XCTAssertEqual(tiny[1], "(41.60, 12.80)")
        XCTAssertEqual(tiny.last, "big_anchor_shape: \"[(166.40, 51.20), (208.00, 64.00), (249.60, 76.80)]\"")
        XCTAssertTrue(tiny.contains("mid_anchor_shape: \"[(41.60, 12.80), (83.20, 25.60), (124.80, 38.40)]\""))
        let v4 = AnchorKMeans.report(centers, width: 416, height: 256, scales: 3)
        XCTAssertTrue(v4.contains("small_anchor_shape: \"[(41.60, 12.80), (83.20, 25.60)]\""))
        XCTAssertEqual(AnchorKMeans.report(Array(centers.prefix(5)), width: 416, height: 256, scales: 3).count, 6, "5 anchors do not split in 3: TAO's lines only")
    }
}
