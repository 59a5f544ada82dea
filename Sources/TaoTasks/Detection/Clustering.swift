import Foundation
import TaoMetrics

/// A box a detector proposes (one grid cell's prediction, or a clustered detection), with its
/// confidence: coverage for DetectNet_v2, objectness × class score for YOLO.
public struct ScoredBox: Equatable, Sendable {
    public var box: Box
    public var score: Double
    public init(_ box: Box, score: Double) { self.box = box; self.score = score }
}

/// DBSCAN over boxes as TAO's DetectNet_v2 clusters its grid predictions: the distance between
/// two boxes is 1 − IoU, each box weighs its coverage, a box is a core point when the weights within
/// `eps` (itself included) sum to at least `minSamples`, and clusters grow from core points in index
/// order exactly as scikit-learn's `DBSCAN(metric="precomputed").fit(d, sample_weight=w)` does.
public enum DBSCAN {
    /// Cluster labels per box, 0-based; -1 for noise.
    public static func labels(_ boxes: [ScoredBox], eps: Double, minSamples: Double) -> [Int] {
        let n = boxes.count
        var neighbours = [[Int]](repeating: [], count: n)
        for i in 0..<n {
            for j in 0..<n where j == i || 1 - boxes[i].box.iou(boxes[j].box) <= eps { neighbours[i].append(j) }
        }
        let core = (0..<n).map { i in neighbours[i].reduce(0.0) { $0 + boxes[$1].score } >= minSamples }
        var labels = [Int](repeating: -1, count: n)
        var next = 0
        for start in 0..<n where labels[start] == -1 && core[start] {
            var stack: [Int] = []
            var i = start
            while true {
                if labels[i] == -1 {
                    labels[i] = next
                    if core[i] { for j in neighbours[i] where labels[j] == -1 { stack.append(j) } }
                }
                guard let top = stack.popLast() else { break }
                i = top
            }
            next += 1
        }
        return labels
    }
}

/// TAO's DetectNet_v2 clustering settings for one class (`clustering_config`).
public struct ClusteringConfig: Equatable, Sendable {
    /// Grid cells whose coverage is at or below this are not candidates.
    public var coverageThreshold: Double = 0.005
    public var eps: Double = 0.15
    /// The summed coverage a core cell needs within eps: TAO takes max(int(dbscan_min_samples), 1).
    public var minSamples: Int = 1
    /// Detections this tall or shorter are dropped (pixels of the network input).
    public var minimumBoxHeight: Double = 0
    /// Detections whose summed coverage is below this are dropped.
    public var confidenceThreshold: Double = 0.1
    public var algorithm: Algorithm = .dbscan
    /// NMS's overlap and confidence thresholds, for `.nms`.
    public var nmsIoUThreshold: Double = 0.5
    public var nmsConfidenceThreshold: Double = 0.0

    public enum Algorithm: String, Sendable { case dbscan, nms }
    public init() {}
}

/// Turns one class's candidate boxes into detections, as TAO's DetectNet_v2 post-processing does.
public enum BoxClustering {
    /// DBSCAN: each cluster becomes its coverage-weighted mean box with the summed coverage as its
    /// confidence; noise is dropped, then boxes too short or too unsure; by descending confidence.
    /// NMS: the candidates above the confidence threshold, greedily suppressed.
    public static func cluster(_ candidates: [ScoredBox], _ c: ClusteringConfig) -> [ScoredBox] {
        let kept = candidates.filter { $0.score > c.coverageThreshold }
        switch c.algorithm {
        case .nms:
            return NMS.suppress(kept.filter { $0.score >= c.nmsConfidenceThreshold }, iouThreshold: c.nmsIoUThreshold)
                .filter { $0.box.height > c.minimumBoxHeight }
        case .dbscan:
            let labels = DBSCAN.labels(kept, eps: c.eps, minSamples: Double(max(c.minSamples, 1)))
            var out: [ScoredBox] = []
            for k in 0..<((labels.max() ?? -1) + 1) {
                let members = kept.indices.filter { labels[$0] == k }.map { kept[$0] }
                let w = members.reduce(0.0) { $0 + $1.score }
                func mean(_ f: (Box) -> Double) -> Double { members.reduce(0.0) { $0 + f($1.box) * $1.score } / w }
                let box = Box(mean { $0.x1 }, mean { $0.y1 }, mean { $0.x2 }, mean { $0.y2 })
                if box.height > c.minimumBoxHeight && w >= c.confidenceThreshold { out.append(ScoredBox(box, score: w)) }
            }
            return out.enumerated().sorted { $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset }.map(\.element)
        }
    }
}

/// Greedy non-maximum suppression: by descending score, keep a box unless it overlaps a kept one by
/// more than `iouThreshold`.
public enum NMS {
    public static func suppress(_ boxes: [ScoredBox], iouThreshold: Double, topK: Int = .max) -> [ScoredBox] {
        let order = boxes.indices.sorted { boxes[$0].score != boxes[$1].score ? boxes[$0].score > boxes[$1].score : $0 < $1 }
        var kept: [ScoredBox] = []
        for i in order where kept.count < topK {
            if kept.allSatisfy({ $0.box.iou(boxes[i].box) <= iouThreshold }) { kept.append(boxes[i]) }
        }
        return kept
    }
}

extension ClusteringConfig {
    /// A spec's clustering_config (training's postprocessing_config or inference's bbox handler).
    init(coverageThreshold: Float, eps: Float, minSamples: Int, minimumBoxHeight: Int, confidence: Float, nms: Bool, nmsIoU: Float, nmsConfidence: Float) {
        self.init()
        self.coverageThreshold = Double(coverageThreshold); self.eps = Double(eps); self.minSamples = minSamples
        self.minimumBoxHeight = Double(minimumBoxHeight); confidenceThreshold = Double(confidence)
        algorithm = nms ? .nms : .dbscan
        nmsIoUThreshold = Double(nmsIoU); nmsConfidenceThreshold = Double(nmsConfidence)
    }
}
