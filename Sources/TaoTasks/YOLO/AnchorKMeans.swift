import Foundation
import TaoData
import TaoTensor

/// TAO's `kmeans` for YOLO anchors (nvidia_tao_tf1/cv/yolo_v3/scripts/kmeans.py): the boxes of KITTI
/// folders as widths and heights relative to their image, clustered by k-medians under the distance
/// 1 − IoU of two boxes that share a corner; the centers, sorted by area and scaled to the network's
/// input, are the anchor shapes of a YOLO spec.
public enum AnchorKMeans {
    /// A box's size relative to its image (0–1).
    public struct Size: Sendable, Equatable {
        public var width, height: Double
        public init(width: Double, height: Double) { self.width = width; self.height = height }
        public var area: Double { width * height }
    }

    /// The boxes of each label folder with the sizes of the images of the folder paired with it (as
    /// `KITTIDataset` pairs them: a missing label file or image is an error); boxes not wider than
    /// `minWidth` or not taller than `minHeight` (relative, as TAO's `--min_x / size_x`) are left out.
    public static func boxes(labelFolders: [String], imageFolders: [String], minWidth: Double = 0, minHeight: Double = 0) throws -> [Size] {
        guard labelFolders.count == imageFolders.count else {
            throw TaskError("kmeans: \(labelFolders.count) label folder(s) but \(imageFolders.count) image folder(s); they pair one to one, in order")
        }
        var sizes: [Size] = []
        for (labels, images) in zip(labelFolders, imageFolders) {
            let data = try KITTIDataset(images: images, labels: labels)
            for i in 0..<data.count {
                let (w, h) = try ImageCodec.size(path: data.imagePaths[i])
                for o in try data.objects(i, imageWidth: w, imageHeight: h) {
                    let s = Size(width: Double(o.x2 - o.x1) / Double(w), height: Double(o.y2 - o.y1) / Double(h))
                    if s.width > minWidth && s.height > minHeight { sizes.append(s) }
                }
            }
        }
        return sizes
    }

    /// IoU of two boxes aligned at their top-left corners.
    public static func iou(_ a: Size, _ b: Size) -> Double {
        let inter = min(a.width, b.width) * min(a.height, b.height)
        return inter / (a.area + b.area - inter)
    }

    /// `clusters` centers for `boxes`, started from boxes drawn with `seed`.
    public static func fit(_ boxes: [Size], clusters: Int, seed: UInt64, maxSteps: Int = 10_000) throws -> (centers: [Size], steps: Int) {
        guard clusters > 0, clusters < boxes.count else {
            throw TaskError("kmeans: \(clusters) clusters need more boxes than that; the labels have \(boxes.count)")
        }
        return try cluster(boxes, initial: initialIndices(n: boxes.count, count: clusters, seed: seed), maxSteps: maxSteps)
    }

    /// `count` distinct indices below `n`, drawn with `seed` (the starting centers).
    public static func initialIndices(n: Int, count: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        var all = Array(0..<n)
        for i in 0..<count { all.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        return Array(all.prefix(count))
    }

    /// k-medians from the boxes at `initial`: each box goes to the center of highest IoU (the first on
    /// ties), each center moves to the medians of its boxes' widths and heights (a center left without
    /// boxes stays), until no box changes cluster or after `maxSteps` rounds. The centers sorted by area,
    /// and the rounds run.
    public static func cluster(_ boxes: [Size], initial: [Int], maxSteps: Int = 10_000) throws -> (centers: [Size], steps: Int) {
        guard !initial.isEmpty, initial.count < boxes.count else {
            throw TaskError("kmeans: \(initial.count) clusters need more boxes than that; the labels have \(boxes.count)")
        }
        var centers = initial.map { boxes[$0] }
        var assignment = [Int](repeating: -1, count: boxes.count)
        var steps = 0
        while steps < maxSteps {
            steps += 1
            var changed = false
            for (i, b) in boxes.enumerated() {
                var best = 0, bestIoU = -1.0
                for (k, c) in centers.enumerated() { let v = iou(b, c); if v > bestIoU { (best, bestIoU) = (k, v) } }
                if assignment[i] != best { assignment[i] = best; changed = true }
            }
            if !changed { break }
            var members = [[Size]](repeating: [], count: centers.count)
            for (i, k) in assignment.enumerated() { members[k].append(boxes[i]) }
            for k in centers.indices where !members[k].isEmpty {
                centers[k] = Size(width: median(members[k].map(\.width)), height: median(members[k].map(\.height)))
            }
        }
        return (centers.sorted { $0.area < $1.area }, steps)
    }

    /// The middle value (the mean of the two middle ones for an even count), as numpy's median.
    static func median(_ v: [Double]) -> Double {
        let s = v.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    /// The anchors as TAO prints them, "(w, h)" in the network's pixels, and as spec lines: the
    /// centers split smallest first into `scales` (3 for YOLOv3/v4: small, mid, big; 2 for
    /// YOLOv4-tiny: mid, big) when their count divides evenly.
    public static func report(_ centers: [Size], width: Int, height: Int, scales: Int) -> [String] {
        let pairs = centers.map { String(format: "(%.2f, %.2f)", $0.width * Double(width), $0.height * Double(height)) }
        var lines = ["Please use following anchor sizes in YOLO config:"] + pairs
        guard scales > 0, pairs.count % scales == 0 else { return lines }
        let names = Array(["small_anchor_shape", "mid_anchor_shape", "big_anchor_shape"].suffix(scales))
        let per = pairs.count / scales
        lines.append("As spec lines (\(names.joined(separator: ", "))):")
        for (k, name) in names.enumerated() {
            lines.append("\(name): \"[\(pairs[(k * per)..<((k + 1) * per)].joined(separator: ", "))]\"")
        }
        return lines
    }
}
