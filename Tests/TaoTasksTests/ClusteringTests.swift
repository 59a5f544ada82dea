import XCTest
import Foundation
import TaoMetrics
@testable import TaoTasks
import TaoTestSupport

final class ClusteringTests: XCTestCase {
    /// Random clumps of jittered boxes (as a detector's neighbouring grid cells predict them), with
    /// coverage weights: our DBSCAN gives scikit-learn's labels exactly.
    func testDBSCANMatchesScikitLearnOnOneMinusIoUWithCoverageWeights() throws {
        var seed: UInt64 = 99
        func rand() -> Double { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Double(seed >> 11) / Double(1 << 53) }
        var clusters = 0, noise = 0
        for trial in 0..<8 {
            var boxes: [ScoredBox] = []
            for _ in 0..<(2 + Int(rand() * 5)) {
                let (x, y, w, h) = (rand() * 200, rand() * 200, 10 + rand() * 40, 10 + rand() * 40)
                for _ in 0..<(1 + Int(rand() * 12)) {
                    let j = { (s: Double) in (rand() - 0.5) * s * 0.15 }
                    boxes.append(ScoredBox(Box(x + j(w), y + j(h), x + w + j(w), y + h + j(h)), score: 0.01 + rand()))
                }
            }
            let (eps, minSamples) = ([0.15, 0.3, 0.5][trial % 3], [1.0, 2, 3, 1][trial % 4])   // scikit-learn takes whole numbers, as TAO passes them
            let ours = DBSCAN.labels(boxes, eps: eps, minSamples: minSamples)
            let theirs = try Self.sklearn(boxes, eps: eps, minSamples: minSamples)
            XCTAssertEqual(ours, theirs, "trial \(trial): eps \(eps), min_samples \(minSamples)")
            clusters += Set(ours.filter { $0 >= 0 }).count
            noise += ours.filter { $0 < 0 }.count
        }
        XCTAssertGreaterThan(clusters, 16, "the scenes should make clusters")
        XCTAssertGreaterThan(noise, 4, "and noise")
    }

    /// Hand-worked: two cells on one object and a lone weak cell elsewhere.
    func testClusterBoxIsTheCoverageWeightedMeanWithSummedCoverage() {
        var c = ClusteringConfig()
        (c.eps, c.minSamples, c.coverageThreshold, c.confidenceThreshold, c.minimumBoxHeight) = (0.3, 1, 0.05, 0.2, 4)
        let cells = [ScoredBox(Box(0, 0, 10, 20), score: 0.7), ScoredBox(Box(1, 0, 11, 20), score: 0.5),   // IoU 0.818, coverage 1.2 ≥ 1
                     ScoredBox(Box(100, 100, 110, 120), score: 0.3),                                          // alone, 0.3 < 1: noise
                     ScoredBox(Box(0, 0, 10, 20), score: 0.04),                                               // below the coverage threshold
                     ScoredBox(Box(50, 50, 60, 53), score: 0.9)]                                              // 3 px tall: dropped
        let out = BoxClustering.cluster(cells, c)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out[0].score, 1.2, accuracy: 1e-12)
        XCTAssertEqual(out[0].box.x1, (0 * 0.7 + 1 * 0.5) / 1.2, accuracy: 1e-12)
        XCTAssertEqual(out[0].box.x2, (10 * 0.7 + 11 * 0.5) / 1.2, accuracy: 1e-12)
        XCTAssertEqual(out[0].box.y2, 20, accuracy: 1e-12)
        c.confidenceThreshold = 1.3
        XCTAssertTrue(BoxClustering.cluster(cells, c).isEmpty, "summed coverage 1.2 is below 1.3")
    }

    func testNMSKeepsTheBestOfOverlappingBoxes() {
        let boxes = [ScoredBox(Box(0, 0, 10, 10), score: 0.5), ScoredBox(Box(1, 1, 11, 11), score: 0.9),
                     ScoredBox(Box(20, 20, 30, 30), score: 0.7), ScoredBox(Box(0, 0, 10, 10.5), score: 0.4)]
        XCTAssertEqual(NMS.suppress(boxes, iouThreshold: 0.5).map(\.score), [0.9, 0.7])
        XCTAssertEqual(NMS.suppress(boxes, iouThreshold: 0.95).map(\.score), [0.9, 0.7, 0.5])
        XCTAssertEqual(NMS.suppress(boxes, iouThreshold: 0.5, topK: 1).map(\.score), [0.9])
    }

    static func sklearn(_ boxes: [ScoredBox], eps: Double, minSamples: Double) throws -> [Int] {
        let spec: [String: Any] = ["eps": eps, "min_samples": minSamples,
                                   "boxes": boxes.map { [$0.box.x1, $0.box.y1, $0.box.x2, $0.box.y2, $0.score] }]
        let out = try PythonReference.run("Tests/TaoTasksTests/sklearn_dbscan.py", input: try JSONSerialization.data(withJSONObject: spec))
        return try JSONDecoder().decode([Int].self, from: out)
    }
}
