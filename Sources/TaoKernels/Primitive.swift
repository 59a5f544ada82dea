import CDNNL

/// Execution argument slots of oneDNN primitives.
public enum Arg: Sendable, Hashable {
    case src, src1, dst, weights, bias, mean, variance, scale, shift, workspace
    case diffSrc, diffSrc1, diffDst, diffWeights, diffBias, diffScale, diffShift
    case multipleSrc(Int)
    /// The weights and bias of a depthwise post-op (`Attributes.PostOp.depthwise`).
    case depthwiseWeights, depthwiseBias

    var raw: Int32 {
        switch self {
        case .src: TAO_ARG_SRC
        case .src1: TAO_ARG_SRC_1
        case .dst: TAO_ARG_DST
        case .weights: TAO_ARG_WEIGHTS
        case .bias: TAO_ARG_BIAS
        case .mean: TAO_ARG_MEAN
        case .variance: TAO_ARG_VARIANCE
        case .scale: TAO_ARG_SCALE
        case .shift: TAO_ARG_SHIFT
        case .workspace: TAO_ARG_WORKSPACE
        case .diffSrc: TAO_ARG_DIFF_SRC
        case .diffSrc1: TAO_ARG_DIFF_SRC_1
        case .diffDst: TAO_ARG_DIFF_DST
        case .diffWeights: TAO_ARG_DIFF_WEIGHTS
        case .diffBias: TAO_ARG_DIFF_BIAS
        case .diffScale: TAO_ARG_DIFF_SCALE
        case .diffShift: TAO_ARG_DIFF_SHIFT
        case .multipleSrc(let i): TAO_ARG_MULTIPLE_SRC + Int32(i)
        case .depthwiseWeights: TAO_ARG_ATTR_POST_OP_DW | TAO_ARG_WEIGHTS
        case .depthwiseBias: TAO_ARG_ATTR_POST_OP_DW | TAO_ARG_BIAS
        }
    }
}

/// What a primitive descriptor can be asked for.
public enum Query: Sendable {
    case src, diffSrc, weights, diffWeights, dst, diffDst, workspace
    var raw: dnnl_query_t {
        switch self {
        case .src: dnnl_query_src_md
        case .diffSrc: dnnl_query_diff_src_md
        case .weights: dnnl_query_weights_md
        case .diffWeights: dnnl_query_diff_weights_md
        case .dst: dnnl_query_dst_md
        case .diffDst: dnnl_query_diff_dst_md
        case .workspace: dnnl_query_workspace_md
        }
    }
}

/// A primitive descriptor: the chosen implementation and its memory formats.
public final class PrimitiveDesc: @unchecked Sendable {
    let handle: dnnl_primitive_desc_t
    init(_ h: dnnl_primitive_desc_t) { handle = h }
    deinit { dnnl_primitive_desc_destroy(handle) }

    /// The descriptor of one of the primitive's memories (a zero desc if it has none).
    public func md(_ q: Query, _ index: Int = 0) -> MemoryDesc {
        guard let p = dnnl_primitive_desc_query_md(handle, q.raw, Int32(index)) else { return MemoryDesc(raw: dnnl_memory_desc_t()) }
        return MemoryDesc(raw: p.pointee)
    }

    /// The descriptor the primitive expects for execution argument `arg` (zero if unused).
    public func md(for arg: Arg) -> MemoryDesc {
        guard let p = dnnl_primitive_desc_query_md(handle, dnnl_query_exec_arg_md, arg.raw) else { return MemoryDesc(raw: dnnl_memory_desc_t()) }
        return MemoryDesc(raw: p.pointee)
    }

    /// What the primitive computes: "convolution", "batch_normalization", "eltwise", "binary", "reorder", …
    public var kind: String {
        var k = dnnl_primitive_kind_t(0)
        dnnl_primitive_desc_query(handle, dnnl_query_primitive_kind, 0, &k)
        return String(cString: dnnl_prim_kind2str(k))
    }

    /// The implementation oneDNN picked (e.g. "jit:avx512_core"), for reports and tuning.
    public var implementation: String {
        var s: UnsafePointer<CChar>?
        dnnl_primitive_desc_query(handle, dnnl_query_impl_info_str, 0, &s)
        return s.map { String(cString: $0) } ?? "?"
    }

    static func create(_ opDesc: UnsafeRawPointer, attr: Attributes?, hint: PrimitiveDesc?, _ what: String) throws(KernelError) -> PrimitiveDesc {
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_primitive_desc_create(&pd, opDesc, attr?.handle, DNNL.shared.engine, hint?.handle), what)
        return PrimitiveDesc(pd!)
    }
}

/// A compiled primitive (JIT code); create once per shape and reuse.
public final class Primitive: @unchecked Sendable {
    let handle: dnnl_primitive_t
    public let desc: PrimitiveDesc
    public init(_ pd: PrimitiveDesc) throws(KernelError) {
        var p: dnnl_primitive_t?
        try check(dnnl_primitive_create(&p, pd.handle), "primitive creation (\(pd.implementation))")
        handle = p!
        desc = pd
    }
    deinit { dnnl_primitive_destroy(handle) }
}

/// A primitive bound to its memories, ready to run any number of times without allocating.
public struct Step: @unchecked Sendable {
    public let primitive: Primitive
    private let args: [dnnl_exec_arg_t]
    private let bindings: [(Arg, Memory)]   // keeps the bound memories alive

    /// The memories this step reads or writes.
    public var memories: [Memory] { bindings.map(\.1) }

    public init(_ primitive: Primitive, _ bindings: [(Arg, Memory)]) {
        self.primitive = primitive
        args = bindings.map { dnnl_exec_arg_t(arg: $0.0.raw, memory: $0.1.handle) }
        self.bindings = bindings
    }

    /// Runs the primitive; failures here mean a planning bug, so they stop the program with the reason.
    public func run() {
        let s = args.withUnsafeBufferPointer { dnnl_primitive_execute(primitive.handle, DNNL.shared.stream, Int32($0.count), $0.baseAddress) }
        if s != dnnl_success {
            let expected = bindings.map { "\($0.0): bound \($0.1.desc.dims) expects \(primitive.desc.md(for: $0.0).dims)\(primitive.desc.md(for: $0.0) == $0.1.desc ? "" : " MISMATCH")" }
            let all: [Arg] = [.src, .src1, .dst, .weights, .bias, .mean, .variance, .scale, .shift, .workspace, .diffSrc, .diffDst, .diffWeights, .diffBias, .diffScale, .diffShift]
            let used = all.filter { !primitive.desc.md(for: $0).isZero }
            preconditionFailure("oneDNN execute failed (\(s.rawValue)) in \(primitive.desc.implementation); it uses \(used): \(expected.joined(separator: "; "))")
        }
    }
}

/// Primitive attributes: fused post-ops and quantization scales.
public final class Attributes: @unchecked Sendable {
    let handle: dnnl_primitive_attr_t
    public init() {
        var a: dnnl_primitive_attr_t?
        dnnl_primitive_attr_create(&a)
        handle = a!
    }
    deinit { dnnl_primitive_attr_destroy(handle) }

    /// Post-ops run on the output inside the primitive: `sum` adds the prior content of dst.
    /// `sum(scale:, type:)` reads dst's prior content as `type` (int8: an s8 residual summed into a u8 output).
    /// `depthwise` runs a 3×3 depthwise convolution (padding 1) on the output, int8 weights and f32
    /// bias bound as `.depthwiseWeights`/`.depthwiseBias`, with per-channel output `scales`; post-ops
    /// after it act on its output.
    public enum PostOp: Sendable {
        case eltwise(EltwiseAlg, alpha: Float, beta: Float), sum(scale: Float), sumAs(scale: Float, type: DataType)
        case depthwise(stride: Int, scales: [Float], type: DataType)
    }

    public func setPostOps(_ ops: [PostOp]) throws(KernelError) {
        var po: dnnl_post_ops_t?
        dnnl_post_ops_create(&po)
        defer { dnnl_post_ops_destroy(po) }
        for op in ops {
            switch op {
            case let .eltwise(alg, alpha, beta): try check(dnnl_post_ops_append_eltwise(po, 1, alg.raw, alpha, beta), "eltwise post-op")
            case let .sum(scale): try check(dnnl_post_ops_append_sum(po, scale), "sum post-op")
            case let .sumAs(scale, type): try check(dnnl_post_ops_append_sum_v2(po, scale, type.raw), "sum post-op")
            case let .depthwise(stride, scales, type):
                try check(dnnl_post_ops_append_dw(po, dnnl_s8, dnnl_f32, type.raw, 3, Int64(stride), 1, Int64(scales.count), 2, scales), "depthwise post-op")
            }
        }
        try check(dnnl_primitive_attr_set_post_ops(handle, po), "set post-ops")
    }

    /// Scales applied to one input of a primitive (binary: `.src`, `.src1`), one for all (`mask` 0).
    public func setScales(_ arg: Arg, _ scales: [Float], mask: Int32 = 0) throws(KernelError) {
        try check(dnnl_primitive_attr_set_scales(handle, arg.raw, Int64(scales.count), mask, scales), "scales of an input")
    }

    /// Output scales (int8): one for all (`mask` 0) or one per output channel (`mask` 2).
    public func setOutputScales(_ scales: [Float], mask: Int32) throws(KernelError) {
        try check(dnnl_primitive_attr_set_output_scales(handle, Int64(scales.count), mask, scales), "output scales")
    }
}

/// Element-wise algorithms (used by eltwise primitives and post-ops).
public enum EltwiseAlg: Sendable, Hashable {
    case relu, elu, tanh, logistic, swish, hardswish, mish, clip, linear, abs, sqrt, exp, log, softRelu, pow, geluErf
    var raw: dnnl_alg_kind_t {
        switch self {
        case .relu: dnnl_eltwise_relu
        case .elu: dnnl_eltwise_elu
        case .tanh: dnnl_eltwise_tanh
        case .logistic: dnnl_eltwise_logistic
        case .swish: dnnl_eltwise_swish
        case .hardswish: dnnl_eltwise_hardswish
        case .mish: dnnl_eltwise_mish
        case .clip: dnnl_eltwise_clip
        case .linear: dnnl_eltwise_linear
        case .abs: dnnl_eltwise_abs
        case .sqrt: dnnl_eltwise_sqrt
        case .exp: dnnl_eltwise_exp
        case .log: dnnl_eltwise_log
        case .softRelu: dnnl_eltwise_soft_relu
        case .pow: dnnl_eltwise_pow
        case .geluErf: dnnl_eltwise_gelu_erf
        }
    }
}
