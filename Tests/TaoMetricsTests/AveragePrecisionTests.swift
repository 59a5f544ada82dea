import XCTest
import Foundation
@testable import TaoMetrics
import TaoTestSupport

final class AveragePrecisionTests: XCTestCase {
    func ap(_ d: [Detection], _ g: [GroundTruth], classes: Int = 1, iou: [Double]? = nil, _ mode: APMode) -> [ClassAP] {
        AveragePrecision.evaluate(detections: d, groundTruth: g, classes: classes, iouThreshold: iou ?? Array(repeating: 0.5, count: classes), mode: mode)
    }

    /// Hit, miss, hit: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 (worked by hand).
    func testHandWorkedCurveGivesVOC07AndAreaAP() {
        let g = [GroundTruth(image: 0, classIndex: 0, box: Box(0, 0, 10, 10)), GroundTruth(image: 0, classIndex: 0, box: Box(20, 20, 30, 30))]
        let d = [Detection(image: 0, classIndex: 0, box: Box(0, 0, 10, 10), score: 0.9),
                 Detection(image: 0, classIndex: 0, box: Box(50, 50, 60, 60), score: 0.8),
                 Detection(image: 0, classIndex: 0, box: Box(20, 20, 30, 31), score: 0.7)]   // IoU 100/110
        let s = ap(d, g, .sample)[0]
        XCTAssertEqual(s.precision, [1, 0.5, 2.0 / 3], accuracy: 1e-12)
        XCTAssertEqual(s.recall, [0.5, 0.5, 1], accuracy: 1e-12)
        XCTAssertEqual(s.ap!, (6 + 5 * 2.0 / 3) / 11, accuracy: 1e-12)        // 6 recall points at precision 1, 5 at 2/3
        XCTAssertEqual(ap(d, g, .integrate)[0].ap!, 0.5 * 1 + 0.5 * 2.0 / 3, accuracy: 1e-12)
        // Order by score, not by position in the list.
        XCTAssertEqual(ap(d.reversed(), g, .integrate)[0].ap!, 0.5 + 1.0 / 3, accuracy: 1e-12)
    }

    func testSecondMatchOfABoxIsAFalsePositive() {
        let g = [GroundTruth(image: 0, classIndex: 0, box: Box(0, 0, 10, 10))]
        let d = [Detection(image: 0, classIndex: 0, box: Box(0, 0, 10, 10), score: 0.9), Detection(image: 0, classIndex: 0, box: Box(1, 0, 10, 10), score: 0.8)]
        let r = ap(d, g, .integrate)[0]
        XCTAssertEqual([r.truePositives, r.falsePositives], [1, 1])
        XCTAssertEqual(r.ap!, 1, accuracy: 1e-12)
        // Precision falls to 1/2 at the duplicate; recall stays 1.
        XCTAssertEqual(r.precision, [1, 0.5], accuracy: 1e-12)
    }

    func testDifficultBoxesAreNeitherHitsNorMisses() {
        let g = [GroundTruth(image: 0, classIndex: 0, box: Box(0, 0, 10, 10), difficult: true), GroundTruth(image: 0, classIndex: 0, box: Box(20, 0, 30, 10))]
        let d = [Detection(image: 0, classIndex: 0, box: Box(0, 0, 10, 10), score: 0.9), Detection(image: 0, classIndex: 0, box: Box(20, 0, 30, 10), score: 0.5)]
        let r = ap(d, g, .sample)[0]
        XCTAssertEqual([r.groundTruth, r.truePositives, r.falsePositives], [1, 1, 0])
        XCTAssertEqual(r.ap!, 1, accuracy: 1e-12)
        // With the difficult box not labelled at all, its detection is a false positive and the other box is missed.
        XCTAssertEqual(ap(Array(d.prefix(1)), Array(g.suffix(1)), .sample)[0].ap!, 0, accuracy: 1e-12)
    }

    func testPerClassOverlapThresholdsAndOtherImagesDoNotMatch() {
        let g = [GroundTruth(image: 0, classIndex: 0, box: Box(0, 0, 10, 10)), GroundTruth(image: 1, classIndex: 1, box: Box(0, 0, 10, 10))]
        let d = [Detection(image: 0, classIndex: 0, box: Box(0, 0, 10, 6), score: 0.9),    // IoU 0.6
                 Detection(image: 0, classIndex: 1, box: Box(0, 0, 10, 10), score: 0.9)]   // class 1's box is in image 1
        let loose = ap(d, g, classes: 2, iou: [0.5, 0.5], .sample)
        XCTAssertEqual(loose[0].ap!, 1, accuracy: 1e-12)
        XCTAssertEqual(loose[1].ap!, 0, accuracy: 1e-12)
        XCTAssertEqual(ap(d, g, classes: 2, iou: [0.7, 0.5], .sample)[0].ap!, 0, accuracy: 1e-12)
        XCTAssertEqual(AveragePrecision.mean(loose), 0.5, accuracy: 1e-12)
    }

    func testClassWithoutGroundTruthHasNoAPAndMeanSkipsIt() {
        let g = [GroundTruth(image: 0, classIndex: 0, box: Box(0, 0, 10, 10))]
        let d = [Detection(image: 0, classIndex: 0, box: Box(0, 0, 10, 10), score: 0.9), Detection(image: 0, classIndex: 1, box: Box(0, 0, 5, 5), score: 0.9)]
        let r = ap(d, g, classes: 2, .integrate)
        XCTAssertNil(r[1].ap)
        XCTAssertEqual(r[1].falsePositives, 1)
        XCTAssertEqual(AveragePrecision.mean(r), 1, accuracy: 1e-12)
    }

    /// Random scenes against an independent numpy implementation of VOC's evaluation (voc_ap.py).
    func testRandomScenesMatchAnIndependentVOCImplementation() throws {
        var seed: UInt64 = 12345
        func rand() -> Double { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Double(seed >> 11) / Double(1 << 53) }
        for trial in 0..<6 {
            let classes = 3
            var g: [GroundTruth] = [], d: [Detection] = []
            for image in 0..<8 {
                for _ in 0..<Int(rand() * 5) {
                    let c = Int(rand() * Double(classes)), x = rand() * 80, y = rand() * 80, w = 5 + rand() * 30, h = 5 + rand() * 30
                    g.append(GroundTruth(image: image, classIndex: c, box: Box(x, y, x + w, y + h), difficult: rand() < 0.15))
                    for _ in 0..<Int(rand() * 3) {   // near-misses, duplicates and good hits
                        let j = { (s: Double) in (rand() - 0.5) * s }
                        d.append(Detection(image: image, classIndex: rand() < 0.85 ? c : (c + 1) % classes,
                                           box: Box(x + j(w * 0.6), y + j(h * 0.6), x + w + j(w * 0.6), y + h + j(h * 0.6)), score: (rand() * 1000).rounded() / 1000))
                    }
                }
                for _ in 0..<Int(rand() * 3) {   // background false positives
                    let x = rand() * 90, y = rand() * 90
                    d.append(Detection(image: image, classIndex: Int(rand() * Double(classes)), box: Box(x, y, x + 8, y + 8), score: rand()))
                }
            }
            let iou = [0.5, 0.7, 0.3]
            for mode in APMode.allCases {
                let ours = ap(d, g, classes: classes, iou: iou, mode).map(\.ap)
                let ref = try Self.reference(d, g, classes: classes, iou: iou, mode: mode)
                for c in 0..<classes {
                    if let r = ref[c] { XCTAssertEqual(ours[c] ?? -1, r, accuracy: 1e-9, "trial \(trial) \(mode) class \(c)") }
                    else { XCTAssertNil(ours[c], "trial \(trial) class \(c)") }
                }
            }
        }
    }

    static func reference(_ d: [Detection], _ g: [GroundTruth], classes: Int, iou: [Double], mode: APMode) throws -> [Double?] {
        let spec: [String: Any] = [
            "classes": classes, "iou": iou, "mode": mode.rawValue,
            "detections": d.map { [Double($0.image), Double($0.classIndex), $0.box.x1, $0.box.y1, $0.box.x2, $0.box.y2, $0.score] },
            "ground_truth": g.map { [Double($0.image), Double($0.classIndex), $0.box.x1, $0.box.y1, $0.box.x2, $0.box.y2, $0.difficult ? 1 : 0] },
        ]
        let out = try PythonReference.run("Tests/TaoMetricsTests/voc_ap.py", input: try JSONSerialization.data(withJSONObject: spec))
        return (try JSONSerialization.jsonObject(with: out) as! [Any]).map { $0 as? Double }
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "lengths", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}

final class ConfusionMatrixTests: XCTestCase {
    func testPerClassPrecisionRecallAndTopK() {
        var m = ConfusionMatrix(classes: 2)
        for (t, p) in [(0, 0), (0, 0), (0, 1), (1, 1)] { m.add(truth: t, predicted: p) }
        XCTAssertEqual(m.accuracy, 0.75)
        XCTAssertEqual(m.perClass[0].precision, 1); XCTAssertEqual(m.perClass[0].recall, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.perClass[1].precision, 0.5); XCTAssertEqual(m.perClass[1].recall, 1)
        let scores: [Float] = [0.1, 0.5, 0.5, 0.2]
        scores.withUnsafeBufferPointer { s in
            XCTAssertTrue(inTopK(s, label: 1, k: 1))     // ties go to the lower index
            XCTAssertFalse(inTopK(s, label: 2, k: 1))
            XCTAssertTrue(inTopK(s, label: 2, k: 2))
            XCTAssertFalse(inTopK(s, label: 0, k: 3))
        }
    }
}
