/// What TAO's unet evaluate derives from a confusion matrix over pixels: per-class IoU, precision,
/// recall and F1, and mean IoU.
extension ConfusionMatrix {
    public var classes: Int { counts.count }

    /// Adds one image's pixels (class indices, the same length; indices out of range are not counted).
    public mutating func add(truth: [UInt8], predicted: [UInt8]) {
        precondition(truth.count == predicted.count)
        let n = counts.count
        for i in truth.indices where Int(truth[i]) < n && Int(predicted[i]) < n { counts[Int(truth[i])][Int(predicted[i])] += 1 }
    }

    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classes == classes)
        for t in counts.indices { for p in counts.indices { counts[t][p] += other.counts[t][p] } }
    }

    /// One class's figures; a figure is nil where its denominator is 0 (IoU: the class is neither in
    /// the truth nor in the prediction).
    public struct ClassScores: Sendable, Equatable {
        public var iou: Double?, precision: Double?, recall: Double?, f1: Double?
        public var truePixels: Int, predictedPixels: Int
    }

    public func scores(_ c: Int) -> ClassScores {
        let tp = counts[c][c]
        let truth = counts[c].reduce(0, +), predicted = counts.reduce(0) { $0 + $1[c] }
        let union = truth + predicted - tp
        let precision = predicted > 0 ? Double(tp) / Double(predicted) : nil
        let recall = truth > 0 ? Double(tp) / Double(truth) : nil
        var f1: Double? = nil
        if let p = precision, let r = recall { f1 = p + r > 0 ? 2 * p * r / (p + r) : 0 }
        return ClassScores(iou: union > 0 ? Double(tp) / Double(union) : nil, precision: precision, recall: recall, f1: f1,
                           truePixels: truth, predictedPixels: predicted)
    }

    /// The mean of a score over the classes that have it.
    public func mean(_ score: (ClassScores) -> Double?) -> Double {
        let values = (0..<classes).compactMap { score(scores($0)) }
        return values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    /// Mean IoU over the classes present in the truth or the prediction.
    public var meanIoU: Double { mean(\.iou) }
}
