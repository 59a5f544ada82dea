import Foundation
import TaoGraph
import TaoKernels

/// Why an INT8 engine cannot be built or run.
public struct Int8Error: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// INT8 inference of a classification graph with oneDNN's int8 primitives: convolutions (batch
/// norm folded, activations and residual adds fused as post-ops, per-channel weight scales) and
/// pooling run on 8-bit activations with per-tensor scales from calibration; global pooling and
/// the dense head run in fp32.
public final class Int8Engine {
    /// A value during planning: real = stored / scale (scale 1 for fp32).
    /// `nonNegative`: an fp32 value known to be ≥ 0 (after a ReLU), which an int8 convolution reading
    /// it quantizes to u8 (255 steps, not 127).
    struct Q { var mem: Memory; var scale: Float; var type: DataType; var nonNegative = false }

    public let batch: Int
    private var steps: [Step] = []
    private var vals: [Int: Q] = [:]
    private let input: Memory
    private var outputMems: [Memory] = []
    /// How many convolutions run in int8, and how many in fp32 (`fp32Layers`).
    public private(set) var int8Convolutions = 0, fp32Convolutions = 0
    /// Residual adds summed straight into their addend's buffer.
    public private(set) var inPlaceResiduals = 0

    /// Winograd convolutions chosen by timing (see `Tactics`).
    public private(set) var winogradConvolutions = 0
    /// Depthwise convolutions run inside the pointwise convolution before them (see `Tactics`).
    public private(set) var fusedDepthwise = 0

    /// A pointwise convolution's step, kept so that a depthwise one after it can be fused in.
    struct Pointwise {
        var step: Int
        var src: Memory, dst: Memory, bias: Memory
        var weights: (MemoryDesc) throws -> Memory
        /// Its primitive with more post-ops after its own.
        var primitive: ([Attributes.PostOp]) throws -> PrimitiveDesc
    }

    /// How convolutions pick their kernels. Two alternatives to one direct kernel per convolution
    /// exist, each faster on some shapes and slower on others:
    /// - oneDNN's int8 Winograd (F(2×2, 3×3)) for 3×3 stride-1 dense convolutions on u8 inputs: on
    ///   ResNet-18 at batch 32 it takes 0.65× the direct kernel's time on 14² maps but 1.3× on 56²
    ///   maps, and the winners change with the batch size. It keeps about 2 bits less precision
    ///   (its transforms scale inputs by 1/4 and weights by 4/9 to stay in 8 bits).
    /// - a 3×3 depthwise convolution fused into the pointwise one before it (same arithmetic): on
    ///   MobileNetV2's 112² block 0.62× the time of the two apart, on its 7² blocks no faster.
    /// Like TensorRT's tactic selection, `.timed` runs both ways on the engine's own shapes while
    /// building and keeps an alternative only when it is at least 5% faster. `.direct` uses neither
    /// (outputs independent of timing, faster builds); `.alternatives` uses both wherever oneDNN has
    /// them (for tests and measurements).
    public enum Tactics: String, Sendable, CaseIterable { case timed, direct, alternatives }

    /// `fp32Layers`: convolutions (by node name) that run in fp32 inside the int8 network, as
    /// TensorRT's per-layer precision keeps a network's most sensitive layers in higher precision
    /// (see `Int8Precision`, which chooses them).
    public init(graph original: Graph, parameters originalStore: ParameterStore, maxAbs: [String: Float], batch: Int,
                tactics: Tactics = .timed, fp32Layers: Set<String> = []) throws {
        self.batch = batch
        // Batch norms after convolutions folded into them; a folded convolution's output is its batch
        // norm's, and keeps that name's calibration range.
        let folding = try BatchNormFolding.fold(original, originalStore)
        let (g, store) = (folding.graph, folding.parameters)
        input = Memory(MemoryDesc(g.shape(of: g.inputs[0]).batched(batch).dims))
        vals[g.inputs[0].index] = Q(mem: input, scale: 1, type: .f32)
        let consumers = g.consumers()
        let outputs = Set(g.outputs)
        func sole(_ v: ValueID) -> Node? {
            guard !outputs.contains(v), consumers[v.index].count == 1 else { return nil }
            return g.nodes[consumers[v.index][0]]
        }
        func name(_ v: ValueID) -> String {
            if case .node(let i) = g.source(of: v) { return folding.folded[g.nodes[i].name] ?? g.nodes[i].name }
            return g.inputNames[0]
        }
        func scale(_ v: ValueID, unsigned: Bool) throws -> Float {
            guard let m = maxAbs[name(v)] else { throw Int8Error("no calibration range for '\(name(v))': recalibrate for this model") }
            return (unsigned ? 255 : 127) / max(m, 1e-6)
        }
        func param(_ v: ValueID) -> [Float] { store[v.index - g.inputs.count].scalars }
        var done = Set<Int>()   // nodes fused into an earlier step
        var pointwise: [Int: Pointwise] = [:]   // 1×1 convolutions by output value, for depthwise fusion
        for (index, n) in g.nodes.enumerated() where !done.contains(index) {
            let dims = g.shape(of: n.output).batched(batch).dims
            switch n.op {
            case .conv2d(let c):
                // conv (batch norm folded in) → [activation] → [add of a value computed earlier] → [activation];
                // every activation is a post-op (oneDNN's int8 kernels take each eltwise algorithm, mish included)
                var last = n, pre: Activation?, addend: ValueID?, post: Activation?
                var fused: [Node] = []
                if let m = sole(last.output), case .activation(let a) = m.op { pre = a; last = m; fused.append(m) }
                if let m = sole(last.output), m.op == .add {
                    let other = m.inputs[0] == last.output ? m.inputs[1] : m.inputs[0]
                    if vals[other.index] != nil, g.shape(of: other) == g.shape(of: m.output) {
                        addend = other; last = m; fused.append(m)
                        if let p = sole(last.output), case .activation(let a) = p.op { post = a; last = p; fused.append(p) }
                    }
                }
                for m in fused { if case .node(let k) = g.source(of: m.output) { done.insert(k) } }
                let addIndex = fused.first { $0.op == .add }.flatMap { m -> Int? in if case .node(let k) = g.source(of: m.output) { return k }; return nil }
                let dead = addend.map { v in !outputs.contains(v) && v != n.inputs[0] && consumers[v.index].allSatisfy { $0 <= addIndex! } } ?? false
                let cin = g.shape(of: n.inputs[0])[0]
                let wDims = c.groups > 1 ? [c.groups, c.outChannels / c.groups, cin / c.groups, c.kernel[0], c.kernel[1]]
                                         : [c.outChannels, cin, c.kernel[0], c.kernel[1]]
                let win = Window(strides: c.stride, dilation: c.dilation.map { $0 - 1 }, padLeft: [c.padding.top, c.padding.left],
                                 padRight: [c.padding.bottom, c.padding.right])
                let outDims = g.shape(of: last.output).batched(batch).dims
                if fp32Layers.contains(n.name) {
                    // Kept in fp32 (mixed precision): fp32 source, weights and output; activations
                    // and the residual as fp32 post-ops. Int8 convolutions after it quantize its
                    // output with their own input's range.
                    let given = vals[n.inputs[0].index]!
                    let a = addend.map { vals[$0.index]! }
                    let attr = Attributes()
                    try attr.setPostOps([pre.map { Self.postOp($0, scale: 1) }, a.map { _ in .sum(scale: 1) }, post.map { Self.postOp($0, scale: 1) }].compactMap { $0 })
                    let pd = try Kernels.convForward(.inference, src: MemoryDesc(given.mem.desc.dims, .any), weights: MemoryDesc(wDims, .any),
                                                     bias: MemoryDesc([c.outChannels]), dst: MemoryDesc(outDims, .any), win, attr: attr)
                    let srcMem = given.type == .f32 ? try layout(given, pd.md(.src)) : try quantize(given, into: pd.md(.src), scale: 1)
                    let plainW = Memory(MemoryDesc(wDims, .plain)), wMem = Memory(pd.md(.weights))
                    param(n.inputs[1]).withUnsafeBytes { plainW.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    Step(try Primitive(Kernels.reorder(from: plainW.desc, to: wMem.desc)), [(.src, plainW), (.dst, wMem)]).run()
                    let bias = c.hasBias ? param(n.inputs[2]) : [Float](repeating: 0, count: c.outChannels)
                    let bMem = Memory(MemoryDesc([c.outChannels]))
                    bias.withUnsafeBytes { bMem.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    let dst: Memory
                    if let a, dead, a.type == .f32, a.mem.desc == pd.md(.dst) {
                        dst = Memory(pd.md(.dst), wrapping: a.mem.pointer)   // summed in place
                        retained.append(a.mem)
                        inPlaceResiduals += 1
                    } else {
                        dst = Memory(pd.md(.dst))
                        if let a {   // the residual in real units in the output buffer, then summed
                            let ra = Attributes()
                            try ra.setOutputScales([1 / a.scale], mask: 0)
                            steps.append(Step(try Primitive(Kernels.reorder(from: a.mem.desc, to: dst.desc, attr: ra)), [(.src, a.mem), (.dst, dst)]))
                        }
                    }
                    steps.append(Step(try Primitive(pd), [(.src, srcMem), (.weights, wMem), (.bias, bMem), (.dst, dst)]))
                    let unsigned = post.map(Self.nonNegative) ?? (addend == nil && (pre.map(Self.nonNegative) ?? false))
                    vals[last.output.index] = Q(mem: dst, scale: 1, type: .f32, nonNegative: unsigned)
                    fp32Convolutions += 1
                    continue
                }
                // u8 after a ReLU-like activation, s8 otherwise. A residual is read by the sum post-op in
                // its own type and scale (in place), or copied into the output buffer as s8 at its own
                // scale first: either way the output keeps all of its type's steps.
                let unsigned = post.map(Self.nonNegative) ?? (addend == nil && (pre.map(Self.nonNegative) ?? false))
                // A convolution that gives a graph output writes it in fp32 (int8 inputs and weights,
                // fp32 accumulation out), as TensorRT keeps a network's outputs: one output scale would
                // otherwise quantize a detector's box distances to the range of its largest values.
                let toFloat = outputs.contains(last.output) && addend == nil
                let sDst = toFloat ? 1 : try scale(last.output, unsigned: unsigned)
                // Source: int8 as produced, or quantized here from fp32.
                let given = vals[n.inputs[0].index]!
                let src = given.type == .f32 ? Q(mem: given.mem, scale: try scale(n.inputs[0], unsigned: given.nonNegative), type: given.nonNegative ? .u8 : .s8) : given
                // Weights (batch norm folded in) with per-output-channel scales: ws[o] int8 steps per unit.
                let w = param(n.inputs[1])
                let (wq, stepSizes) = PerChannelInt8.quantize(w, channels: c.outChannels)
                let ws = stepSizes.map { 1 / $0 }
                let bias = (0..<c.outChannels).map { o in (c.hasBias ? param(n.inputs[2])[o] : 0) * src.scale * ws[o] }
                let dstType: DataType = toFloat ? .f32 : unsigned ? .u8 : .s8
                // A residual is summed in place when nothing reads it afterwards and its layout fits the
                // output's (the post-op then reads it in its own type and scale); otherwise it is first
                // copied into the output buffer as s8 (at `copyScale`, below).
                let a = addend.map { vals[$0.index]! }
                // ReLU-like activations act on the scaled output (their bounds scaled). Others (swish,
                // sigmoid, …) need real values: the output scales then give real units, the
                // activations run on them, and a final linear post-op applies the output's scale.
                let real = !([pre, post].compactMap { $0 }.allSatisfy(Self.homogeneous))
                let unit = real ? 1 : sDst
                // A residual that cannot be summed in place is first copied into the output buffer as
                // s8 at its own scale (u8 halved); the sum post-op rescales it to the output's units.
                // (At the output's scale, a u8 output's 255 steps would overflow the s8 copy.)
                // (An fp32 residual, from a convolution kept in fp32, is copied at its range's s8 scale.)
                let copyScale: Float = try a.map { $0.type == .f32 ? try scale(addend!, unsigned: false) : $0.type == .u8 ? $0.scale * 127 / 255 : $0.scale } ?? 1
                let scales = (0..<c.outChannels).map { unit / (src.scale * ws[$0]) }
                func postOps(inPlace: Bool) -> [Attributes.PostOp] {
                    var ops: [Attributes.PostOp] = []
                    if let pre { ops.append(Self.postOp(pre, scale: unit)) }
                    if let a { ops.append(inPlace ? .sumAs(scale: unit / a.scale, type: a.type) : .sumAs(scale: unit / copyScale, type: .s8)) }
                    if let post { ops.append(Self.postOp(post, scale: unit)) }
                    if real { ops.append(.eltwise(.linear, alpha: sDst, beta: 0)) }
                    return ops
                }
                func primitive(inPlace: Bool, _ algorithm: Kernels.ConvAlgorithm = .direct, then extra: [Attributes.PostOp] = []) throws -> PrimitiveDesc {
                    let attr = Attributes()
                    try attr.setOutputScales(scales, mask: 2)
                    try attr.setPostOps(postOps(inPlace: inPlace) + extra)
                    return try Kernels.convForward(.inference, src: MemoryDesc(src.mem.desc.dims, .any, type: src.type),
                                                   weights: MemoryDesc(wDims, .any, type: .s8), bias: MemoryDesc([c.outChannels]),
                                                   dst: MemoryDesc(outDims, .any, type: dstType), win, attr: attr, algorithm: algorithm)
                }
                let summable = dead && a!.type != .f32
                var pd = try primitive(inPlace: summable)
                let inPlace = summable && a!.mem.desc.with(type: dstType) == pd.md(.dst)
                if summable && !inPlace { pd = try primitive(inPlace: false) }
                // fp32 sources are quantized straight into the layout the convolution wants.
                let srcMem = given.type == .f32 ? try quantize(given, into: pd.md(.src), scale: src.scale) : try layout(src, pd.md(.src))
                /// The weights in layout `md`: the quantized ones, or (Winograd's own format, which
                /// oneDNN fills only from fp32) the folded fp32 ones with the per-channel scales.
                func weights(into md: MemoryDesc) throws -> Memory {
                    let wMem = Memory(md)
                    let plainW: Memory, attr = Attributes()
                    if !md.isWinograd {
                        plainW = Memory(MemoryDesc(wDims, .plain, type: .s8))
                        wq.withUnsafeBytes { plainW.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    } else {
                        plainW = Memory(MemoryDesc(wDims, .plain))
                        w.withUnsafeBytes { plainW.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                        try attr.setOutputScales(ws, mask: 1)
                    }
                    Step(try Primitive(Kernels.reorder(from: plainW.desc, to: wMem.desc, attr: attr)), [(.src, plainW), (.dst, wMem)]).run()
                    return wMem
                }
                let bMem = Memory(MemoryDesc([c.outChannels]))
                bias.withUnsafeBytes { bMem.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                let dst: Memory
                if let a, inPlace {
                    dst = Memory(pd.md(.dst), wrapping: a.mem.pointer)
                    retained.append(a.mem)
                    inPlaceResiduals += 1
                } else {
                    dst = Memory(pd.md(.dst))
                }
                if let a, !inPlace {
                    let ra = Attributes()
                    try ra.setOutputScales([copyScale / a.scale], mask: 0)
                    let view = Memory(dst.desc.with(type: .s8), wrapping: dst.pointer)
                    retained.append(view)
                    steps.append(Step(try Primitive(Kernels.reorder(from: a.mem.desc, to: view.desc, attr: ra)), [(.src, a.mem), (.dst, view)]))
                }
                var conv = Step(try Primitive(pd), [(.src, srcMem), (.weights, try weights(into: pd.md(.weights))), (.bias, bMem), (.dst, dst)])
                let eligible = c.kernel == [3, 3] && c.stride == [1, 1] && c.dilation == [1, 1] && c.groups == 1
                if tactics != .direct, eligible, let wpd = try? primitive(inPlace: inPlace, .winograd),
                   wpd.md(.src) == pd.md(.src), wpd.md(.dst) == pd.md(.dst) {
                    let wino = Step(try Primitive(wpd), [(.src, srcMem), (.weights, try weights(into: wpd.md(.weights))), (.bias, bMem), (.dst, dst)])
                    // Timed at build time: the buffers hold no data yet, and the kernels' speed does not depend on it.
                    if tactics == .alternatives || Self.seconds(wino) < 0.95 * Self.seconds(conv) { conv = wino; winogradConvolutions += 1 }
                }
                vals[last.output.index] = Q(mem: dst, scale: sDst, type: dstType)
                int8Convolutions += 1
                // A 3×3 depthwise convolution (padding 1) reading only the output of a pointwise one
                // can run inside it as a depthwise post-op: the wide intermediate (MobileNetV2's
                // expanded channels) then never leaves the cache. Same arithmetic; kept when faster.
                let input = n.inputs[0]
                if tactics != .direct, a == nil, c.groups == cin, c.groups == c.outChannels, c.kernel == [3, 3], c.dilation == [1, 1],
                   c.stride[0] == c.stride[1], c.stride[0] <= 2, c.padding.top == 1, c.padding.left == 1,
                   let p1 = pointwise[input.index], p1.dst === srcMem, !outputs.contains(input), consumers[input.index].count == 1,
                   let fpd = try? p1.primitive([.depthwise(stride: c.stride[0], scales: scales, type: dstType)] + postOps(inPlace: false)),
                   fpd.md(.src) == p1.src.desc, fpd.md(.dst) == dst.desc, fpd.md(for: .depthwiseBias) == bMem.desc {
                    let both = Step(try Primitive(fpd), [(.src, p1.src), (.weights, try p1.weights(fpd.md(.weights))), (.bias, p1.bias),
                                                         (.depthwiseWeights, try weights(into: fpd.md(for: .depthwiseWeights))),
                                                         (.depthwiseBias, bMem), (.dst, dst)])
                    if tactics == .alternatives || Self.seconds(both) < 0.95 * (Self.seconds(steps[p1.step]) + Self.seconds(conv)) {
                        steps[p1.step] = both
                        vals[input.index] = nil   // the intermediate is gone
                        fusedDepthwise += 1
                        continue
                    }
                }
                steps.append(conv)
                if c.kernel == [1, 1], c.stride == [1, 1], c.groups == 1, a == nil {
                    pointwise[last.output.index] = Pointwise(step: steps.count - 1, src: srcMem, dst: dst, bias: bMem,
                                                             weights: weights(into:), primitive: { try primitive(inPlace: false, then: $0) })
                }
            case .convTranspose2d(let c):
                // A transposed convolution (UNet's decoders): int8 source and weights (per output
                // channel), fp32 out, as what reads it (a concatenation, a batch norm) runs in fp32.
                let given = vals[n.inputs[0].index]!
                let src = given.type == .f32 ? Q(mem: given.mem, scale: try scale(n.inputs[0], unsigned: given.nonNegative), type: given.nonNegative ? .u8 : .s8) : given
                let (cin, o, kh, kw) = (g.shape(of: n.inputs[0])[0], c.outChannels, c.kernel[0], c.kernel[1])
                let (wq, stepSizes) = PerChannelInt8.quantizeTransposed(param(n.inputs[1]), inChannels: cin, outChannels: o)
                let ws = stepSizes.map { 1 / $0 }
                let bias = (0..<o).map { k in (c.hasBias ? param(n.inputs[2])[k] : 0) * src.scale * ws[k] }
                let win = Window(strides: c.stride, dilation: c.dilation.map { $0 - 1 }, padLeft: [c.padding.top, c.padding.left],
                                 padRight: [c.padding.bottom - c.outputPadding[0], c.padding.right - c.outputPadding[1]])
                let attr = Attributes()
                try attr.setOutputScales((0..<o).map { 1 / (src.scale * ws[$0]) }, mask: 2)
                let pd = try Kernels.deconvForward(.inference, src: MemoryDesc(src.mem.desc.dims, .any, type: src.type),
                                                   weights: MemoryDesc([o, cin, kh, kw], .any, type: .s8), bias: MemoryDesc([o]), dst: MemoryDesc(dims, .any), win, attr: attr)
                let srcMem = given.type == .f32 ? try quantize(given, into: pd.md(.src), scale: src.scale) : try layout(src, pd.md(.src))
                // The [I, O, KH, KW] bytes seen as oneDNN's logical [O, I, KH, KW].
                let plainW = Memory(MemoryDesc(dims: [o, cin, kh, kw], strides: [kh * kw, o * kh * kw, kw, 1], type: .s8))
                wq.withUnsafeBytes { plainW.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                let wMem = Memory(pd.md(.weights))
                Step(try Primitive(Kernels.reorder(from: plainW.desc, to: wMem.desc)), [(.src, plainW), (.dst, wMem)]).run()
                let bMem = Memory(MemoryDesc([o]))
                bias.withUnsafeBytes { bMem.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                let y = Memory(pd.md(.dst))
                steps.append(Step(try Primitive(pd), [(.src, srcMem), (.weights, wMem), (.bias, bMem), (.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: 1, type: .f32)
                int8Convolutions += 1
            case .batchNorm(let bn):
                // A batch norm no convolution absorbed (after a concatenation): x · a + b per channel, in fp32.
                let x = try dequantize(vals[n.inputs[0].index]!, dims: g.shape(of: n.inputs[0]).batched(batch).dims)
                let (gamma, beta, mean, variance) = (param(n.inputs[1]), param(n.inputs[2]), param(n.inputs[3]), param(n.inputs[4]))
                let a = gamma.indices.map { gamma[$0] / (variance[$0] + bn.epsilon).squareRoot() }
                let b = gamma.indices.map { beta[$0] - mean[$0] * a[$0] }
                let cd = MemoryDesc([1, gamma.count, 1, 1])
                let (aMem, bMem) = (Memory(cd), Memory(cd))
                a.withUnsafeBytes { aMem.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                b.withUnsafeBytes { bMem.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                let mulPD = try Kernels.binary(.mul, src0: x.desc, src1: cd, dst: MemoryDesc(dims))
                let scaled = Memory(mulPD.md(.dst))
                steps.append(Step(try Primitive(mulPD), [(.src, x), (.src1, aMem), (.dst, scaled)]))
                let addPD = try Kernels.binary(.add, src0: scaled.desc, src1: cd, dst: MemoryDesc(dims))
                let y = Memory(addPD.md(.dst))
                steps.append(Step(try Primitive(addPD), [(.src, scaled), (.src1, bMem), (.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: 1, type: .f32)
            case .pool2d(let p):
                let x = vals[n.inputs[0].index]!
                let alg: Kernels.PoolAlg = p.kind == .max ? .max : (p.countIncludePad ? .avgIncludePad : .avgExcludePad)
                let win = Window(strides: p.stride, padLeft: [p.padding.top, p.padding.left], padRight: [p.padding.bottom, p.padding.right])
                let pd = try Kernels.poolForward(.inference, alg, src: x.mem.desc, dst: MemoryDesc(dims, .any, type: x.type), kernel: p.kernel, win)
                let y = Memory(pd.md(.dst))
                steps.append(Step(try Primitive(pd), [(.src, x.mem), (.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: x.scale, type: x.type, nonNegative: x.nonNegative)
            case .globalAveragePool:
                // Averaged straight from int8 into fp32 where oneDNN can (then rescaled in place, a
                // small [N, C] step), else from an fp32 copy.
                let xs = g.shape(of: n.inputs[0]).batched(batch).dims
                let q = vals[n.inputs[0].index]!
                let whole = Window(strides: [1, 1], padLeft: [0, 0], padRight: [0, 0])
                let out = MemoryDesc([batch, xs[1], 1, 1])
                let y = Memory(out)
                if q.type != .f32, let pd = try? Kernels.poolForward(.inference, .avgExcludePad, src: q.mem.desc,
                                                                      dst: MemoryDesc([batch, xs[1], 1, 1], .nhwc, type: .s32), kernel: [xs[2], xs[3]], whole) {
                    // Averaged into int32 (rounded to whole int8 steps), then to fp32 real values.
                    let sums = Memory(pd.md(.dst))
                    steps.append(Step(try Primitive(pd), [(.src, q.mem), (.dst, sums)]))
                    let ra = Attributes()
                    try ra.setOutputScales([1 / q.scale], mask: 0)
                    steps.append(Step(try Primitive(Kernels.reorder(from: sums.desc, to: out, attr: ra)), [(.src, sums), (.dst, y)]))
                } else {
                    let x = try dequantize(q, dims: xs)
                    let pd = try Kernels.poolForward(.inference, .avgExcludePad, src: x.desc, dst: out, kernel: [xs[2], xs[3]], whole)
                    steps.append(Step(try Primitive(pd), [(.src, x), (.dst, y)]))
                }
                vals[n.output.index] = Q(mem: Memory(MemoryDesc([batch, xs[1]]), wrapping: y.pointer), scale: 1, type: .f32)
                retained.append(y)
            case .flatten:
                let x = try dequantize(vals[n.inputs[0].index]!, dims: g.shape(of: n.inputs[0]).batched(batch).dims)
                vals[n.output.index] = Q(mem: Memory(MemoryDesc(dims), wrapping: x.pointer), scale: 1, type: .f32)
                retained.append(x)
            case .dropout:
                vals[n.output.index] = vals[n.inputs[0].index]
            case .dense(let d):
                let x = try dequantize(vals[n.inputs[0].index]!, dims: g.shape(of: n.inputs[0]).batched(batch).dims)
                let plainW = Memory(MemoryDesc([d.outFeatures, g.shape(of: n.inputs[0])[0]]))
                param(n.inputs[1]).withUnsafeBytes { plainW.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                var biasMD: MemoryDesc?, b: Memory?
                if d.hasBias {
                    b = Memory(MemoryDesc([d.outFeatures]))
                    param(n.inputs[2]).withUnsafeBytes { b!.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    biasMD = b!.desc
                }
                // Weights in the layout the kernel prefers, reordered once here.
                let pd = try Kernels.innerProductForward(.inference, src: x.desc, weights: MemoryDesc(plainW.desc.dims, .any), bias: biasMD, dst: MemoryDesc(dims))
                let w = Memory(pd.md(.weights))
                Step(try Primitive(Kernels.reorder(from: plainW.desc, to: w.desc)), [(.src, plainW), (.dst, w)]).run()
                var binds: [(Arg, Memory)] = [(.src, x), (.weights, w)]
                if let b { binds.append((.bias, b)) }
                let y = Memory(pd.md(.dst))
                steps.append(Step(try Primitive(pd), binds + [(.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: 1, type: .f32)
            case .activation(let a):
                // A standalone activation (one not positively homogeneous cannot be a post-op of a
                // scaled int8 output): in fp32.
                guard a != .erf else { throw Int8Error("the INT8 engine does not support '\(n.name)' (erf) yet; use fp32 for this model") }
                let x = try dequantize(vals[n.inputs[0].index]!, dims: g.shape(of: n.inputs[0]).batched(batch).dims)
                let (alg, alpha, beta) = a.eltwise
                let pd = try Kernels.eltwiseForward(.inference, alg, data: x.desc, alpha: alpha, beta: beta)
                let y = Memory(pd.md(.dst))
                steps.append(Step(try Primitive(pd), [(.src, x), (.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: 1, type: .f32, nonNegative: Self.nonNegative(a))
            case .mul where vals[n.inputs[0].index]!.type != .f32 && g.shape(of: n.inputs[1]).dims == [dims[1], 1, 1]:
                // A squeeze-excite gate (per channel) times int8 activations, into int8 of the
                // product's own range: stored = (s_out / s_x)·x_stored · gate_stored / s_gate.
                let x = vals[n.inputs[0].index]!
                let gate = vals[n.inputs[1].index]!
                let sOut = try scale(n.output, unsigned: x.type == .u8 && gate.type != .s8)
                let attr = Attributes()
                try attr.setScales(.src, [sOut / x.scale])
                try attr.setScales(.src1, [1 / gate.scale])
                // [N, C, 1, 1] is the same bytes channels-first or channels-last; a blocked gate is
                // laid out plainly first.
                let gmd = MemoryDesc([batch, dims[1], 1, 1], type: gate.type)
                let plainGate: Memory
                if gate.mem.desc == gmd || gate.mem.desc == MemoryDesc(gmd.dims, .nhwc, type: gate.type) || gate.mem.desc.dims.count == 2 {
                    plainGate = Memory(gmd, wrapping: gate.mem.pointer)
                    retained.append(gate.mem)
                } else {
                    plainGate = Memory(gmd)
                    steps.append(Step(try Primitive(Kernels.reorder(from: gate.mem.desc, to: gmd)), [(.src, gate.mem), (.dst, plainGate)]))
                }
                let pd = try Kernels.binary(.mul, src0: x.mem.desc, src1: gmd,
                                            dst: MemoryDesc(dims, .nhwc, type: x.type == .u8 && gate.type != .s8 ? .u8 : .s8), attr: attr)
                let y = Memory(pd.md(.dst))
                steps.append(Step(try Primitive(pd), [(.src, x.mem), (.src1, plainGate), (.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: sOut, type: pd.md(.dst) == MemoryDesc(dims, .nhwc, type: .u8) ? .u8 : .s8)
            case .add, .mul:
                // In fp32; the second operand may broadcast ([C,1,1] squeeze-excite gates).
                let a = try dequantize(vals[n.inputs[0].index]!, dims: dims)
                let b = try dequantize(vals[n.inputs[1].index]!, dims: g.shape(of: n.inputs[1]).batched(batch).dims)
                let pd = try Kernels.binary(n.op == .add ? .add : .mul, src0: a.desc, src1: b.desc, dst: MemoryDesc(dims))
                let y = Memory(pd.md(.dst))
                steps.append(Step(try Primitive(pd), [(.src, a), (.src1, b), (.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: 1, type: .f32)
            case .concat(let axis):
                let xs = try n.inputs.map { try dequantize(vals[$0.index]!, dims: g.shape(of: $0).batched(batch).dims) }
                let pd = try Kernels.concat(srcs: xs.map(\.desc), axis: axis, dst: MemoryDesc(dims))
                let y = Memory(pd.md(.dst))
                steps.append(Step(try Primitive(pd), xs.enumerated().map { (Arg.multipleSrc($0.offset), $0.element) } + [(.dst, y)]))
                vals[n.output.index] = Q(mem: y, scale: 1, type: .f32)
            case .slice(let sl):
                // A range of channels (CSPDarkNet's split): copied out at the same scale and type when
                // the layout allows a view of the range (channels-last), else through fp32.
                let x = vals[n.inputs[0].index]!
                var offsets = [Int](repeating: 0, count: dims.count)
                offsets[sl.axis] = sl.start
                if x.type != .f32, sl.step == 1, let view = try? x.mem.desc.submemory(dims: dims, offsets: offsets) {
                    let y = Memory(MemoryDesc(dims, dims.count == 4 ? .nhwc : .plain, type: x.type))
                    steps.append(Step(try Primitive(Kernels.reorder(from: view, to: y.desc)), [(.src, x.mem), (.dst, y)]))
                    vals[n.output.index] = Q(mem: y, scale: x.scale, type: x.type)
                } else {
                    let f = try dequantize(x, dims: g.shape(of: n.inputs[0]).batched(batch).dims)
                    let y = Memory(MemoryDesc(dims))
                    guard sl.step == 1 else { throw Int8Error("the INT8 engine does not take strided slices ('\(n.name)') yet; use fp32 for this model") }
                    steps.append(Step(try Primitive(Kernels.reorder(from: try f.desc.submemory(dims: dims, offsets: offsets), to: y.desc)),
                                      [(.src, f), (.dst, y)]))
                    vals[n.output.index] = Q(mem: y, scale: 1, type: .f32)
                }
            case .upsample(let u):
                // Nearest neighbour (YOLO's necks) copies values: int8 stays int8 at its scale where
                // oneDNN resamples that type; bilinear, or where it does not, through fp32.
                let x = vals[n.inputs[0].index]!
                let alg: Kernels.ResampleAlg = u.mode == .nearest ? .nearest : .linear
                if u.mode == .nearest, x.type != .f32,
                   let pd = try? Kernels.resampleForward(.inference, alg, src: x.mem.desc, dst: MemoryDesc(dims, .any, type: x.type)) {
                    let y = Memory(pd.md(.dst))
                    steps.append(Step(try Primitive(pd), [(.src, x.mem), (.dst, y)]))
                    vals[n.output.index] = Q(mem: y, scale: x.scale, type: x.type, nonNegative: x.nonNegative)
                } else {
                    let f = try dequantize(x, dims: g.shape(of: n.inputs[0]).batched(batch).dims)
                    let pd = try Kernels.resampleForward(.inference, alg, src: f.desc, dst: MemoryDesc(dims))
                    let y = Memory(pd.md(.dst))
                    steps.append(Step(try Primitive(pd), [(.src, f), (.dst, y)]))
                    vals[n.output.index] = Q(mem: y, scale: 1, type: .f32)
                }
            case .reshape:
                let x = try dequantize(vals[n.inputs[0].index]!, dims: g.shape(of: n.inputs[0]).batched(batch).dims)
                vals[n.output.index] = Q(mem: Memory(MemoryDesc(dims), wrapping: x.pointer), scale: 1, type: .f32)
                retained.append(x)
            default:
                throw Int8Error("the INT8 engine does not support '\(n.name)' (\(n.op.kind)) yet; use fp32 for this model")
            }
        }
        // Every output in fp32, plain layout (a detector has several: coverage and boxes, …).
        outputMems = try g.outputs.map { try dequantize(vals[$0.index]!, dims: g.shape(of: $0).batched(batch).dims) }
    }

    /// Primitives per kind ("convolution", "reorder", "binary", …), for tests and reports.
    public var stepKinds: [String: Int] { steps.reduce(into: [:]) { $0[$1.primitive.desc.kind, default: 0] += 1 } }
    /// Element-wise adds and multiplies that write int8.
    public var int8Binaries: Int {
        steps.filter { $0.primitive.desc.kind == "binary" && $0.primitive.desc.md(.dst).dataType != .f32 }.count
    }

    /// The best of a few timed runs of one step, after a warm-up run.
    static func seconds(_ step: Step) -> Double {
        step.run()
        var best = Double.infinity
        for _ in 0..<3 {
            let t = DispatchTime.now().uptimeNanoseconds
            step.run()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return best
    }

    /// Memories that wrap another's storage keep it alive here.
    private var retained: [Memory] = []

    /// f(s·x) = s·f(x) for s > 0 (with scaled bounds): computable on scaled int8 outputs.
    static func homogeneous(_ a: Activation) -> Bool {
        switch a { case .relu, .relu6, .leakyRelu, .clip: true; default: false }
    }
    static func nonNegative(_ a: Activation) -> Bool {
        switch a { case .relu, .relu6, .sigmoid: true; case .clip(let lo, _): lo >= 0; default: false }
    }
    /// Post-ops act on the output in units of `s` (1: real values), so bounds scale with it.
    static func postOp(_ a: Activation, scale s: Float) -> Attributes.PostOp {
        switch a {
        case .relu: return .eltwise(.relu, alpha: 0, beta: 0)
        case .relu6: return .eltwise(.clip, alpha: 0, beta: 6 * s)
        case .clip(let lo, let hi): return .eltwise(.clip, alpha: lo * s, beta: hi * s)
        case .leakyRelu(let alpha): return .eltwise(.relu, alpha: alpha, beta: 0)
        default:
            let (alg, alpha, beta) = a.eltwise
            return .eltwise(alg, alpha: alpha, beta: beta)
        }
    }

    private func quantize(_ x: Q, into md: MemoryDesc, scale: Float) throws -> Memory {
        let y = Memory(md)
        let attr = Attributes()
        try attr.setOutputScales([scale / x.scale], mask: 0)
        steps.append(Step(try Primitive(Kernels.reorder(from: x.mem.desc, to: md, attr: attr)), [(.src, x.mem), (.dst, y)]))
        return y
    }

    private func layout(_ x: Q, _ md: MemoryDesc) throws -> Memory {
        if x.mem.desc == md { return x.mem }
        let y = Memory(md)
        steps.append(Step(try Primitive(Kernels.reorder(from: x.mem.desc, to: md)), [(.src, x.mem), (.dst, y)]))
        return y
    }

    /// fp32 copies made so far, by the memory they copy and their dims: a value read in fp32 by
    /// several nodes is converted once. Each entry holds its source, so no other memory can take
    /// its address (and its copies) while the engine is built.
    private var fp32Copies: [ObjectIdentifier: (source: Memory, copies: [([Int], Memory)])] = [:]

    /// fp32, plain layout.
    private func dequantize(_ x: Q, dims: [Int]) throws -> Memory {
        let md = MemoryDesc(dims)
        if x.type == .f32 && x.mem.desc == md { return x.mem }
        if let entry = fp32Copies[ObjectIdentifier(x.mem)], entry.source === x.mem, let hit = entry.copies.first(where: { $0.0 == dims }) { return hit.1 }
        let y = Memory(md)
        fp32Copies[ObjectIdentifier(x.mem), default: (x.mem, [])].copies.append((dims, y))
        let attr = Attributes()
        try attr.setOutputScales([1 / x.scale], mask: 0)
        steps.append(Step(try Primitive(Kernels.reorder(from: x.mem.desc, to: md, attr: attr)), [(.src, x.mem), (.dst, y)]))
        return y
    }

    public func setInput(_ t: Tensor) throws {
        guard t.shape.dims == input.desc.dims else { throw Int8Error("INT8 engine input: expected \(input.desc.dims), got \(t.shape)") }
        t.withUnsafeBufferPointer { input.floats.update(from: $0.baseAddress!, count: $0.count) }
    }

    public func forward() { for s in steps { s.run() } }

    public func output(_ i: Int = 0) -> Tensor {
        let dims = outputMems[i].desc.dims
        return Tensor(shape: Shape(dims), values: Array(UnsafeBufferPointer(start: outputMems[i].floats, count: dims.reduce(1, *))))
    }

    public func outputPointer(_ i: Int = 0) -> UnsafeMutablePointer<Float> { outputMems[i].floats }
    public func inputPointer() -> UnsafeMutablePointer<Float> { input.floats }
    public var outputShape: [Int] { outputMems[0].desc.dims }
    /// The shape of output `i`, batch first.
    public func outputShape(_ i: Int) -> [Int] { outputMems[i].desc.dims }
    public var outputCount: Int { outputMems.count }
}
