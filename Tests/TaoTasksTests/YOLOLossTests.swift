import XCTest
import Foundation
import TaoMetrics
@testable import TaoTasks
import TaoTensor
import TaoTestSupport

/// YOLO's anchor matching, losses and decoding: matches worked by hand, totals against numpy
/// written from TAO's loss code, gradients against central finite differences.
final class YOLOLossTests: XCTestCase {
    /// Two heads (3×2 and 6×4 cells), two anchors each, three classes.
    let layout = YOLOLayout(heads: [YOLOHead(gridWidth: 3, gridHeight: 2, anchors: [(0.5, 0.6), (0.3, 0.4)], xyScale: 1.05),
                                    YOLOHead(gridWidth: 6, gridHeight: 4, anchors: [(0.2, 0.15), (0.1, 0.25)], xyScale: 1.1)], classes: 3)

    let objects: [[(classIndex: Int, box: Box)]] = [
        [(0, Box(0.10, 0.20, 0.55, 0.80)), (2, Box(0.60, 0.50, 0.78, 0.66))],
        [(1, Box(0.40, 0.05, 0.52, 0.32))],
    ]

    func outputs(seed: UInt64, scale: Float = 0.6) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return layout.heads.indices.map { h in (0..<(2 * layout.perImage(h))).map { _ in Float(rng.nextDouble() * 2 - 1) * scale } }
    }

    func targets(v4: Bool) -> [YOLOTargets] {
        objects.map { YOLOTargets(objects: $0, layout: layout, matchingIoU: v4 ? 0.25 : nil, classWeights: [1, 0.5, 2]) }
    }

    func loss(_ v: YOLOLoss.Version) -> YOLOLoss {
        var l = YOLOLoss(version: v, layout: layout)
        (l.locWeight, l.negativeWeight, l.classWeight, l.neutralIoU) = (0.8, 3, 1.5, 0.3)
        return l
    }

    func value(_ l: YOLOLoss, _ out: [[Float]], _ t: [YOLOTargets], gradients: [UnsafeMutablePointer<Float>]? = nil) -> Double {
        out[0].withUnsafeBufferPointer { a in out[1].withUnsafeBufferPointer { b in
            l(outputs: [a.baseAddress!, b.baseAddress!], targets: t, gradients: gradients).total
        } }
    }

    /// The box (0.10, 0.20)–(0.55, 0.80) is 0.45 × 0.60 with its centre at (0.325, 0.5): its best
    /// anchor by shape IoU is the big head's 0.5 × 0.6 (IoU 0.27 / 0.30 = 0.9), in cell column
    /// ⌊0.325 · 3⌋ = 0, row ⌊0.5 · 2⌋ = 1. YOLOv4 also takes every anchor above 0.25: the big head's
    /// 0.3 × 0.4 (IoU 0.12 / 0.27 = 0.444).
    func testMatchesBestAnchorAndYOLOv4sOthersAboveTheThreshold() {
        let v3 = YOLOTargets(objects: [objects[0][0]], layout: layout, matchingIoU: nil)
        XCTAssertEqual(v3.positives.count, 1)
        let p = v3.positives[0]
        XCTAssertEqual([p.head, p.row, p.column, p.anchor], [0, 1, 0, 0])
        XCTAssertEqual(p.cx, 0.325, accuracy: 1e-12); XCTAssertEqual(p.cy, 0.5, accuracy: 1e-12)
        XCTAssertEqual(p.w, 0.45, accuracy: 1e-12); XCTAssertEqual(p.h, 0.6, accuracy: 1e-12)
        let v4 = YOLOTargets(objects: [objects[0][0]], layout: layout, matchingIoU: 0.25)
        XCTAssertEqual(v4.positives.map { [$0.head, $0.row, $0.column, $0.anchor] }, [[0, 1, 0, 0], [0, 1, 0, 1]])
        // The small box 0.18 × 0.16 at (0.69, 0.58): the mid head's 0.2 × 0.15 anchor, cell (2, 4).
        let small = YOLOTargets(objects: [objects[0][1]], layout: layout, matchingIoU: nil, classWeights: [1, 0.5, 2])
        XCTAssertEqual(small.positives.map { [$0.head, $0.row, $0.column, $0.anchor, $0.classIndex] }, [[1, 2, 4, 0, 2]])
        XCTAssertEqual(small.positives[0].weight, 2)
        // A later box's multi-match does not take a slot that is an earlier box's best match, and its own
        // best match takes the slot an earlier multi-match held. b (0.28 × 0.38 at (0.3, 0.6), same cell)
        // matches the big head's 0.3 × 0.4 best (IoU 0.887) and its 0.5 × 0.6 by 0.355.
        let a = (0, Box(0.10, 0.20, 0.55, 0.80)), b = (1, Box(0.16, 0.41, 0.44, 0.79))
        let both = YOLOTargets(objects: [a, b], layout: layout, matchingIoU: 0.01)
        func owner(_ key: [Int]) -> Int? { both.positives.first { [$0.head, $0.row, $0.column, $0.anchor] == key }?.classIndex }
        XCTAssertEqual(owner([0, 1, 0, 0]), 0)
        XCTAssertEqual(owner([0, 1, 0, 1]), 1)
    }

    /// The totals against numpy written from TAO's code (the neutral rule, the 2 − w·h scale, class
    /// weights, smoothing, focal objectness), for both versions.
    func testTotalsMatchNumpyFromTAOsLossCode() throws {
        for (version, smoothing, alpha, gamma) in [(YOLOLoss.Version.v3, 0.0, 0.0, 0.0), (.v4, 0.0, 0.0, 0.0), (.v4, 0.1, 0.25, 2.0)] {
            var l = loss(version)
            (l.labelSmoothing, l.focalAlpha, l.focalGamma) = (smoothing, alpha, gamma)
            let out = outputs(seed: 11), t = targets(v4: version == .v4)
            let ours = value(l, out, t)
            let json: [String: Any] = [
                "version": version == .v3 ? "v3" : "v4", "classes": 3, "batch": 2,
                "heads": layout.heads.map { ["grid_h": $0.gridHeight, "grid_w": $0.gridWidth, "anchors": $0.anchors.map { [$0.w, $0.h] }, "xy_scale": version == .v3 ? 1 : $0.xyScale] as [String: Any] },
                "outputs": out.map { $0.map(Double.init) },
                "positives": t.map { $0.positives.map { ["head": $0.head, "row": $0.row, "column": $0.column, "anchor": $0.anchor, "cx": $0.cx, "cy": $0.cy, "w": $0.w, "h": $0.h,
                                                          "cls": $0.classIndex, "weight": version == .v3 ? 1 : $0.weight] as [String: Any] } },
                "boxes": t.map { $0.boxes.map { [$0.x1, $0.y1, $0.x2, $0.y2] } },
                "loc_weight": l.locWeight, "neg_weight": l.negativeWeight, "cls_weight": l.classWeight, "neutral_iou": l.neutralIoU,
                "smoothing": smoothing, "focal_alpha": alpha, "focal_gamma": gamma,
            ]
            var v3Layout = l
            if version == .v3 { v3Layout.layout.heads = layout.heads.map { var h = $0; h.xyScale = 1; return h } }
            let ours3 = version == .v3 ? value(v3Layout, out, t) : ours
            let r = try JSONSerialization.jsonObject(with: PythonReference.run("Tests/TaoTasksTests/yolo_loss_reference.py", input: try JSONSerialization.data(withJSONObject: json))) as! [String: Double]
            XCTAssertEqual(ours3, r["total"]!, accuracy: 1e-9 * max(1, abs(r["total"]!)), "\(version) smoothing \(smoothing) focal \(alpha)")
            XCTAssertGreaterThan(r["negatives"]!, 0)
            XCTAssertLessThan(r["negatives"]!, Double(2 * (layout.perImage(0) + layout.perImage(1)) / 8), "some slots must be neutral for the rule to be tested")
        }
    }

    /// d(loss)/d(output) against central differences for every output (the negative set held fixed
    /// by a neutral threshold no box reaches, so that the loss is smooth in every output).
    func testGradientsMatchFiniteDifferences() {
        for (version, smoothing, alpha, gamma) in [(YOLOLoss.Version.v3, 0.0, 0.0, 0.0), (.v4, 0.0, 0.0, 0.0), (.v4, 0.1, 0.25, 2.0)] {
            var l = loss(version)
            (l.labelSmoothing, l.focalAlpha, l.focalGamma, l.neutralIoU) = (smoothing, alpha, gamma, 1.01)
            var out = outputs(seed: 3)
            let t = targets(v4: version == .v4)
            if version == .v3 { l.layout.heads = layout.heads.map { var h = $0; h.xyScale = 1; return h } }
            var g0 = [Float](repeating: 0, count: 2 * layout.perImage(0)), g1 = [Float](repeating: 0, count: 2 * layout.perImage(1))
            _ = g0.withUnsafeMutableBufferPointer { a in g1.withUnsafeMutableBufferPointer { b in
                value(l, out, t, gradients: [a.baseAddress!, b.baseAddress!])
            } }
            let grads = [g0, g1]
            var worst = 0.0
            for h in 0..<2 {
                for i in out[h].indices {
                    let x = out[h][i], e: Float = 1e-2
                    out[h][i] = x + e; let up = value(l, out, t)
                    out[h][i] = x - e; let down = value(l, out, t)
                    out[h][i] = x
                    let fd = (up - down) / Double((x + e) - (x - e))
                    let err = abs(fd - Double(grads[h][i])) / max(1, abs(fd))
                    worst = max(worst, err)
                    XCTAssertLessThan(err, 2e-3, "\(version) head \(h) output \(i): analytic \(grads[h][i]), finite differences \(fd)")
                }
            }
            XCTAssertGreaterThan(grads.flatMap { $0 }.map { abs($0) }.max()!, 1e-3)
        }
    }

    /// CIoU's value by hand for two boxes, and its gradient (forward-mode) against central differences,
    /// overlapping or not.
    func testCIoUValueAndGradient() {
        // Equal boxes: 0. A box shifted by half its width: IoU 1/3, ρ²/c² = 0.25² / (0.75² + 0.5²), v = 0.
        XCTAssertEqual(CIoU.loss(gt: (0.5, 0.5, 0.5, 0.5), x: 0.5, y: 0.5, w: 0.5, h: 0.5), 0, accuracy: 1e-12)
        XCTAssertEqual(CIoU.loss(gt: (0.5, 0.5, 0.5, 0.5), x: 0.75, y: 0.5, w: 0.5, h: 0.5), 1 - 1.0 / 3 + 0.0625 / (0.5625 + 0.25), accuracy: 1e-12)
        var rng = SplitMix64(seed: 9)
        for _ in 0..<200 {
            let gt = (rng.nextDouble(), rng.nextDouble(), 0.05 + rng.nextDouble() * 0.5, 0.05 + rng.nextDouble() * 0.5)
            let p = [rng.nextDouble(), rng.nextDouble(), 0.05 + rng.nextDouble() * 0.5, 0.05 + rng.nextDouble() * 0.5]
            let d = CIoU.loss(gt: gt, x: Dual4(p[0], seed: 0), y: Dual4(p[1], seed: 1), w: Dual4(p[2], seed: 2), h: Dual4(p[3], seed: 3))
            XCTAssertEqual(d.v, CIoU.loss(gt: gt, x: p[0], y: p[1], w: p[2], h: p[3]), accuracy: 1e-15)
            for k in 0..<4 {
                var a = p, b = p
                a[k] += 1e-6; b[k] -= 1e-6
                let fd = (CIoU.loss(gt: gt, x: a[0], y: a[1], w: a[2], h: a[3]) - CIoU.loss(gt: gt, x: b[0], y: b[1], w: b[2], h: b[3])) / 2e-6
                XCTAssertEqual(d.gradient[k], fd, accuracy: 1e-6 * max(1, abs(fd)), "input \(k) of \(gt) vs \(p)")
            }
        }
    }

    /// Decoding: one confident slot becomes its box (σ(t) · scale − (scale − 1) / 2 within its cell,
    /// anchor · e^t), a weaker overlapping one of the same class is suppressed, another class's is kept.
    func testDecodesConfidentSlotsAndSuppressesOverlaps() {
        var out = layout.heads.indices.map { [Float](repeating: -12, count: layout.perImage($0)) }
        func set(_ h: Int, _ a: Int, _ i: Int, _ j: Int, _ v: [Float]) {
            for (k, x) in v.enumerated() { out[h][layout.offset(head: h, image: 0, anchor: a, channel: k, row: i, column: j)] = x }
        }
        set(1, 0, 2, 3, [0, 0, 0.5, -0.2, 4, -9, 5, -9])       // class 1, score σ(4)σ(5)
        set(1, 1, 2, 3, [0.1, 0, 0.5, 0.6, 2, -9, 4, -9])      // class 1 again, overlapping, weaker
        set(0, 0, 0, 1, [0, 0, 0, 0, 3, -9, -9, 3])            // class 2 on the big head
        let found = out[0].withUnsafeBufferPointer { a in out[1].withUnsafeBufferPointer { b in
            YOLODecoder.detections(outputs: [a.baseAddress!, b.baseAddress!], batch: 1, layout: layout, confidence: 0.3, nmsIoU: 0.4, topK: 10)
        } }
        XCTAssertEqual(found[0].map(\.count), [0, 1, 1])
        let box = found[0][1][0]
        let s = 1.1
        let cx = (3 + 0.5 * s - (s - 1) / 2) / 6, cy = (2 + 0.5 * s - (s - 1) / 2) / 4
        let (w, h) = (0.2 * exp(-0.2), 0.15 * exp(0.5))
        XCTAssertEqual(box.box.x1, cx - w / 2, accuracy: 1e-6); XCTAssertEqual(box.box.y2, cy + h / 2, accuracy: 1e-6)
        XCTAssertEqual(box.score, 1 / (1 + exp(-4.0)) / (1 + exp(-5.0)), accuracy: 1e-6)
        // topK 1 keeps the single best box over all classes.
        let one = out[0].withUnsafeBufferPointer { a in out[1].withUnsafeBufferPointer { b in
            YOLODecoder.detections(outputs: [a.baseAddress!, b.baseAddress!], batch: 1, layout: layout, confidence: 0.3, nmsIoU: 0.4, topK: 1)
        } }
        XCTAssertEqual(one[0].map(\.count), [0, 1, 0])
    }
}
