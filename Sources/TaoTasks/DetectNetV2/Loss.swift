import Foundation

/// DetectNet_v2's cost (TAO's cost_function_config): per class, weighted binary cross-entropy of the
/// coverage (weight `foregroundWeight` where the target is above 0.5, 1 − it elsewhere) plus L1 of
/// the box distances weighted by `cov_norm`, each averaged over its cells, scaled by the objective's
/// weight and summed over classes with their class weights.
public struct DetectNetLoss: Sendable {
    public struct ClassWeights: Equatable, Sendable {
        public var classWeight: Double = 1
        public var foregroundWeight: Double = 0.05
        public var coverageWeight: Double = 1
        public var boxWeight: Double = 10
        public init() {}
    }
    public var classes: [ClassWeights]
    /// TAO's epsilon inside the logarithms.
    public static let epsilon = 1e-5
    public init(classes: [ClassWeights]) { self.classes = classes }

    /// The batch loss from the coverage [N, C, H, W] (probabilities) and box [N, 4C, H, W] outputs;
    /// writes d(loss)/d(output) into the gradient buffers when given.
    public func callAsFunction(coverage: UnsafePointer<Float>, boxes: UnsafePointer<Float>, targets: [DetectNetTargets], cells: Int,
                               coverageGradient: UnsafeMutablePointer<Float>? = nil, boxGradient: UnsafeMutablePointer<Float>? = nil) -> Float {
        let n = targets.count, c = classes.count
        var total = 0.0
        for (img, t) in targets.enumerated() {
            for k in 0..<c {
                let w = classes[k]
                let covScale = w.classWeight * w.coverageWeight / Double(n * cells)
                let boxScale = w.classWeight * w.boxWeight / Double(n * 4 * cells)
                for cell in 0..<cells {
                    let at = (img * c + k) * cells + cell, tAt = k * cells + cell
                    let p = Double(coverage[at]), y = Double(t.coverage[tAt])
                    let weight = y > 0.5 ? w.foregroundWeight : 1 - w.foregroundWeight
                    let e = Self.epsilon
                    total += covScale * weight * -(y * log(p + e) + (1 - y) * log(1 - p + e))
                    coverageGradient?[at] = Float(covScale * weight * (-y / (p + e) + (1 - y) / (1 - p + e)))
                    let norm = Double(t.boxWeight[tAt])
                    for j in 0..<4 {
                        let bAt = ((img * 4 * c) + 4 * k + j) * cells + cell, tb = (4 * k + j) * cells + cell
                        let d = Double(boxes[bAt]) - Double(t.boxes[tb])
                        total += boxScale * norm * abs(d)
                        boxGradient?[bAt] = Float(boxScale * norm * (d > 0 ? 1 : d < 0 ? -1 : 0))
                    }
                }
            }
        }
        return Float(total)
    }
}
