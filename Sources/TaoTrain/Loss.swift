import Foundation

/// Softmax cross-entropy over logits [N, C], averaged over the batch, with label smoothing:
/// the target puts `1 - ε` on the true class and spreads `ε` evenly over all classes (as Keras).
public struct SoftmaxCrossEntropy: Sendable {
    public var labelSmoothing: Float
    public init(labelSmoothing: Float = 0) { self.labelSmoothing = labelSmoothing }

    /// Returns the mean loss and writes d(loss)/d(logits) into `grad`.
    ///
    /// - Parameter targets: per sample, either a class index (`labels`) or a full distribution (`soft`, e.g. mixup).
    public func callAsFunction(logits: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>?, batch n: Int, classes c: Int,
                               labels: [Int]? = nil, soft: [Float]? = nil) -> Float {
        precondition(labels?.count == n || soft?.count == n * c, "targets do not match the batch")
        var total: Double = 0
        let eps = labelSmoothing
        var probs = [Float](repeating: 0, count: c)
        for i in 0..<n {
            let row = logits + i * c
            var m = -Float.infinity
            for k in 0..<c { m = max(m, row[k]) }
            var s: Float = 0
            for k in 0..<c { probs[k] = Foundation.exp(row[k] - m); s += probs[k] }
            let logS = Foundation.log(s)
            for k in 0..<c {
                var t: Float
                if let labels { t = labels[i] == k ? 1 : 0 } else { t = soft![i * c + k] }
                t = t * (1 - eps) + eps / Float(c)
                if t > 0 { total -= Double(t * (row[k] - m - logS)) }
                grad?[i * c + k] = (probs[k] / s - t) / Float(n)
            }
        }
        return Float(total / Double(n))
    }
}
