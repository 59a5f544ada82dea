import XCTest
import Foundation
@testable import TaoTrain
import TaoGraph
import TaoTensor

final class LossTests: XCTestCase {
    /// Independent computation in Double: -Σ t·log softmax.
    func referenceLoss(_ z: [Double], n: Int, c: Int, targets: [Double]) -> Double {
        var total = 0.0
        for i in 0..<n {
            let row = Array(z[(i * c)..<((i + 1) * c)])
            let m = row.max()!
            let lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
            for k in 0..<c { total -= targets[i * c + k] * (row[k] - lse) }
        }
        return total / Double(n)
    }

    func testCrossEntropyWithLabelSmoothingMatchesReferenceAndFiniteDifferences() {
        let (n, c, eps) = (3, 5, Float(0.1))
        var rng = SplitMix64(seed: 4)
        let z = (0..<(n * c)).map { _ in rng.nextNormal() * 2 }
        let labels = [1, 4, 0]
        let targets: [Double] = (0..<(n * c)).map { j in (labels[j / c] == j % c ? 1 - Double(eps) : 0) + Double(eps) / Double(c) }
        var grad = [Float](repeating: 0, count: n * c)
        let ce = SoftmaxCrossEntropy(labelSmoothing: eps)
        let l = ce(logits: z, grad: &grad, batch: n, classes: c, labels: labels)
        let zd = z.map(Double.init)
        XCTAssertEqual(Double(l), referenceLoss(zd, n: n, c: c, targets: targets), accuracy: 1e-5)
        for j in 0..<(n * c) {
            var p = zd, m = zd
            p[j] += 1e-4; m[j] -= 1e-4
            let fd = (referenceLoss(p, n: n, c: c, targets: targets) - referenceLoss(m, n: n, c: c, targets: targets)) / 2e-4
            XCTAssertEqual(Double(grad[j]), fd, accuracy: 1e-5, "d/dz[\(j)]")
        }
    }

    func testSoftTargetsEqualHardTargetsWhenOneHot() {
        let z: [Float] = [0.5, -1, 2, 0.1, 0.3, -0.2]
        let ce = SoftmaxCrossEntropy()
        let hard = ce(logits: z, grad: nil, batch: 2, classes: 3, labels: [2, 0])
        let soft = ce(logits: z, grad: nil, batch: 2, classes: 3, soft: [0, 0, 1, 1, 0, 0])
        XCTAssertEqual(hard, soft, accuracy: 1e-6)
        XCTAssertGreaterThan(hard, 0)
    }
}

final class OptimizerTests: XCTestCase {
    func run(_ opt: inout some Optimizer, w: [Float], grads: [[Float]], lr: Float) -> [Float] {
        var w = w
        for g in grads { w.withUnsafeMutableBufferPointer { opt.update(index: 0, weights: $0.baseAddress!, grads: g, count: g.count, lr: lr) } }
        return w
    }

    func testSGDMomentumAndNesterovFollowTheirDefinitions() {
        var sgd = SGD(momentum: 0.9)
        // v1 = g1, w1 = w0 - lr v1; v2 = 0.9 v1 + g2, w2 = w1 - lr v2
        let w = run(&sgd, w: [1], grads: [[0.5], [0.25]], lr: 0.1)
        let expected: Float = 1 - 0.1 * 0.5 - 0.1 * (0.9 * 0.5 + 0.25)
        XCTAssertEqual(w[0], expected, accuracy: 1e-6)
        var nes = SGD(momentum: 0.9, nesterov: true)
        let wn = run(&nes, w: [1], grads: [[0.5], [0.25]], lr: 0.1)
        let v1: Float = 0.5, v2: Float = 0.9 * 0.5 + 0.25
        let step1: Float = 0.1 * (0.5 + 0.9 * v1)
        let step2: Float = 0.1 * (0.25 + 0.9 * v2)
        XCTAssertEqual(wn[0], 1 - step1 - step2, accuracy: 1e-6)
    }

    func testAdamFirstStepIsLearningRateTimesSign() {
        var adam = Adam(epsilon: 1e-8)
        let w = run(&adam, w: [1, 1], grads: [[3, -0.001]], lr: 0.01)
        XCTAssertEqual(w[0], 0.99, accuracy: 1e-5)
        XCTAssertEqual(w[1], 1.01, accuracy: 1e-4)
    }

    /// Adam on a tensor large enough to be split across threads, three steps (the moments kept
    /// between them), against the update written out element by element here.
    func testAdamOnALargeTensorMatchesTheFormula() {
        let n = 300_001
        var rng = SplitMix64(seed: 9)
        var w = (0..<n).map { _ in Float(rng.nextDouble() * 2 - 1) }
        var ref = w, m = [Float](repeating: 0, count: n), v = m
        var adam = Adam()
        for step in 1...3 {
            let g = (0..<n).map { _ in Float(rng.nextDouble() * 2 - 1) }
            w.withUnsafeMutableBufferPointer { adam.update(index: 4, weights: $0.baseAddress!, grads: g, count: n, lr: 0.01) }
            let c1 = 1 - Float(pow(0.9, Double(step))), c2 = 1 - Float(pow(0.999, Double(step)))
            for i in 0..<n {
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                ref[i] -= 0.01 * (m[i] / c1) / ((v[i] / c2).squareRoot() + 1e-7)
            }
        }
        let worst = zip(w, ref).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(adam.state["m.4"]?.count, n)
    }

    /// The vectorized regularizer against a float64 sum, on a length that leaves a tail past the
    /// last full vector.
    func testRegularizerOnALongVector() {
        let n = 1_003
        var rng = SplitMix64(seed: 2)
        let w = (0..<n).map { i in i % 97 == 0 ? 0 : Float(rng.nextDouble() * 4 - 2) }
        for kind in [Regularizer.Kind.l2, .l1] {
            var g = [Float](repeating: 0.5, count: n)
            let loss = Regularizer(kind, weight: 0.01).apply(weights: w, grads: &g, count: n)
            let exact = 0.01 * w.reduce(0.0) { $0 + (kind == .l2 ? Double($1) * Double($1) : abs(Double($1))) }
            XCTAssertEqual(Double(loss), exact, accuracy: 1e-5 * exact)
            for i in 0..<n {
                let d: Float = kind == .l2 ? 0.02 * w[i] : (w[i] > 0 ? 0.01 : w[i] < 0 ? -0.01 : 0)
                XCTAssertEqual(g[i], 0.5 + d, "\(kind) \(i)")
            }
        }
    }

    func testRMSpropStep() {
        var r = RMSprop(rho: 0.9)
        let w = run(&r, w: [1], grads: [[2]], lr: 0.01)
        let denom: Float = (0.1 * 4 as Float).squareRoot() + 1e-7
        XCTAssertEqual(w[0], 1 - 0.01 * 2 / denom, accuracy: 1e-6)
    }

    func testOptimizersMinimizeAQuadratic() {
        func minimize(_ opt: inout some Optimizer, lr: Float) -> Float {
            var w: [Float] = [3, -2]
            for _ in 0..<500 {
                let g = w.map { 2 * $0 }
                w.withUnsafeMutableBufferPointer { opt.update(index: 0, weights: $0.baseAddress!, grads: g, count: 2, lr: lr) }
            }
            return w.map { $0 * $0 }.reduce(0, +)
        }
        var a = SGD(momentum: 0.9); XCTAssertLessThan(minimize(&a, lr: 0.01), 1e-4)
        var b = Adam(); XCTAssertLessThan(minimize(&b, lr: 0.05), 1e-3)
        var c = RMSprop(); XCTAssertLessThan(minimize(&c, lr: 0.01), 1e-3)
    }

    func testRegularizerGradients() {
        let w: [Float] = [0.5, -2, 0]
        var g: [Float] = [0, 0, 0]
        let l2 = Regularizer(.l2, weight: 0.1).apply(weights: w, grads: &g, count: 3)
        XCTAssertEqual(g, [0.1, -0.4, 0])
        XCTAssertEqual(l2, 0.1 * 4.25, accuracy: 1e-6)
        var g1: [Float] = [0, 0, 0]
        let l1 = Regularizer(.l1, weight: 0.1).apply(weights: w, grads: &g1, count: 3)
        XCTAssertEqual(g1, [0.1, -0.1, 0])
        XCTAssertEqual(l1, 0.25, accuracy: 1e-6)
    }
}

final class ScheduleTests: XCTestCase {
    func testStepSchedule() {
        let s = LearningRateSchedule.step(lr: 0.1, stepSize: 10, gamma: 0.5)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(s.rate(epoch: 9, progress: 0.3), 0.1, accuracy: 1e-7)
        XCTAssertEqual(s.rate(epoch: 25, progress: 0.9), 0.025, accuracy: 1e-7)
    }

    func testSoftAnnealWarmsUpThenDivides() {
        let s = LearningRateSchedule.softAnneal(lr: 0.1, softStart: 0.2, divider: 10, points: [0.5, 0.8])
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.1), 0.05, accuracy: 1e-6)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.3), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.6), 0.01, accuracy: 1e-6)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.9), 0.001, accuracy: 1e-6)
    }

    func testCosineEndsAtTheMinimumRatio() {
        let s = LearningRateSchedule.cosine(lr: 0.2, minRatio: 0.1, softStart: 0.0)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0), 0.2, accuracy: 1e-6)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.5), 0.2 * (0.1 + 0.9 * 0.5), accuracy: 1e-6)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.99999), 0.02, accuracy: 1e-5)
    }

    /// TAO's soft start annealing (min 5e-6, max 5e-4, soft start 0.1, annealing 0.7): geometric
    /// ramps, so halfway up the rate is the geometric mean of the two.
    func testSoftStartAnnealingRampsGeometrically() {
        let s = LearningRateSchedule.softStartAnnealing(min: 5e-6, max: 5e-4, softStart: 0.1, annealing: 0.7)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0), 5e-6, accuracy: 1e-10)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.05), (5e-6 * 5e-4 as Float).squareRoot(), accuracy: 1e-8)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.4), 5e-4, accuracy: 1e-9)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.85), (5e-6 * 5e-4 as Float).squareRoot(), accuracy: 1e-8)
        XCTAssertEqual(s.rate(epoch: 0, progress: 1), 5e-6, accuracy: 1e-10)
    }
}
