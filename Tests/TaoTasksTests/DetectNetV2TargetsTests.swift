import XCTest
import Foundation
import TaoMetrics
import TaoTensor
@testable import TaoTasks

final class DetectNetV2TargetsTests: XCTestCase {
    /// One box, worked by hand: (16, 16)–(80, 48) on a 128×64 input at stride 16 is (1, 1)–(5, 3) in
    /// grid cells, centre (3, 2), half-size (2, 1); radii 0.4 of that are (0.8, 0.4), raised to a
    /// 1-cell minimum keeping the aspect: (2, 1). Cell centres inside: rows 1–2, columns 1–4.
    func testOneBoxRasterizesToTheHandWorkedCells() {
        let grid = DetectNetGrid(inputWidth: 128, inputHeight: 64)
        let box = Box(16, 16, 80, 48)
        let t = DetectNetTargets(objects: [(0, box)], grid: grid, classes: [RasterizerClassConfig()], deadzone: 0.67)
        var covered: [[Int]] = []
        for i in 0..<4 { for j in 0..<8 where t.coverage[i * 8 + j] == 1 { covered.append([i, j]) } }
        XCTAssertEqual(covered, [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [2, 3], [2, 4]])
        XCTAssertEqual(t.coverage.reduce(0, +), 8)
        XCTAssertEqual(t.boxWeight[1 * 8 + 1], 1.0 / 8, "cov_norm: 1 / (4 · 2 · 1)")
        XCTAssertEqual(t.boxWeight[0], 0)
        // Cell (1, 1) predicts from (16.5, 16.5): distances to the edges in units of 35 pixels.
        let at = { (k: Int) in t.boxes[(k * 4 + 1) * 8 + 1] }
        XCTAssertEqual(at(0), Float(0.5 / 35), accuracy: 1e-7)
        XCTAssertEqual(at(1), Float(0.5 / 35), accuracy: 1e-7)
        XCTAssertEqual(at(2), Float(63.5 / 35), accuracy: 1e-6)
        XCTAssertEqual(at(3), Float(31.5 / 35), accuracy: 1e-6)
        // Every covered cell's targets decode to the box itself.
        for c in covered {
            let v = (0..<4).map { Double(t.boxes[($0 * 4 + c[0]) * 8 + c[1]]) }
            let d = grid.decode(v, row: c[0], column: c[1])
            for (a, b) in [(d.x1, box.x1), (d.y1, box.y1), (d.x2, box.x2), (d.y2, box.y2)] { XCTAssertEqual(a, b, accuracy: 1e-4) }
        }
    }

    /// A nearer box (lower bottom edge) is drawn after a farther one of its class, and its deadzone
    /// ring clears the farther box's coverage there; another class's channel is left alone.
    func testNearerBoxesDeadzoneClearsTheFartherBoxOfItsClass() {
        let grid = DetectNetGrid(inputWidth: 128, inputHeight: 128)
        let far = Box(0, 0, 128, 64), near = Box(32, 16, 96, 80)
        let classes = [RasterizerClassConfig(), RasterizerClassConfig()]
        let alone = DetectNetTargets(objects: [(0, far)], grid: grid, classes: classes, deadzone: 1)
        let both = DetectNetTargets(objects: [(0, near), (0, far)], grid: grid, classes: classes, deadzone: 1)
        let other = DetectNetTargets(objects: [(0, far), (1, near)], grid: grid, classes: classes, deadzone: 1)
        let cell = { (i: Int, j: Int) in i * 8 + j }
        XCTAssertEqual(alone.coverage[cell(1, 4)], 1)
        XCTAssertEqual(both.coverage[cell(1, 4)], 0, "inside the near box's deadzone ring, outside its coverage")
        XCTAssertEqual(both.coverage[cell(1, 2)], 1, "outside the near box's deadzone: still the far box")
        XCTAssertEqual(both.coverage[cell(3, 4)], 1, "the near box's own coverage")
        XCTAssertEqual(Double(both.boxes[(3 * 8 + 3) * 8 + 4]), grid.encode(near, row: 3, column: 4)[3], accuracy: 1e-6)
        XCTAssertEqual(other.coverage[cell(1, 4)], 1, "a box of another class clears nothing here")
        XCTAssertEqual(other.coverage[64 + cell(3, 4)], 1)
    }

    /// The cost's value on a hand-worked cell and its gradients against central differences.
    func testLossValueAndGradientsMatchFiniteDifferences() {
        let grid = DetectNetGrid(inputWidth: 64, inputHeight: 32)
        let t = DetectNetTargets(objects: [(0, Box(8, 4, 40, 28)), (1, Box(30, 2, 60, 30))], grid: grid,
                                 classes: [RasterizerClassConfig(), RasterizerClassConfig()], deadzone: 0.5)
        var w = [DetectNetLoss.ClassWeights(), DetectNetLoss.ClassWeights()]
        w[1].classWeight = 2; w[1].foregroundWeight = 0.2; w[1].boxWeight = 5
        let loss = DetectNetLoss(classes: w)
        let cells = grid.width * grid.height
        var rng = SplitMix64(seed: 4)
        var cov = (0..<(2 * 2 * cells)).map { _ in 0.05 + 0.9 * rng.nextFloat() }
        var box = (0..<(2 * 8 * cells)).map { _ in rng.nextFloat() * 2 - 1 }
        let targets = [t, t]
        var gc = [Float](repeating: 0, count: cov.count), gb = [Float](repeating: 0, count: box.count)
        let value = loss(coverage: cov, boxes: box, targets: targets, cells: cells, coverageGradient: &gc, boxGradient: &gb)
        // By hand for one image's worth: the mean over 2 images of the same targets is the same.
        var expect = 0.0
        for k in 0..<2 {
            for cell in 0..<cells {
                let y = Double(t.coverage[k * cells + cell]), wt = y > 0.5 ? w[k].foregroundWeight : 1 - w[k].foregroundWeight
                for img in 0..<2 {
                    let p = Double(cov[(img * 2 + k) * cells + cell])
                    let bce: Double = -(y * log(p + 1e-5) + (1 - y) * log(1 - p + 1e-5))
                    expect += w[k].classWeight * w[k].coverageWeight * wt * bce / Double(2 * cells)
                    for j in 0..<4 {
                        let out: Int = (img * 8 + 4 * k + j) * cells + cell, target: Int = (4 * k + j) * cells + cell
                        let d: Double = Double(box[out]) - Double(t.boxes[target])
                        let norm: Double = Double(t.boxWeight[k * cells + cell])
                        expect += w[k].classWeight * w[k].boxWeight * norm * abs(d) / Double(8 * cells)
                    }
                }
            }
        }
        XCTAssertEqual(Double(value), expect, accuracy: 1e-5 * expect)
        XCTAssertGreaterThan(t.coverage.reduce(0, +), 4)
        func f() -> Double { Double(loss(coverage: cov, boxes: box, targets: targets, cells: cells)) }
        for i in stride(from: 0, to: cov.count, by: 7) {
            let h: Float = 1e-3, keep = cov[i]
            cov[i] = keep + h; let up = f(); cov[i] = keep - h; let down = f(); cov[i] = keep
            let analytic = Double(gc[i]), numeric: Double = (up - down) / Double(2 * h)
            XCTAssertEqual(analytic, numeric, accuracy: 2e-3 * max(1, abs(analytic)) + 1e-5, "coverage[\(i)]")
        }
        for i in stride(from: 0, to: box.count, by: 5) {
            let h: Float = 1e-3, keep = box[i]
            box[i] = keep + h; let up = f(); box[i] = keep - h; let down = f(); box[i] = keep
            let numeric: Double = (up - down) / Double(2 * h)
            XCTAssertEqual(Double(gb[i]), numeric, accuracy: 1e-4, "boxes[\(i)]")
        }
        XCTAssertGreaterThan(gb.filter { $0 != 0 }.count, 8, "the covered cells get a box gradient")
    }
}
