import Foundation
import TaoMetrics

/// One head of a YOLO model: its grid and anchors. Coordinates are fractions of the network input
/// (0…1), as TAO's YOLO encodes them.
public struct YOLOHead: Sendable, Equatable {
    public var gridWidth: Int, gridHeight: Int
    /// (width, height) of each anchor, as fractions of the input's width and height.
    public var anchors: [(w: Double, h: Double)]
    /// YOLOv4's grid scale 1 + `*_grid_xy_extend` (1 for YOLOv3).
    public var xyScale: Double
    public init(gridWidth: Int, gridHeight: Int, anchors: [(w: Double, h: Double)], xyScale: Double = 1) {
        self.gridWidth = gridWidth; self.gridHeight = gridHeight; self.anchors = anchors; self.xyScale = xyScale
    }
    public var cells: Int { gridWidth * gridHeight }
    public static func == (a: Self, b: Self) -> Bool {
        a.gridWidth == b.gridWidth && a.gridHeight == b.gridHeight && a.xyScale == b.xyScale
            && a.anchors.map(\.w) == b.anchors.map(\.w) && a.anchors.map(\.h) == b.anchors.map(\.h)
    }
}

/// Where a head's raw output keeps a slot's channels: [N, anchors · (5 + C), H, W], per anchor t_y,
/// t_x, t_h, t_w, objectness, classes.
public struct YOLOLayout: Sendable, Equatable {
    public var heads: [YOLOHead]
    public var classes: Int
    public init(heads: [YOLOHead], classes: Int) { self.heads = heads; self.classes = classes }
    public var channelsPerAnchor: Int { 5 + classes }
    /// Values per image in head `h`'s output.
    public func perImage(_ h: Int) -> Int { heads[h].anchors.count * channelsPerAnchor * heads[h].cells }
    /// The offset of channel `k` of anchor `a` at cell (i, j) of image `n` in head `h`'s output.
    @inline(__always) public func offset(head h: Int, image n: Int, anchor a: Int, channel k: Int, row i: Int, column j: Int) -> Int {
        let g = heads[h]
        return n * perImage(h) + ((a * channelsPerAnchor + k) * g.gridHeight + i) * g.gridWidth + j
    }

    /// A slot's box from its raw t_y, t_x, t_h, t_w: centre and size as fractions of the input.
    public func decode(head h: Int, anchor a: Int, row i: Int, column j: Int, ty: Double, tx: Double, th: Double, tw: Double) -> (cx: Double, cy: Double, w: Double, h: Double) {
        let g = heads[h], s = g.xyScale
        return ((Double(j) + sigmoid(tx) * s - (s - 1) / 2) / Double(g.gridWidth), (Double(i) + sigmoid(ty) * s - (s - 1) / 2) / Double(g.gridHeight),
                g.anchors[a].w * exp(min(tw, 8)), g.anchors[a].h * exp(min(th, 8)))
    }
}

@inline(__always) func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

/// The slots a box of ground truth trains, as TAO's YOLO encoders choose them.
public struct YOLOTargets: Sendable {
    public struct Positive: Sendable, Equatable {
        public var head: Int, row: Int, column: Int, anchor: Int
        /// The box: centre and size as fractions of the input.
        public var cx: Double, cy: Double, w: Double, h: Double
        public var classIndex: Int
        /// The class's weight (class_weighting_config).
        public var weight: Double
    }
    public var positives: [Positive]
    /// Every box of the image (x1, y1, x2, y2 as fractions), for the neutral-box rule.
    public var boxes: [Box]

    /// Matches `objects` (class, x1, y1, x2, y2 as fractions of the input) to anchors: each box by
    /// shape IoU (centres aligned) to its best anchor, in the cell holding its centre at that anchor's
    /// head; with `matchingIoU` (YOLOv4's box_matching_iou) also to every anchor above it, a slot
    /// going to the box that overlaps its anchor most, a best match never taken away.
    public init(objects: [(classIndex: Int, box: Box)], layout: YOLOLayout, matchingIoU: Double?, classWeights: [Double]? = nil) {
        var slots: [[Int]: (positive: Positive, iou: Double)] = [:]
        let anchors = layout.heads.enumerated().flatMap { h, g in g.anchors.indices.map { (head: h, anchor: $0, w: g.anchors[$0].w, h: g.anchors[$0].h) } }
        for o in objects {
            let (w, h) = (o.box.x2 - o.box.x1, o.box.y2 - o.box.y1), cx = (o.box.x1 + o.box.x2) / 2, cy = (o.box.y1 + o.box.y2) / 2
            let ious = anchors.map { a in min(w, a.w) * min(h, a.h) / (w * h + a.w * a.h - min(w, a.w) * min(h, a.h)) }
            func place(_ k: Int) -> [Int] {
                let g = layout.heads[anchors[k].head]
                let col = Int(min(max(cx * Double(g.gridWidth), 0), Double(g.gridWidth) - 1e-3).rounded(.down))
                let row = Int(min(max(cy * Double(g.gridHeight), 0), Double(g.gridHeight) - 1e-3).rounded(.down))
                return [anchors[k].head, row, col, anchors[k].anchor]
            }
            func positive(_ key: [Int]) -> Positive {
                Positive(head: key[0], row: key[1], column: key[2], anchor: key[3], cx: cx, cy: cy, w: w, h: h, classIndex: o.classIndex,
                         weight: classWeights?[o.classIndex] ?? 1)
            }
            if let t = matchingIoU {
                for k in ious.indices where ious[k] > t {
                    let key = place(k)
                    if ious[k] > (slots[key]?.iou ?? 0) { slots[key] = (positive(key), ious[k]) }
                }
            }
            let best = ious.indices.max { ious[$0] < ious[$1] }!
            let key = place(best)
            slots[key] = (positive(key), 1)   // 1: a best match, which no later box's multi-match replaces
        }
        positives = slots.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { slots[$0]!.positive }
        boxes = objects.map(\.box)
    }
}

/// The complete IoU loss (Zheng et al., arXiv:1911.08287) of a predicted box against a true one,
/// written once over any `YOLOReal` so that the same code gives the value (Double) and its gradient
/// (`Dual4`), as TAO's l_ciou computes it: 1 − IoU + ρ²/c² + αv, α = v / (1 − IoU + v), the 1e-18
/// guards where TAO has them, the gradient flowing through α too.
public enum CIoU {
    public static func loss<T: YOLOReal>(gt: (cx: Double, cy: Double, w: Double, h: Double), x: T, y: T, w: T, h: T) -> T {
        let e = 1e-18
        let gx1 = T(gt.cx - gt.w / 2), gx2 = T(gt.cx + gt.w / 2), gy1 = T(gt.cy - gt.h / 2), gy2 = T(gt.cy + gt.h / 2)
        let px1 = x - w * T(0.5), px2 = x + w * T(0.5), py1 = y - h * T(0.5), py2 = y + h * T(0.5)
        let iw = T.maximum(T(0), T.minimum(gx2, px2) - T.maximum(gx1, px1))
        let ih = T.maximum(T(0), T.minimum(gy2, py2) - T.maximum(gy1, py1))
        let inter = iw * ih
        let union = T(gt.w * gt.h) + w * h - inter
        let iou = inter / (union + T(e))
        let ew = T.maximum(gx2, px2) - T.minimum(gx1, px1), eh = T.maximum(gy2, py2) - T.minimum(gy1, py1)
        let c2 = ew * ew + eh * eh
        let dx = T(gt.cx) - x, dy = T(gt.cy) - y
        let diou = T(1) - iou + (dx * dx + dy * dy) / (c2 + T(e))
        let dAtan = T(atan2(gt.w, gt.h + e)) - T.atan2(w, h + T(e))
        let v = T(4 / (Double.pi * Double.pi)) * dAtan * dAtan
        let alpha = v / (T(1) - iou + v + T(e))
        return diou + alpha * v
    }
}

/// The arithmetic CIoU needs, for Double and for forward-mode derivatives.
public protocol YOLOReal {
    init(_ v: Double)
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    static func maximum(_ a: Self, _ b: Self) -> Self
    static func minimum(_ a: Self, _ b: Self) -> Self
    static func atan2(_ y: Self, _ x: Self) -> Self
}

extension Double: YOLOReal {
    public static func atan2(_ y: Double, _ x: Double) -> Double { Foundation.atan2(y, x) }
}

/// A value with its derivatives along four inputs (forward mode).
public struct Dual4: YOLOReal {
    public var v: Double
    public var d0 = 0.0, d1 = 0.0, d2 = 0.0, d3 = 0.0
    public init(_ v: Double) { self.v = v }
    public init(_ v: Double, seed k: Int) {
        self.v = v
        switch k { case 0: d0 = 1; case 1: d1 = 1; case 2: d2 = 1; default: d3 = 1 }
    }
    init(_ v: Double, _ a: Double, _ b: Double, _ c: Double, _ d: Double) { self.v = v; d0 = a; d1 = b; d2 = c; d3 = d }
    public var gradient: [Double] { [d0, d1, d2, d3] }
    public static func + (a: Self, b: Self) -> Self { Self(a.v + b.v, a.d0 + b.d0, a.d1 + b.d1, a.d2 + b.d2, a.d3 + b.d3) }
    public static func - (a: Self, b: Self) -> Self { Self(a.v - b.v, a.d0 - b.d0, a.d1 - b.d1, a.d2 - b.d2, a.d3 - b.d3) }
    public static func * (a: Self, b: Self) -> Self {
        Self(a.v * b.v, a.d0 * b.v + a.v * b.d0, a.d1 * b.v + a.v * b.d1, a.d2 * b.v + a.v * b.d2, a.d3 * b.v + a.v * b.d3)
    }
    public static func / (a: Self, b: Self) -> Self {
        let q = a.v / b.v, inv = 1 / b.v
        return Self(q, (a.d0 - q * b.d0) * inv, (a.d1 - q * b.d1) * inv, (a.d2 - q * b.d2) * inv, (a.d3 - q * b.d3) * inv)
    }
    /// As TensorFlow: the gradient goes to the first argument on a tie.
    public static func maximum(_ a: Self, _ b: Self) -> Self { a.v >= b.v ? a : b }
    public static func minimum(_ a: Self, _ b: Self) -> Self { a.v <= b.v ? a : b }
    public static func atan2(_ y: Self, _ x: Self) -> Self {
        let r = x.v * x.v + y.v * y.v
        let (gy, gx) = (x.v / r, -y.v / r)
        return Self(Foundation.atan2(y.v, x.v), gy * y.d0 + gx * x.d0, gy * y.d1 + gx * x.d1, gy * y.d2 + gx * x.d2, gy * y.d3 + gx * x.d3)
    }
}

/// TAO's YOLO losses on the raw head outputs (nvidia_tao_tf1/cv/yolo_v3/losses/yolo_loss.py and
/// yolo_v4/losses/yolo_loss.py), with their gradients.
/// - YOLOv3: L2 on (σ(t_xy), t_wh) against the cell offset and log(size / anchor) (clipped to
///   [0.01, 100]), × (2 − w·h); objectness and class binary cross-entropy; each term divided by the
///   batch's positive count, the negative objectness by the negative count.
/// - YOLOv4: CIoU × (2 − w·h) × class weight; objectness and class BCE with label smoothing, or focal
///   BCE when α > 0 and γ > 0; each term summed over an image's slots and averaged over the batch.
/// A slot is negative when it trains no box and its decoded box overlaps every true box by less than
/// `neutralIoU`; the rest are neutral. Total = loc · locWeight + positive objectness + class ·
/// classWeight + negative objectness · negativeWeight.
public struct YOLOLoss: Sendable {
    public enum Version: Sendable { case v3, v4 }
    public var version: Version
    public var layout: YOLOLayout
    public var locWeight = 1.0, negativeWeight = 1.0, classWeight = 1.0
    public var neutralIoU = 0.5
    public var labelSmoothing = 0.0
    public var focalAlpha = 0.0, focalGamma = 0.0
    public init(version: Version, layout: YOLOLayout) { self.version = version; self.layout = layout }

    /// The parts of the last batch's loss, weighted as they enter the total.
    public struct Parts: Sendable {
        public var location = 0.0, positiveObjectness = 0.0, negativeObjectness = 0.0, classes = 0.0
        /// Per class of the matched boxes: their anchors' location and class loss, and how many anchors
        /// (what TAO's automatic class weighting reads).
        public var perClassLoss: [Double] = [], perClassAnchors: [Int] = []
    }

    var focal: Bool { version == .v4 && focalAlpha > 0 && focalGamma > 0 }

    /// Binary cross-entropy of logit `z` against target `y` (TAO clamps the probabilities at 1e-18),
    /// focal when set; returns the loss and its derivative by `z`.
    func bce(_ z: Double, _ y: Double) -> (Double, Double) {
        let p = sigmoid(z), floor = log(1e-18)
        let lp = z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)), lq = z >= 0 ? -z - log1p(exp(-z)) : -log1p(exp(z))
        let (cp, cq) = (max(lp, floor), max(lq, floor))
        let loss = -(y * cp + (1 - y) * cq)
        // d/dz of −(y log p + (1 − y) log(1 − p)) is p − y; a clamped logarithm passes nothing.
        let grad = -(y * (lp > floor ? 1 - p : 0) - (1 - y) * (lq > floor ? p : 0))
        guard focal else { return (loss, grad) }
        let pt = y * p + (1 - y) * (1 - p), w = y * focalAlpha + (1 - y) * (1 - focalAlpha), g = focalGamma
        let mod = pow(1 - pt, g)
        let dMod = -g * pow(1 - pt, g - 1) * (2 * y - 1) * p * (1 - p)
        return (w * mod * loss, w * (dMod * loss + mod * grad))
    }

    /// The batch's loss from the heads' outputs (`outputs[h]`, [N, anchors · (5 + C), H, W]); writes
    /// d(loss)/d(output) into `gradients` when given.
    public func callAsFunction(outputs: [UnsafePointer<Float>], targets: [YOLOTargets], gradients: [UnsafeMutablePointer<Float>]? = nil) -> (total: Double, parts: Parts) {
        let L = layout, n = targets.count, cpa = L.channelsPerAnchor
        if let gradients { for h in L.heads.indices { gradients[h].update(repeating: 0, count: n * L.perImage(h)) } }
        let smooth = version == .v4 ? labelSmoothing : 0
        let yPos = 1 * (1 - smooth) + smooth / 2, yNeg = smooth / 2
        // YOLOv3 averages over the batch's positives and negatives; YOLOv4 over its images.
        var negatives = [[[Bool]]](), negativeCount = 0
        for (img, t) in targets.enumerated() {
            var perHead: [[Bool]] = []
            var positive = Set<[Int]>()
            for p in t.positives { positive.insert([p.head, p.row, p.column, p.anchor]) }
            for (h, g) in L.heads.enumerated() {
                var neg = [Bool](repeating: false, count: g.anchors.count * g.cells)
                for a in g.anchors.indices {
                    for i in 0..<g.gridHeight {
                        for j in 0..<g.gridWidth where !positive.contains([h, i, j, a]) {
                            let o = { (k: Int) in Double(outputs[h][L.offset(head: h, image: img, anchor: a, channel: k, row: i, column: j)]) }
                            let d = L.decode(head: h, anchor: a, row: i, column: j, ty: o(0), tx: o(1), th: o(2), tw: o(3))
                            let box = Box(d.cx - d.w / 2, d.cy - d.h / 2, d.cx + d.w / 2, d.cy + d.h / 2)
                            let best = t.boxes.reduce(0.0) { max($0, box.iou($1)) }
                            if best < neutralIoU { neg[(a * g.gridHeight + i) * g.gridWidth + j] = true; negativeCount += 1 }
                        }
                    }
                }
                perHead.append(neg)
            }
            negatives.append(perHead)
        }
        let positiveCount = targets.reduce(0) { $0 + $1.positives.count }
        let (posScale, negScale): (Double, Double) = version == .v3
            ? (1 / max(Double(positiveCount), 1e-5), 1 / max(Double(negativeCount), 1e-5)) : (1 / Double(n), 1 / Double(n))
        var parts = Parts()
        parts.perClassLoss = [Double](repeating: 0, count: L.classes); parts.perClassAnchors = [Int](repeating: 0, count: L.classes)
        func add(_ h: Int, _ at: Int, _ g: Double) { if let gradients { gradients[h][at] += Float(g) } }

        for (img, t) in targets.enumerated() {
            // Negative objectness.
            for (h, g) in L.heads.enumerated() {
                for a in g.anchors.indices {
                    for i in 0..<g.gridHeight {
                        for j in 0..<g.gridWidth where negatives[img][h][(a * g.gridHeight + i) * g.gridWidth + j] {
                            let at = L.offset(head: h, image: img, anchor: a, channel: 4, row: i, column: j)
                            let (l, d) = bce(Double(outputs[h][at]), yNeg)
                            parts.negativeObjectness += negativeWeight * negScale * l
                            add(h, at, negativeWeight * negScale * d)
                        }
                    }
                }
            }
            for p in t.positives {
                let (h, g) = (p.head, L.heads[p.head])
                func at(_ k: Int) -> Int { L.offset(head: h, image: img, anchor: p.anchor, channel: k, row: p.row, column: p.column) }
                let z = (0..<cpa).map { Double(outputs[h][at($0)]) }
                let scale = 2 - p.w * p.h
                let before = parts.location + parts.classes
                // Location.
                switch version {
                case .v3:
                    let targetsT = [p.cy * Double(g.gridHeight) - Double(p.row), p.cx * Double(g.gridWidth) - Double(p.column),
                                    log(min(max(p.h / g.anchors[p.anchor].h, 1e-2), 1e2)), log(min(max(p.w / g.anchors[p.anchor].w, 1e-2), 1e2))]
                    for k in 0..<4 {
                        let pred = k < 2 ? sigmoid(z[k]) : z[k]
                        let diff = pred - targetsT[k]
                        parts.location += locWeight * posScale * scale * 0.5 * diff * diff
                        let dPred = locWeight * posScale * scale * diff
                        add(h, at(k), k < 2 ? dPred * pred * (1 - pred) : dPred)
                    }
                case .v4:
                    let s = g.xyScale, (gw, gh) = (Double(g.gridWidth), Double(g.gridHeight))
                    let (sy, sx) = (sigmoid(z[0]), sigmoid(z[1]))
                    let px = (Double(p.column) + sx * s - (s - 1) / 2) / gw, py = (Double(p.row) + sy * s - (s - 1) / 2) / gh
                    let ew = exp(min(z[3], 8)), eh = exp(min(z[2], 8))
                    let pw = g.anchors[p.anchor].w * ew, ph = g.anchors[p.anchor].h * eh
                    let c = CIoU.loss(gt: (p.cx, p.cy, p.w, p.h), x: Dual4(px, seed: 0), y: Dual4(py, seed: 1), w: Dual4(pw, seed: 2), h: Dual4(ph, seed: 3))
                    let wgt = locWeight * posScale * scale * p.weight
                    parts.location += wgt * c.v
                    add(h, at(0), wgt * c.d1 * sy * (1 - sy) * s / gh)
                    add(h, at(1), wgt * c.d0 * sx * (1 - sx) * s / gw)
                    add(h, at(2), z[2] < 8 ? wgt * c.d3 * ph : 0)
                    add(h, at(3), z[3] < 8 ? wgt * c.d2 * pw : 0)
                }
                // Positive objectness and classes.
                let (lo, dO) = bce(z[4], yPos)
                parts.positiveObjectness += posScale * lo
                add(h, at(4), posScale * dO)
                let cw = classWeight * posScale * (version == .v4 ? p.weight : 1)
                for c in 0..<L.classes {
                    let (lc, dc) = bce(z[5 + c], c == p.classIndex ? yPos : yNeg)
                    parts.classes += cw * lc
                    add(h, at(5 + c), cw * dc)
                }
                if (0..<L.classes).contains(p.classIndex) {
                    parts.perClassLoss[p.classIndex] += parts.location + parts.classes - before
                    parts.perClassAnchors[p.classIndex] += 1
                }
            }
        }
        return (parts.location + parts.positiveObjectness + parts.negativeObjectness + parts.classes, parts)
    }
}

/// Boxes from YOLO's heads as TAO decodes them (score = σ(objectness) · σ(class)), then per-class
/// non-maximum suppression and the `topK` best overall.
public enum YOLODecoder {
    /// Every slot of image `image`: its box (x1, y1, x2, y2 as fractions of the input) and its score
    /// per class, heads in order, each head's slots by anchor, row, column (the order export's ONNX
    /// decoding gives them).
    public static func slots(outputs: [UnsafePointer<Float>], image img: Int, layout L: YOLOLayout) -> [(box: Box, scores: [Double])] {
        var out: [(box: Box, scores: [Double])] = []
        for (h, g) in L.heads.enumerated() {
            for a in g.anchors.indices {
                for i in 0..<g.gridHeight {
                    for j in 0..<g.gridWidth {
                        func o(_ k: Int) -> Double { Double(outputs[h][L.offset(head: h, image: img, anchor: a, channel: k, row: i, column: j)]) }
                        let d = L.decode(head: h, anchor: a, row: i, column: j, ty: o(0), tx: o(1), th: o(2), tw: o(3))
                        let obj = sigmoid(o(4))
                        out.append((Box(d.cx - d.w / 2, d.cy - d.h / 2, d.cx + d.w / 2, d.cy + d.h / 2), (0..<L.classes).map { obj * sigmoid(o(5 + $0)) }))
                    }
                }
            }
        }
        return out
    }

    /// Per image, per class, the boxes above `confidence` (x1, y1, x2, y2 as fractions of the input).
    public static func detections(outputs: [UnsafePointer<Float>], batch: Int, layout L: YOLOLayout, confidence: Double, nmsIoU: Double, topK: Int) -> [[[ScoredBox]]] {
        (0..<batch).map { img in
            var perClass = [[ScoredBox]](repeating: [], count: L.classes)
            for s in slots(outputs: outputs, image: img, layout: L) {
                for (c, score) in s.scores.enumerated() where score > confidence { perClass[c].append(ScoredBox(s.box, score: score)) }
            }
            let kept = perClass.map { NMS.suppress($0, iouThreshold: nmsIoU, topK: topK) }
            // The topK best over all classes.
            let scores = kept.flatMap { $0.map(\.score) }.sorted(by: >)
            guard scores.count > topK else { return kept }
            let cut = scores[topK - 1]
            var left = topK - kept.reduce(0) { $0 + $1.filter { $0.score > cut }.count }
            return kept.map { boxes in boxes.filter { b in
                if b.score > cut { return true }
                if b.score == cut && left > 0 { left -= 1; return true }
                return false
            } }
        }
    }
}
