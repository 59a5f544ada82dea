import XCTest
import TaoTensor
@testable import TaoTasks

final class UNetLossTests: XCTestCase {
    /// TAO's losses written out pixel by pixel in Double, the plain way: softmax or sigmoid
    /// cross-entropy, the per-pixel dice over the classes, their sum.
    func reference(_ loss: UNetLoss, logits z: [Float], masks: [[UInt8]], pixels: Int) -> Double {
        let c = loss.classes
        var ce = 0.0, dice = 0.0
        for (n, mask) in masks.enumerated() {
            for i in 0..<pixels {
                let x = (0..<c).map { Double(z[(n * c + $0) * pixels + i]) }
                let t = (0..<c).map { k -> Double in c == 1 ? Double(mask[i]) : (k == Int(mask[i]) ? 1 : 0) }
                let p = loss.sigmoid ? x.map { 1 / (1 + exp(-$0)) } : x.map { exp($0) / x.map(exp).reduce(0, +) }
                let w = loss.classWeights[Int(mask[i])]
                if loss.sigmoid {
                    ce += w * zip(p, t).map { -($1 * log($0) + (1 - $1) * log(1 - $0)) }.reduce(0, +) / Double(c)
                } else {
                    ce += -w * log(p[Int(mask[i])])
                }
                let a = zip(p, t).map(*).reduce(0, +), b = zip(p, t).map { $0 * $0 + $1 * $1 }.reduce(0, +)
                dice += 1 - 2 * a / b
            }
        }
        let count = Double(masks.count * pixels)
        switch loss.kind {
        case .crossEntropy: return ce / count
        case .dice: return dice / count
        case .crossDiceSum: return (ce + dice) / count
        }
    }

    /// Each loss against the plain formula, and its gradient against central differences.
    func testLossesMatchTheirFormulaAndFiniteDifferences() throws {
        let cases: [(UNetLoss.Kind, Bool, Int, [Double]?)] = [
            (.crossEntropy, false, 3, nil), (.crossEntropy, false, 3, [1, 2.5, 0.5]), (.crossEntropy, true, 3, nil),
            (.dice, false, 3, nil), (.dice, true, 2, nil), (.crossDiceSum, false, 4, [0.5, 1, 1, 3]), (.crossDiceSum, true, 1, nil),
        ]
        var rng = SplitMix64(seed: 11)
        let (n, pixels) = (2, 12)
        for (kind, sigmoid, c, weights) in cases {
            let loss = UNetLoss(kind: kind, sigmoid: sigmoid, classes: c, classWeights: weights ?? [Double](repeating: 1, count: max(c, 2)))
            let z = (0..<(n * c * pixels)).map { _ in Float(rng.nextDouble() * 4 - 2) }
            let masks = (0..<n).map { _ in (0..<pixels).map { _ in UInt8(rng.next() % UInt64(max(c, 2))) } }
            var g = [Float](repeating: 0, count: z.count)
            let value = z.withUnsafeBufferPointer { zp in g.withUnsafeMutableBufferPointer { loss(logits: zp.baseAddress!, masks: masks, pixels: pixels, gradients: $0.baseAddress!).total } }
            let label = "\(kind) sigmoid \(sigmoid) classes \(c) weights \(weights ?? [])"
            XCTAssertEqual(value, reference(loss, logits: z, masks: masks, pixels: pixels), accuracy: 1e-9, label)
            for i in z.indices {
                let h: Float = 1e-2
                var up = z, down = z
                up[i] += h; down[i] -= h
                let (lu, ld) = (reference(loss, logits: up, masks: masks, pixels: pixels), reference(loss, logits: down, masks: masks, pixels: pixels))
                let numeric = (lu - ld) / Double(2 * h)
                XCTAssertEqual(Double(g[i]), numeric, accuracy: 2e-5 + 1e-3 * abs(numeric), "\(label): logit \(i)")
            }
        }
    }

    /// The predicted class is the largest logit; with one class, a positive logit.
    func testPredictions() {
        let z: [Float] = [0.1, -2, 3, 0.5, 0.2, 1]   // 2 classes × 3 pixels
        XCTAssertEqual(z.withUnsafeBufferPointer { UNetLoss.predictions($0.baseAddress!, image: 0, classes: 2, pixels: 3) }, [1, 1, 0])
        XCTAssertEqual(z.withUnsafeBufferPointer { UNetLoss.predictions($0.baseAddress!, image: 1, classes: 1, pixels: 3) }, [1, 1, 1])
        XCTAssertEqual(z.withUnsafeBufferPointer { UNetLoss.predictions($0.baseAddress!, image: 0, classes: 1, pixels: 6) }, [1, 0, 1, 1, 1, 1])
    }
}
