import Foundation

/// An array as a file's output is: dims with the batch first, values (integers as floats, exact
/// below 2²⁴), and whether ONNX gives it as int64.
public struct ONNXArray: Sendable, Equatable {
    public var dims: [Int]
    public var values: [Float]
    public var integer: Bool
    public init(dims: [Int], values: [Float], integer: Bool = false) { self.dims = dims; self.values = values; self.integer = integer }
}

/// An op that ends a model at inference and cannot be trained through — ArgMax / ArgMin, TopK,
/// NonMaxSuppression — run after the network on its outputs (whole batches, any axis, the batch's
/// too) with ONNX's semantics. The importer takes them where their results are the model's
/// outputs; training uses the network's outputs before them, and says so.
public struct ONNXPostStep: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case argMax(axis: Int, keepDims: Bool, selectLast: Bool, smallest: Bool)
        case topK(axis: Int, k: Int, largest: Bool)
        /// boxes [N, B, 4] and scores [N, C, B] → selected (image, class, box) rows [K, 3].
        case nonMaxSuppression(maxPerClass: Int, iou: Float, scoreThreshold: Float, centerPointBox: Bool)
        /// X [N, C, H, W], rois [R, 4] (x1, y1, x2, y2), batch indices [R] → [R, C, height, width].
        case roiAlign(max: Bool, height: Int, width: Int, samplingRatio: Int, spatialScale: Float, halfPixel: Bool)
    }
    public var kind: Kind
    /// The file's node and op, for messages.
    public var node: String, opType: String
    public enum Input: Sendable, Equatable { case network(Int), constant(ONNXArray) }
    /// What it reads: network outputs by index, or the file's constants.
    public var inputs: [Input]
    /// The names of the file's outputs it makes.
    public var outputs: [String]

    public func apply(_ xs: [ONNXArray]) throws -> [ONNXArray] {
        switch kind {
        case let .argMax(axis, keep, last, smallest): return [Self.argMax(xs[0], axis: axis, keepDims: keep, selectLast: last, smallest: smallest)]
        case let .topK(axis, k, largest): return try Self.topK(xs[0], axis: axis, k: k, largest: largest, node: node)
        case let .nonMaxSuppression(m, iou, threshold, center):
            return [try Self.nms(boxes: xs[0], scores: xs[1], maxPerClass: m, iou: iou, scoreThreshold: threshold, centerPointBox: center, node: node)]
        case let .roiAlign(isMax, oh, ow, ratio, scale, halfPixel):
            return [try Self.roiAlign(xs[0], rois: xs[1], batchIndices: xs[2], max: isMax, height: oh, width: ow, samplingRatio: ratio,
                                      spatialScale: scale, halfPixel: halfPixel, node: node)]
        }
    }

    /// (outer, size, inner) of `dims` around `axis`.
    static func split(_ dims: [Int], _ axis: Int) -> (Int, Int, Int) {
        (dims[..<axis].reduce(1, *), dims[axis], dims[(axis + 1)...].reduce(1, *))
    }

    static func argMax(_ x: ONNXArray, axis: Int, keepDims: Bool, selectLast: Bool, smallest: Bool) -> ONNXArray {
        let (outer, size, inner) = split(x.dims, axis)
        var out = [Float](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                for k in 1..<max(size, 1) {
                    let (v, b) = (x.values[(o * size + k) * inner + i], x.values[(o * size + best) * inner + i])
                    let better = smallest ? v < b : v > b
                    if better || selectLast && v == b { best = k }
                }
                out[o * inner + i] = Float(best)
            }
        }
        var dims = x.dims
        if keepDims { dims[axis] = 1 } else { dims.remove(at: axis) }
        return ONNXArray(dims: dims, values: out, integer: true)
    }

    /// The k largest (or smallest) along `axis`, sorted, ties to the lower index: values and indices.
    static func topK(_ x: ONNXArray, axis: Int, k: Int, largest: Bool, node: String) throws -> [ONNXArray] {
        let (outer, size, inner) = split(x.dims, axis)
        guard k >= 0, k <= size else { throw ONNXError("TopK '\(node)': k = \(k) of an axis of \(size)") }
        var values = [Float](repeating: 0, count: outer * k * inner), indices = values
        for o in 0..<outer {
            for i in 0..<inner {
                let order = (0..<size).sorted { a, b in
                    let (va, vb) = (x.values[(o * size + a) * inner + i], x.values[(o * size + b) * inner + i])
                    return va != vb ? (largest ? va > vb : va < vb) : a < b
                }
                for j in 0..<k {
                    values[(o * k + j) * inner + i] = x.values[(o * size + order[j]) * inner + i]
                    indices[(o * k + j) * inner + i] = Float(order[j])
                }
            }
        }
        var dims = x.dims
        dims[axis] = k
        return [ONNXArray(dims: dims, values: values), ONNXArray(dims: dims, values: indices, integer: true)]
    }

    /// ONNX's NonMaxSuppression: per image and class, the boxes scoring above the threshold by
    /// falling score (ties to the lower index), each kept unless its IoU with one kept before
    /// exceeds `iou`, at most `maxPerClass`; corners in either order, or centre and size.
    static func nms(boxes: ONNXArray, scores: ONNXArray, maxPerClass: Int, iou: Float, scoreThreshold: Float, centerPointBox: Bool, node: String) throws -> ONNXArray {
        guard boxes.dims.count == 3, boxes.dims[2] == 4, scores.dims.count == 3, scores.dims[0] == boxes.dims[0], scores.dims[2] == boxes.dims[1] else {
            throw ONNXError("NonMaxSuppression '\(node)': boxes \(boxes.dims) and scores \(scores.dims) are not [N,B,4] and [N,C,B]")
        }
        let (n, b, c) = (boxes.dims[0], boxes.dims[1], scores.dims[1])
        var rows: [Float] = []
        for image in 0..<n {
            // Each box as (y1, x1, y2, x2) with y1 ≤ y2, x1 ≤ x2.
            let corners: [(Float, Float, Float, Float)] = (0..<b).map { k in
                let v = Array(boxes.values[(image * b + k) * 4 ..< (image * b + k) * 4 + 4])
                if centerPointBox { return (v[1] - v[3] / 2, v[0] - v[2] / 2, v[1] + v[3] / 2, v[0] + v[2] / 2) }
                return (min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3]))
            }
            func overlap(_ a: Int, _ d: Int) -> Float {
                let (p, q) = (corners[a], corners[d])
                let h = max(0, min(p.2, q.2) - max(p.0, q.0)), w = max(0, min(p.3, q.3) - max(p.1, q.1))
                let inter = h * w, union = (p.2 - p.0) * (p.3 - p.1) + (q.2 - q.0) * (q.3 - q.1) - inter
                return union > 0 ? inter / union : 0
            }
            for cls in 0..<c {
                let s = Array(scores.values[(image * c + cls) * b ..< (image * c + cls + 1) * b])
                let candidates = (0..<b).filter { s[$0] > scoreThreshold }.sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }
                var kept: [Int] = []
                for k in candidates where kept.count < maxPerClass {
                    if kept.allSatisfy({ overlap($0, k) <= iou }) { kept.append(k) }
                }
                for k in kept { rows += [Float(image), Float(cls), Float(k)] }
            }
        }
        return ONNXArray(dims: [rows.count / 3, 3], values: rows, integer: true)
    }
}

extension ONNXPostStep {
    /// ONNX's RoiAlign (Mask R-CNN's): each region's bins averaged (or, as onnxruntime computes
    /// max mode, the largest weighted corner) over a grid of bilinear samples, the grid
    /// `samplingRatio` a side or ⌈bin size⌉; with `halfPixel` the region's corners shift by −½.
    static func roiAlign(_ x: ONNXArray, rois: ONNXArray, batchIndices: ONNXArray, max isMax: Bool, height oh: Int, width ow: Int, samplingRatio: Int,
                         spatialScale: Float, halfPixel: Bool, node: String) throws -> ONNXArray {
        guard x.dims.count == 4, rois.dims.count == 2, rois.dims[1] == 4, batchIndices.values.count == rois.dims[0] else {
            throw ONNXError("RoiAlign '\(node)': X \(x.dims), rois \(rois.dims) and batch indices \(batchIndices.dims) are not [N,C,H,W], [R,4] and [R]")
        }
        let (n, c, h, w, r) = (x.dims[0], x.dims[1], x.dims[2], x.dims[3], rois.dims[0])
        var out = [Float](repeating: 0, count: r * c * oh * ow)
        for k in 0..<r {
            let image = Int(batchIndices.values[k])
            guard image >= 0, image < n else { throw ONNXError("RoiAlign '\(node)': region \(k) names image \(image) of \(n)") }
            let offset: Double = halfPixel ? 0.5 : 0, s = Double(spatialScale)
            let box = (0..<4).map { Double(rois.values[k * 4 + $0]) * s - offset }
            var (roiW, roiH) = (box[2] - box[0], box[3] - box[1])
            if !halfPixel { roiW = Swift.max(roiW, 1); roiH = Swift.max(roiH, 1) }
            let (binH, binW) = (roiH / Double(oh), roiW / Double(ow))
            let gridH = samplingRatio > 0 ? samplingRatio : Int((roiH / Double(oh)).rounded(.up))
            let gridW = samplingRatio > 0 ? samplingRatio : Int((roiW / Double(ow)).rounded(.up))
            let count = Double(Swift.max(gridH * gridW, 1))
            for ch in 0..<c {
                let plane = (image * c + ch) * h * w
                func at(_ yy: Int, _ xx: Int) -> Double { Double(x.values[plane + yy * w + xx]) }
                for ph in 0..<oh {
                    for pw in 0..<ow {
                        var acc = isMax ? -Double.infinity : 0
                        for iy in 0..<gridH {
                            let row = box[1] + Double(ph) * binH + (Double(iy) + 0.5) * binH / Double(gridH)
                            for ix in 0..<gridW {
                                var y = row
                                var xx = box[0] + Double(pw) * binW + (Double(ix) + 0.5) * binW / Double(gridW)
                                guard y >= -1, y <= Double(h), xx >= -1, xx <= Double(w) else { acc = isMax ? Swift.max(acc, 0) : acc; continue }
                                y = Swift.max(y, 0); xx = Swift.max(xx, 0)
                                var (y0, x0) = (Int(y.rounded(.down)), Int(xx.rounded(.down)))
                                var (y1, x1) = (y0 + 1, x0 + 1)
                                if y0 >= h - 1 { (y0, y1) = (h - 1, h - 1); y = Double(y0) }
                                if x0 >= w - 1 { (x0, x1) = (w - 1, w - 1); xx = Double(x0) }
                                let (ly, lx) = (y - Double(y0), xx - Double(x0)), (hy, hx) = (1 - y + Double(y0), 1 - xx + Double(x0))
                                let terms = [hy * hx * at(y0, x0), hy * lx * at(y0, x1), ly * hx * at(y1, x0), ly * lx * at(y1, x1)]
                                acc = isMax ? Swift.max(acc, terms.max()!) : acc + terms.reduce(0, +)
                            }
                        }
                        out[((k * c + ch) * oh + ph) * ow + pw] = Float(isMax ? acc : acc / count)
                    }
                }
            }
        }
        return ONNXArray(dims: [r, c, oh, ow], values: out)
    }
}

extension ONNXImport.Result {
    /// The file's outputs, by name and in its order, from the network's outputs (`network[k]` for
    /// `outputNames[k]`, batch first): the network's as they are, the post steps' computed.
    public func fileOutputs(_ network: [ONNXArray]) throws -> [(name: String, array: ONNXArray)] {
        var byName: [String: ONNXArray] = [:]
        for (k, name) in outputNames.enumerated() where k < network.count { byName[name] = network[k] }
        for step in postSteps {
            let made = try step.apply(step.inputs.map { i in
                switch i { case .network(let k): network[k]; case .constant(let a): a }
            })
            for (name, a) in zip(step.outputs, made) where !name.isEmpty { byName[name] = a }
        }
        return try fileOutputNames.map { name in
            guard let a = byName[name] else { throw ONNXError("output '\(name)' was not computed") }
            return (name, a)
        }
    }
}
