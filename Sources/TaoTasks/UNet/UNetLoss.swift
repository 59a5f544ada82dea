import Foundation
import TaoData

/// TAO's unet losses (utils/model_fn.py) on per-pixel logits [N, C, H, W] and train ids [N][H·W]:
/// - cross_entropy: softmax cross-entropy over the classes, or with the sigmoid head binary
///   cross-entropy on every channel against the one-hot mask (the mask itself for one class); the
///   mean over pixels (and channels), each pixel weighted by its true class's class_weight (1 by
///   default, as TAO, whose loss takes no weights);
/// - dice: 1 − 2 Σ_c p_c t_c / Σ_c (p_c² + t_c²) at each pixel (TAO's dice_coef sums over the class
///   axis), p the softmax or sigmoid probabilities, averaged over pixels;
/// - cross_dice_sum: the two added.
public struct UNetLoss: Sendable {
    public enum Kind: String, Sendable { case crossEntropy = "cross_entropy", dice, crossDiceSum = "cross_dice_sum" }
    public var kind: Kind
    public var sigmoid: Bool
    public var classes: Int
    public var classWeights: [Double]

    public init(kind: Kind, sigmoid: Bool, classes: Int, classWeights: [Double]? = nil) {
        self.kind = kind; self.sigmoid = sigmoid; self.classes = classes
        self.classWeights = classWeights ?? [Double](repeating: 1, count: classes)
    }

    public struct Parts: Sendable { public var crossEntropy = 0.0, dice = 0.0 }

    /// The loss of a batch of `masks.count` images of `pixels` each, its gradient written to
    /// `gradients` (same layout as `logits`) when given.
    public func callAsFunction(logits: UnsafePointer<Float>, masks: [[UInt8]], pixels: Int,
                               gradients: UnsafeMutablePointer<Float>?) -> (total: Double, parts: Parts) {
        let n = masks.count, c = classes
        let wantCE = kind != .dice, wantDice = kind != .crossEntropy
        // CE is averaged over pixels (softmax) or pixels and channels (sigmoid); dice over pixels.
        let ceScale = 1 / Double(n * pixels * (sigmoid ? c : 1)), diceScale = 1 / Double(n * pixels)
        nonisolated(unsafe) let gradBase = gradients, base = logits
        let perImage = (try? parallelMap(n) { img -> Parts in
            let logits = base
            let z = logits + img * c * pixels, g = gradBase.map { $0 + img * c * pixels }
            let mask = masks[img]
            var p = [Double](repeating: 0, count: c), grad = [Double](repeating: 0, count: c)
            var ce = 0.0, dice = 0.0
            for i in 0..<pixels {
                let t = Int(mask[i])
                // Probabilities.
                if sigmoid {
                    for k in 0..<c { p[k] = 1 / (1 + exp(-Double(z[k * pixels + i]))) }
                } else {
                    var m = -Double.infinity
                    for k in 0..<c { m = max(m, Double(z[k * pixels + i])) }
                    var s = 0.0
                    for k in 0..<c { p[k] = exp(Double(z[k * pixels + i]) - m); s += p[k] }
                    for k in 0..<c { p[k] /= s }
                }
                func target(_ k: Int) -> Double { c == 1 ? Double(t) : (k == t ? 1 : 0) }
                let w = classWeights[min(t, c - 1)]
                for k in 0..<c { grad[k] = 0 }
                if wantCE {
                    if sigmoid {
                        for k in 0..<c {
                            let x = Double(z[k * pixels + i]), y = target(k)
                            ce += w * (max(x, 0) - x * y + log1p(exp(-abs(x))))
                            grad[k] += w * (p[k] - y) * ceScale
                        }
                    } else {
                        ce -= w * log(max(p[t], 1e-300))
                        for k in 0..<c { grad[k] += w * (p[k] - target(k)) * ceScale }
                    }
                }
                if wantDice {
                    var a = 0.0, b = 0.0
                    for k in 0..<c { let y = target(k); a += p[k] * y; b += p[k] * p[k] + y * y }
                    guard b > 0 else { continue }
                    dice += 1 - 2 * a / b
                    // dL/dp_k = −(2 t_k / B − 4 A p_k / B²) / P, then through the activation.
                    var dp = [Double](repeating: 0, count: c)
                    for k in 0..<c { dp[k] = -(2 * target(k) / b - 4 * a * p[k] / (b * b)) * diceScale }
                    if sigmoid {
                        for k in 0..<c { grad[k] += dp[k] * p[k] * (1 - p[k]) }
                    } else {
                        var dot = 0.0
                        for k in 0..<c { dot += p[k] * dp[k] }
                        for k in 0..<c { grad[k] += p[k] * (dp[k] - dot) }
                    }
                }
                if let g { for k in 0..<c { g[k * pixels + i] = Float(grad[k]) } }
            }
            return Parts(crossEntropy: ce * ceScale, dice: dice * diceScale)
        }) ?? []
        var parts = Parts()
        for s in perImage { parts.crossEntropy += s.crossEntropy; parts.dice += s.dice }
        let total = (wantCE ? parts.crossEntropy : 0) + (wantDice ? parts.dice : 0)
        return (total, parts)
    }

    /// The predicted class of each pixel of image `img`: the largest logit (one class: logit > 0).
    public static func predictions(_ logits: UnsafePointer<Float>, image img: Int, classes c: Int, pixels: Int) -> [UInt8] {
        let z = logits + img * c * pixels
        var out = [UInt8](repeating: 0, count: pixels)
        for i in 0..<pixels {
            if c == 1 { out[i] = z[i] > 0 ? 1 : 0; continue }
            var best = 0, v = z[i]
            for k in 1..<c where z[k * pixels + i] > v { v = z[k * pixels + i]; best = k }
            out[i] = UInt8(best)
        }
        return out
    }
}
