import Foundation
import TaoGraph

/// TAO's pruning options (`tao <task> prune`), with TAO's defaults.
public struct PruneOptions: Sendable {
    /// How each layer's filter norms are scaled before thresholding: by their maximum, or by their L2 norm.
    public enum Normalizer: String, Sendable, CaseIterable { case max, l2 = "L2" }
    /// How the scores of layers that must keep the same channels are merged.
    public enum Equalization: String, Sendable, CaseIterable {
        case union, intersection, arithmeticMean = "arithmetic_mean", geometricMean = "geometric_mean"
    }
    public var threshold: Float = 0.1
    public var normalizer: Normalizer = .max
    public var equalization: Equalization = .union
    public var granularity = 8
    public var minFilters = 16
    public var excludedLayers: [String] = []
    public init() {}
}

public struct PruneError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// What pruning did, layer by layer.
public struct PruneReport: Sendable {
    public struct Layer: Sendable { public var name: String; public var before: Int; public var after: Int; public var group: Int }
    public var layers: [Layer]
    public var parametersBefore: Int, parametersAfter: Int
    public var macsBefore: Int, macsAfter: Int
    /// Layers that had to keep all their filters, and why.
    public var pinned: [(String, String)]

    public var text: String {
        var lines = [String(format: "parameters %d -> %d (%.1f%% removed), MACs per image %.3f G -> %.3f G (%.1f%% removed)",
                            parametersBefore, parametersAfter, 100 * (1 - Double(parametersAfter) / Double(parametersBefore)),
                            Double(macsBefore) / 1e9, Double(macsAfter) / 1e9, 100 * (1 - Double(macsAfter) / Double(max(macsBefore, 1))))]
        let width = max(5, layers.map(\.name.count).max() ?? 0)
        lines.append("layer".padding(toLength: width, withPad: " ", startingAt: 0) + "  group  filters")
        for l in layers {
            lines.append(l.name.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "  %5d  %d -> %d", l.group, l.before, l.after))
        }
        for (name, why) in pinned { lines.append("kept whole: \(name) (\(why))") }
        return lines.joined(separator: "\n")
    }
}

/// Removes whole filters by TAO's criterion across any graph of our IR, returning a smaller graph.
public enum Pruner {
    public static func prune(_ g: Graph, _ store: ParameterStore, _ o: PruneOptions) throws -> (Graph, ParameterStore, PruneReport) {
        guard o.threshold >= 0 else { throw PruneError("the pruning threshold must be ≥ 0, got \(o.threshold)") }
        guard o.granularity >= 1 else { throw PruneError("the pruning granularity must be ≥ 1, got \(o.granularity)") }
        guard o.minFilters >= 0 else { throw PruneError("min_num_filters must be ≥ 0, got \(o.minFilters)") }
        var cg = ChannelGraph(g)
        let layerNodes = g.nodes.enumerated().filter { if case .conv2d = $1.op { return true }; if case .dense = $1.op { return true }
            if case .convTranspose2d = $1.op { return true }; return false }
        for name in o.excludedLayers {
            guard let (i, _) = layerNodes.first(where: { $0.1.name == name }) else {
                throw PruneError("excluded layer '\(name)' does not exist; the model's layers are: \(layerNodes.map(\.1.name).prefix(12).joined(separator: ", "))\(layerNodes.count > 12 ? ", …" : "")")
            }
            if let l = cg.layouts[g.nodes[i].output.index] { cg.pinAll(l, "excluded with -el") }
        }

        // Score every free space and decide what it keeps.
        let consumers = g.consumers()
        var keep: [Int: [Bool]] = [:]
        var groupOf: [Int: Int] = [:]
        var anyAbove = false
        for (space, nodes) in cg.producers.sorted(by: { $0.key < $1.key }) where cg.root(space) == space && !cg.pinned[space] {
            let n = cg.size[space]
            let scores = nodes.map { normalized(filterNorms(g, store, g.nodes[$0], consumers: consumers), o.normalizer) }
            let merged = (0..<n).map { f -> Float in
                let s = scores.map { $0[f] }
                switch o.equalization {
                case .union: return s.max()!
                case .intersection: return s.min()!
                case .arithmeticMean: return s.reduce(0, +) / Float(s.count)
                case .geometricMean: return Float(exp(s.map { log(Double(max($0, 1e-30))) }.reduce(0, +) / Double(s.count)))
                }
            }
            let above = merged.filter { $0 > o.threshold }.count
            if above > 0 { anyAbove = true }
            var retained = max(above, o.minFilters)
            retained = min(n, (retained + o.granularity - 1) / o.granularity * o.granularity)
            guard retained > 0 else {
                throw PruneError("threshold \(o.threshold) would remove every filter of \(nodes.map { "'\(g.nodes[$0].name)'" }.joined(separator: ", ")); lower -pth or raise -nf")
            }
            let order = (0..<n).sorted { merged[$0] != merged[$1] ? merged[$0] > merged[$1] : $0 < $1 }
            var m = [Bool](repeating: false, count: n)
            for f in order.prefix(retained) { m[f] = true }
            keep[space] = m
            groupOf[space] = groupOf.count + 1
        }
        guard anyAbove || keep.isEmpty else {
            throw PruneError("threshold \(o.threshold) would remove everything: no filter of any layer scores above it (with normalizer \(o.normalizer.rawValue), scores lie in [0, 1])")
        }

        let (pruned, newStore) = try rewrite(g, store, cg, keep)
        var report = PruneReport(layers: [], parametersBefore: g.trainableParameterCount, parametersAfter: pruned.trainableParameterCount,
                                 macsBefore: g.macsPerSample, macsAfter: pruned.macsPerSample, pinned: [])
        var pinnedSeen = Set<Int>()
        for (i, n) in layerNodes {
            guard let l = cg.layouts[n.output.index], let seg = l.segments.first else { continue }
            let r = cg.root(seg.space)
            let before = g.shape(of: n.output)[0], after = pruned.shape(of: pruned.nodes[i].output)[0]
            report.layers.append(.init(name: n.name, before: before, after: after, group: groupOf[r] ?? 0))
            if cg.pinned[r], pinnedSeen.insert(r).inserted { report.pinned.append((n.name, cg.pinReason[r] ?? "")) }
        }
        return (pruned, newStore, report)
    }

    /// L2 norm of each output filter of a layer. A layer whose only reader is a batch norm is scored
    /// as inference runs it, with the batch norm folded in (filter × |γ| / √(var + ε)): behind a batch
    /// norm the raw kernel's scale says nothing about what the channel contributes.
    static func filterNorms(_ g: Graph, _ store: ParameterStore, _ n: Node, consumers: [[Int]]) -> [Float] {
        var norms = filterNorms(g, store, n)
        let readers = consumers[n.output.index]
        if readers.count == 1, case .batchNorm(let bn) = g.nodes[readers[0]].op {
            let ins = g.nodes[readers[0]].inputs
            let gamma = store[ins[1].index - g.inputs.count].scalars, variance = store[ins[4].index - g.inputs.count].scalars
            for f in norms.indices { norms[f] *= abs(gamma[f]) / (variance[f] + bn.epsilon).squareRoot() }
        }
        return norms
    }

    static func filterNorms(_ g: Graph, _ store: ParameterStore, _ n: Node) -> [Float] {
        let w = store[n.inputs[1].index - g.inputs.count]
        let s = w.shape
        let transposed: Bool = { if case .convTranspose2d = n.op { return true }; return false }()
        let (outs, ins, inner) = transposed ? (s[1], s[0], s.count / (s[0] * s[1])) : (s[0], 1, s.count / s[0])
        var sums = [Double](repeating: 0, count: outs)
        w.withUnsafeBufferPointer { p in
            for i in 0..<ins { for o in 0..<outs { for k in 0..<inner {
                let v = Double(p[(i * outs + o) * inner + k]); sums[o] += v * v
            } } }
        }
        return sums.map { Float($0.squareRoot()) }
    }

    static func normalized(_ x: [Float], _ how: PruneOptions.Normalizer) -> [Float] {
        let d: Float = how == .max ? (x.max() ?? 0) : x.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return d > 0 ? x.map { $0 / d } : x
    }

    /// The smaller graph: every op's channel counts and every parameter cut to the kept channels.
    static func rewrite(_ g: Graph, _ store: ParameterStore, _ cg: ChannelGraph, _ keep: [Int: [Bool]]) throws -> (Graph, ParameterStore) {
        var params = g.parameters
        var cuts = [Int: (dim0: [Bool]?, dim1: [Bool]?)]()
        func paramIndex(_ v: ValueID) -> Int { v.index - g.inputs.count }
        func kept(_ mask: [Bool]) -> Int { mask.reduce(0) { $0 + ($1 ? 1 : 0) } }
        func cut(_ v: ValueID, _ d0: [Bool]?, _ d1: [Bool]? = nil) {
            let i = paramIndex(v)
            var dims = params[i].shape.dims
            if let d0 { dims[0] = kept(d0) }
            if let d1 { dims[1] = kept(d1) }
            params[i].shape = Shape(dims)
            cuts[i] = (d0, d1)
        }
        var nodes = g.nodes
        for (i, n) in g.nodes.enumerated() {
            let inMask = cg.layouts[n.inputs[0].index].map { cg.mask($0, keep) }
            let outMask = cg.layouts[n.output.index].map { cg.mask($0, keep) }
            switch n.op {
            case .conv2d(var c):
                guard let outMask, let inMask else { continue }
                c.outChannels = kept(outMask)
                if c.groups == 1 { cut(n.inputs[1], outMask, inMask) } else if c.groups == inMask.count {
                    c.groups = c.outChannels; cut(n.inputs[1], outMask)
                }
                if c.hasBias { cut(n.inputs[2], outMask) }
                nodes[i].op = .conv2d(c)
            case .convTranspose2d(var c):
                guard let outMask, let inMask else { continue }
                c.outChannels = kept(outMask)
                cut(n.inputs[1], inMask, outMask)
                if c.hasBias { cut(n.inputs[2], outMask) }
                nodes[i].op = .convTranspose2d(c)
            case .dense(var d):
                guard let outMask, let inMask else { continue }
                d.outFeatures = kept(outMask)
                cut(n.inputs[1], outMask, inMask)
                if d.hasBias { cut(n.inputs[2], outMask) }
                nodes[i].op = .dense(d)
            case .batchNorm:
                guard let inMask else { continue }
                for v in n.inputs.dropFirst() { cut(v, inMask) }
            case .slice(var s) where s.axis == 1:
                guard let inMask else { continue }
                s.start = kept(Array(inMask[0..<s.start]))
                s.end = kept(Array(inMask[0..<s.end]))
                nodes[i].op = .slice(s)
            case .reshape(var shape):
                guard let outMask, shape.rank >= 1 else { continue }
                var dims = shape.dims
                dims[0] = kept(outMask)
                shape = Shape(dims)
                nodes[i].op = .reshape(shape)
            default:
                continue
            }
        }
        let pruned: Graph
        do {
            pruned = try Graph(inputs: Array(zip(g.inputNames, g.inputs.map { g.shape(of: $0) })), parameters: params, nodes: nodes, outputs: g.outputs)
        } catch { throw PruneError("internal error: the pruned graph does not check: \(error)") }
        let out = ParameterStore(graph: pruned, seed: 0)
        for i in 0..<params.count {
            guard let (d0, d1) = cuts[i] else { out[i] = store[i]; continue }
            out[i] = gather(store[i], d0, d1)
        }
        return (pruned, out)
    }

    /// Keeps the masked indices of dims 0 and 1 of a tensor.
    static func gather(_ t: Tensor, _ d0: [Bool]?, _ d1: [Bool]?) -> Tensor {
        let s = t.shape.dims
        let n0 = s[0], n1 = s.count > 1 ? s[1] : 1, inner = s.count > 2 ? s[2...].reduce(1, *) : 1
        let k0 = (0..<n0).filter { d0?[$0] ?? true }, k1 = (0..<n1).filter { d1?[$0] ?? true }
        var values: [Float] = []
        values.reserveCapacity(k0.count * k1.count * inner)
        t.withUnsafeBufferPointer { p in
            for a in k0 { for b in k1 { values += p[((a * n1 + b) * inner)..<((a * n1 + b + 1) * inner)] } }
        }
        var dims = s
        dims[0] = k0.count
        if s.count > 1 { dims[1] = k1.count }
        return Tensor(shape: Shape(dims), values: values)
    }
}
