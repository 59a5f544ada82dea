import Foundation

/// An axis-aligned box in pixels, corners (x1, y1) top-left and (x2, y2) bottom-right.
public struct Box: Equatable, Sendable {
    public var x1: Double, y1: Double, x2: Double, y2: Double
    public init(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) { self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2 }
    public var width: Double { max(0, x2 - x1) }
    public var height: Double { max(0, y2 - y1) }
    public var area: Double { width * height }

    /// Intersection over union (continuous coordinates: a box spans x2 − x1 pixels).
    public func iou(_ o: Box) -> Double {
        let w = min(x2, o.x2) - max(x1, o.x1), h = min(y2, o.y2) - max(y1, o.y1)
        guard w > 0, h > 0 else { return 0 }
        let inter = w * h
        return inter / (area + o.area - inter)
    }
}

/// A predicted box of one class in one image, with its confidence.
public struct Detection: Equatable, Sendable {
    public var image: Int, classIndex: Int, box: Box, score: Double
    public init(image: Int, classIndex: Int, box: Box, score: Double) { self.image = image; self.classIndex = classIndex; self.box = box; self.score = score }
}

/// A labelled box; a difficult one is neither a hit nor a miss (TAO: occlusion ≠ 0).
public struct GroundTruth: Equatable, Sendable {
    public var image: Int, classIndex: Int, box: Box, difficult: Bool
    public init(image: Int, classIndex: Int, box: Box, difficult: Bool = false) { self.image = image; self.classIndex = classIndex; self.box = box; self.difficult = difficult }
}

/// How the precision-recall curve becomes one number (TAO's `average_precision_mode`).
public enum APMode: String, Sendable, CaseIterable {
    /// VOC 2007: the mean of the best precision at recall ≥ 0, 0.1, …, 1 (TAO's SAMPLE, its default).
    case sample
    /// VOC 2010+: the area under the monotone precision envelope (TAO's INTEGRATE).
    case integrate
}

/// One class's precision-recall curve and average precision.
public struct ClassAP: Sendable {
    /// Precision and recall after each detection, by descending score (difficult matches left out).
    public var precision: [Double]
    public var recall: [Double]
    /// The score of each of those detections (descending).
    public var scores: [Double] = []
    /// Nil for a class without (non-difficult) ground truth: its AP is undefined, and mAP skips it.
    public var ap: Double?
    public var groundTruth: Int
    public var truePositives: Int
    public var falsePositives: Int
}

/// Average precision per class and its mean, as TAO's evaluators compute it: detections by
/// descending score, each matched greedily to the unmatched ground truth of its image and class
/// with the largest IoU at or above the class's threshold; a second match of the same box is a false
/// positive; a match to a difficult box counts as neither.
public enum AveragePrecision {
    public static func evaluate(detections: [Detection], groundTruth: [GroundTruth], classes: Int,
                                iouThreshold: [Double], mode: APMode) -> [ClassAP] {
        precondition(iouThreshold.count == classes, "one IoU threshold per class")
        return (0..<classes).map { c in
            let gts = groundTruth.filter { $0.classIndex == c }
            var byImage: [Int: [Int]] = [:]
            for (k, g) in gts.enumerated() { byImage[g.image, default: []].append(k) }
            var used = [Bool](repeating: false, count: gts.count)
            // Stable order for equal scores: the order given.
            let dets = detections.enumerated().filter { $0.element.classIndex == c }
                .sorted { $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset }.map(\.element)
            let positives = gts.filter { !$0.difficult }.count
            var tp = 0, fp = 0
            var precision: [Double] = [], recall: [Double] = [], scores: [Double] = []
            for d in dets {
                var best = -1, bestIoU = 0.0
                for k in byImage[d.image] ?? [] {
                    let o = gts[k].box.iou(d.box)
                    if o > bestIoU { bestIoU = o; best = k }
                }
                if best >= 0, bestIoU >= iouThreshold[c] {
                    if gts[best].difficult { continue }
                    if used[best] { fp += 1 } else { used[best] = true; tp += 1 }
                } else {
                    fp += 1
                }
                precision.append(Double(tp) / Double(tp + fp))
                recall.append(positives > 0 ? Double(tp) / Double(positives) : 0)
                scores.append(d.score)
            }
            let ap: Double? = positives == 0 ? nil : area(precision: precision, recall: recall, mode: mode)
            return ClassAP(precision: precision, recall: recall, scores: scores, ap: ap, groundTruth: positives, truePositives: tp, falsePositives: fp)
        }
    }

    /// The mean of the defined per-class APs (0 when none is defined).
    public static func mean(_ aps: [ClassAP]) -> Double {
        let defined = aps.compactMap(\.ap)
        return defined.isEmpty ? 0 : defined.reduce(0, +) / Double(defined.count)
    }

    /// One number from a precision-recall curve.
    public static func area(precision: [Double], recall: [Double], mode: APMode) -> Double {
        switch mode {
        case .sample:
            var sum = 0.0
            for t in 0...10 {
                let r = Double(t) / 10
                sum += zip(precision, recall).filter { $0.1 >= r - 1e-12 }.map(\.0).max() ?? 0
            }
            return sum / 11
        case .integrate:
            let mrec = [0.0] + recall + [1.0]
            var mpre = [0.0] + precision + [0.0]
            for i in stride(from: mpre.count - 2, through: 0, by: -1) { mpre[i] = max(mpre[i], mpre[i + 1]) }
            var sum = 0.0
            for i in 1..<mrec.count where mrec[i] != mrec[i - 1] { sum += (mrec[i] - mrec[i - 1]) * mpre[i] }
            return sum
        }
    }
}
