import TaoGraph

/// Which channels of which "channel space" a value carries along its channel axis.
///
/// A channel space is a set of filters that must be kept or removed together: the output filters of
/// a convolution or dense layer, merged with every other layer whose output is added to or
/// multiplied with it (residual adds, squeeze-excite gates), and carried unchanged through batch
/// norm, activations, pooling and depthwise convolutions. Concatenation lays spaces side by side;
/// slicing takes a range of them.
struct Segment: Equatable {
    var space: Int
    var start: Int
    var end: Int
    var count: Int { end - start }
}

/// A value's channel layout: its segments in order; `repeatCount` > 1 after flattening [C,H,W],
/// where each channel becomes H·W consecutive features.
struct Layout: Equatable {
    var segments: [Segment]
    var repeatCount = 1
    var channels: Int { segments.reduce(0) { $0 + $1.count } }
}

/// Channel dependency analysis over a graph.
struct ChannelGraph {
    let graph: Graph
    private(set) var parent: [Int] = []
    private(set) var size: [Int] = []
    /// Spaces that must keep every channel (graph inputs, outputs, excluded or unsupported layers).
    private(set) var pinned: [Bool] = []
    /// Why a space is pinned, for the report.
    private(set) var pinReason: [String?] = []
    /// Nodes whose output filters define a space (dense and convolution layers, groups = 1).
    private(set) var producers: [Int: [Int]] = [:]
    /// Layout of each value (nil for parameters and values without a channel axis).
    private(set) var layouts: [Layout?]

    init(_ g: Graph) {
        graph = g
        layouts = [Layout?](repeating: nil, count: g.valueCount)
        for (i, v) in g.inputs.enumerated() {
            let s = newSpace(g.shape(of: v)[0])
            pin(s, "graph input '\(g.inputNames[i])'")
            layouts[v.index] = Layout(segments: [Segment(space: s, start: 0, end: size[s])])
        }
        for (i, n) in g.nodes.enumerated() { layouts[n.output.index] = layout(of: n, index: i) }
        for o in g.outputs { if let l = layouts[o.index] { pinAll(l, "feeds the graph output") } }
    }

    func root(_ s: Int) -> Int {
        var s = s
        while parent[s] != s { s = parent[s] }
        return s
    }

    mutating func newSpace(_ n: Int, producer: Int? = nil) -> Int {
        parent.append(parent.count); size.append(n); pinned.append(false); pinReason.append(nil)
        if let p = producer { producers[parent.count - 1] = [p] }
        return parent.count - 1
    }

    mutating func pin(_ s: Int, _ why: String) {
        let r = root(s)
        if !pinned[r] { pinned[r] = true; pinReason[r] = why }
    }

    mutating func pinAll(_ l: Layout, _ why: String) { for seg in l.segments { pin(seg.space, why) } }

    mutating func union(_ a: Int, _ b: Int) {
        let (ra, rb) = (root(a), root(b))
        guard ra != rb else { return }
        parent[rb] = ra
        producers[ra, default: []] += producers[rb] ?? []
        producers[rb] = nil
        if pinned[rb] { pinned[ra] = true; pinReason[ra] = pinReason[ra] ?? pinReason[rb] }
    }

    /// A fresh pinned space for a value the analysis cannot follow.
    mutating func opaque(_ n: Node, _ why: String) -> Layout? {
        for v in n.inputs { if let l = layouts[v.index] { pinAll(l, "'\(n.name)' (\(n.op.kind)) \(why)") } }
        let shape = graph.shape(of: n.output)
        let s = newSpace(shape[0])
        pin(s, "output of '\(n.name)' (\(n.op.kind)) \(why)")
        return Layout(segments: [Segment(space: s, start: 0, end: shape[0])])
    }

    mutating func layout(of n: Node, index: Int) -> Layout? {
        let x = n.inputs.first.flatMap { layouts[$0.index] }
        switch n.op {
        case .conv2d(let c):
            let cin = graph.shape(of: n.inputs[0])[0]
            if c.groups == 1 { return Layout(segments: [Segment(space: newSpace(c.outChannels, producer: index), start: 0, end: c.outChannels)]) }
            if c.groups == cin && c.outChannels == cin { return x }     // depthwise: channel k stays channel k
            return opaque(n, "is a grouped convolution")
        case .convTranspose2d(let c):
            return Layout(segments: [Segment(space: newSpace(c.outChannels, producer: index), start: 0, end: c.outChannels)])
        case .dense(let d):
            return Layout(segments: [Segment(space: newSpace(d.outFeatures, producer: index), start: 0, end: d.outFeatures)])
        case .batchNorm, .activation, .pool2d, .globalAveragePool, .dropout, .pad2d, .upsample, .resize, .softmax, .logSoftmax:
            return x
        case .transpose(let perm):
            // Channels stay channels only where the channel axis stays axis 1 (with the rest only reordered, no repeat).
            if perm.count > 1, perm[1] == 1, x?.repeatCount ?? 1 == 1 { return x }
            return opaque(n, "moves the channel axis")
        case .flatten:
            guard var l = x else { return nil }
            let s = graph.shape(of: n.inputs[0])
            l.repeatCount *= s.count / s[0]
            return l
        case .reshape(let shape):
            // Only [C] ⇄ [C,1,1] keeps channels where they were.
            let s = graph.shape(of: n.inputs[0])
            if shape[0] == s[0] && shape.count == s[0] && s.count == s[0] { return x }
            return opaque(n, "reshapes across the channel axis")
        case .add, .mul:
            guard var a = x, let b = layouts[n.inputs[1].index] else { return opaque(n, "mixes values without channels") }
            if a.segments.count == 1, b.segments.count == 1, a.segments[0].start == 0, b.segments[0].start == 0,
               a.segments[0].end == size[a.segments[0].space], b.segments[0].end == size[b.segments[0].space], a.repeatCount == b.repeatCount {
                union(a.segments[0].space, b.segments[0].space)
                a.segments[0].space = root(a.segments[0].space)
                return a
            }
            let same = a.repeatCount == b.repeatCount && a.segments.count == b.segments.count
                && zip(a.segments, b.segments).allSatisfy { root($0.space) == root($1.space) && $0.start == $1.start && $0.end == $1.end }
            return same ? a : opaque(n, "joins differently laid-out channels")
        case .compare:
            return opaque(n, "compares values")
        case .concat(let axis):
            guard axis == 1 else { return opaque(n, "concatenates along another axis") }
            var segs: [Segment] = []
            for v in n.inputs {
                guard let l = layouts[v.index], l.repeatCount == 1 else { return opaque(n, "concatenates values without channels") }
                segs += l.segments
            }
            return Layout(segments: segs)
        case .slice(let s):
            if s.axis == 1 && s.step != 1 { return opaque(n, "takes every \(s.step)th channel") }
            guard s.axis == 1, let l = x, l.repeatCount == 1 else { return s.axis == 1 ? opaque(n, "slices flattened features") : x }
            var out: [Segment] = [], pos = 0
            for seg in l.segments {
                let lo = max(s.start, pos), hi = min(s.end, pos + seg.count)
                if lo < hi { out.append(Segment(space: seg.space, start: seg.start + lo - pos, end: seg.start + hi - pos)) }
                pos += seg.count
            }
            return Layout(segments: out)
        }
    }

    /// The keep-mask of a layout given per-space masks (expanded by the repeat count).
    func mask(_ l: Layout, _ keep: [Int: [Bool]]) -> [Bool] {
        var m: [Bool] = []
        for seg in l.segments {
            let r = root(seg.space)
            for c in seg.start..<seg.end {
                let k = keep[r]?[c] ?? true
                m += [Bool](repeating: k, count: l.repeatCount)
            }
        }
        return m
    }
}
