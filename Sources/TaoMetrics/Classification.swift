/// A confusion matrix, confusion[true][predicted], and what follows from it.
public struct ConfusionMatrix: Equatable, Sendable {
    public var counts: [[Int]]

    public init(classes: Int) { counts = Array(repeating: Array(repeating: 0, count: classes), count: classes) }
    public init(counts: [[Int]]) { self.counts = counts }

    public mutating func add(truth: Int, predicted: Int) { counts[truth][predicted] += 1 }

    public var total: Int { counts.reduce(0) { $0 + $1.reduce(0, +) } }
    /// Top-1 accuracy: the diagonal over everything.
    public var accuracy: Double { total > 0 ? Double(counts.indices.reduce(0) { $0 + counts[$1][$1] }) / Double(total) : 0 }

    /// Per class: precision (of the predictions of that class), recall (of its samples) and their F1.
    public var perClass: [(precision: Double, recall: Double, f1: Double)] {
        let n = counts.count
        return (0..<n).map { c in
            let tp = Double(counts[c][c])
            let predicted = Double((0..<n).reduce(0) { $0 + counts[$1][c] })
            let actual = Double(counts[c].reduce(0, +))
            let p = predicted > 0 ? tp / predicted : 0, r = actual > 0 ? tp / actual : 0
            return (p, r, p + r > 0 ? 2 * p * r / (p + r) : 0)
        }
    }
}

/// Whether `label` is among the `k` highest of `scores` (ties broken toward the lower index).
public func inTopK(_ scores: UnsafeBufferPointer<Float>, label: Int, k: Int) -> Bool {
    let s = scores[label]
    var above = 0
    for (j, v) in scores.enumerated() where v > s || (v == s && j < label) { above += 1 }
    return above < k
}
