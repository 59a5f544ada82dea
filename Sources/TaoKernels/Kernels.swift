import CDNNL

/// Forward propagation kinds.
public enum Propagation: Sendable {
    case training, inference
    var raw: dnnl_prop_kind_t { self == .training ? dnnl_forward_training : dnnl_forward_inference }
}

/// Geometry shared by convolutions and pooling; dilation counts as oneDNN does (0 = dense).
public struct Window: Sendable {
    public var strides: [Int], dilation: [Int], padLeft: [Int], padRight: [Int]
    public init(strides: [Int], dilation: [Int] = [0, 0], padLeft: [Int], padRight: [Int]) {
        self.strides = strides; self.dilation = dilation; self.padLeft = padLeft; self.padRight = padRight
    }
    var s: [Int64] { strides.map(Int64.init) }
    var d: [Int64] { dilation.map(Int64.init) }
    var l: [Int64] { padLeft.map(Int64.init) }
    var r: [Int64] { padRight.map(Int64.init) }
}

@inline(__always)
private func withOptional<R>(_ md: MemoryDesc?, _ body: (UnsafePointer<dnnl_memory_desc_t>?) throws(KernelError) -> R) throws(KernelError) -> R {
    guard var raw = md?.raw else { return try body(nil) }
    return try withUnsafePointer(to: &raw) { (p: UnsafePointer<dnnl_memory_desc_t>) throws(KernelError) -> R in try body(p) }
}

/// Constructors of oneDNN primitive descriptors, one per primitive family and direction.
public enum Kernels {
    public static func reorder(from src: MemoryDesc, to dst: MemoryDesc, attr: Attributes? = nil) throws(KernelError) -> PrimitiveDesc {
        var pd: dnnl_primitive_desc_t?
        var a = src.raw, b = dst.raw
        try check(dnnl_reorder_primitive_desc_create(&pd, &a, DNNL.shared.engine, &b, DNNL.shared.engine, attr?.handle), "reorder \(src) -> \(dst)")
        return PrimitiveDesc(pd!)
    }

    // MARK: convolution and transposed convolution

    /// Convolution algorithms: direct, or Winograd (fewer multiplies, for 3×3 stride 1).
    public enum ConvAlgorithm: Sendable { case direct, winograd
        var raw: dnnl_alg_kind_t { self == .direct ? dnnl_convolution_direct : dnnl_convolution_winograd }
    }

    /// Whether oneDNN has an fp32 Winograd convolution on this processor (oneDNN 2.6 has them for
    /// AVX-512 only; on AVX2-only processors the runtime uses our own, `WinogradConvolution`).
    public static let hasWinograd: Bool = {
        let win = Window(strides: [1, 1], padLeft: [1, 1], padRight: [1, 1])
        let src = MemoryDesc([2, 16, 8, 8], .any), dst = MemoryDesc([2, 16, 8, 8], .any), w = MemoryDesc([16, 16, 3, 3], .any)
        return (try? convForward(.training, src: src, weights: w, bias: nil, dst: dst, win, algorithm: .winograd)) != nil
    }()

    /// Whether the processor computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it.
    /// oneDNN also runs bf16 on plain AVX-512 by emulation, slower than fp32: that is not counted.
    public static let hasBF16: Bool = {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        return isa == dnnl_cpu_isa_avx512_core_bf16.rawValue || isa == dnnl_cpu_isa_avx512_core_amx.rawValue
    }()

    /// Whether oneDNN dispatches to AMX (tile matrix units), where bf16 convolutions run 3.8–4.6×
    /// fp32's rate; with AVX512-BF16 alone they run at about half of it.
    public static var hasAMX: Bool { dnnl_get_effective_cpu_isa() == dnnl_cpu_isa_avx512_core_amx }

    /// The instruction set oneDNN dispatches to (e.g. "avx512_core_bf16"), for messages and reports.
    public static var cpuISA: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_amx: "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: "avx2_vnni"
        case dnnl_cpu_isa_avx2: "avx2"
        default: "older than avx2"
        }
    }

    public static func convForward(_ prop: Propagation, src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc,
                                   _ w: Window, attr: Attributes? = nil, algorithm: ConvAlgorithm = .direct) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_convolution_desc_t()
        var s = src.raw, wt = weights.raw, o = dst.raw
        try withOptional(bias) { (b) throws(KernelError) in
            try check(dnnl_dilated_convolution_forward_desc_init(&d, prop.raw, algorithm.raw, &s, &wt, b, &o, w.s, w.d, w.l, w.r), "conv forward desc")
        }
        return try PrimitiveDesc.create(&d, attr: attr, hint: nil, "conv forward \(src.dims) * \(weights.dims)")
    }

    public static func convBackwardData(diffSrc: MemoryDesc, weights: MemoryDesc, diffDst: MemoryDesc, _ w: Window,
                                        hint: PrimitiveDesc, algorithm: ConvAlgorithm = .direct) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_convolution_desc_t()
        var s = diffSrc.raw, wt = weights.raw, o = diffDst.raw
        try check(dnnl_dilated_convolution_backward_data_desc_init(&d, algorithm.raw, &s, &wt, &o, w.s, w.d, w.l, w.r), "conv backward-data desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "conv backward data \(diffSrc.dims)")
    }

    public static func convBackwardWeights(src: MemoryDesc, diffWeights: MemoryDesc, diffBias: MemoryDesc?, diffDst: MemoryDesc,
                                           _ w: Window, hint: PrimitiveDesc, algorithm: ConvAlgorithm = .direct) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_convolution_desc_t()
        var s = src.raw, wt = diffWeights.raw, o = diffDst.raw
        try withOptional(diffBias) { (b) throws(KernelError) in
            try check(dnnl_dilated_convolution_backward_weights_desc_init(&d, algorithm.raw, &s, &wt, b, &o, w.s, w.d, w.l, w.r), "conv backward-weights desc")
        }
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "conv backward weights \(diffWeights.dims)")
    }

    public static func deconvForward(_ prop: Propagation, src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc,
                                     _ w: Window, attr: Attributes? = nil) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_deconvolution_desc_t()
        var s = src.raw, wt = weights.raw, o = dst.raw
        try withOptional(bias) { (b) throws(KernelError) in
            try check(dnnl_dilated_deconvolution_forward_desc_init(&d, prop.raw, dnnl_deconvolution_direct, &s, &wt, b, &o, w.s, w.d, w.l, w.r), "deconv forward desc")
        }
        return try PrimitiveDesc.create(&d, attr: attr, hint: nil, "deconv forward \(src.dims)")
    }

    public static func deconvBackwardData(diffSrc: MemoryDesc, weights: MemoryDesc, diffDst: MemoryDesc, _ w: Window,
                                          hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_deconvolution_desc_t()
        var s = diffSrc.raw, wt = weights.raw, o = diffDst.raw
        try check(dnnl_dilated_deconvolution_backward_data_desc_init(&d, dnnl_deconvolution_direct, &s, &wt, &o, w.s, w.d, w.l, w.r), "deconv backward-data desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "deconv backward data \(diffSrc.dims)")
    }

    public static func deconvBackwardWeights(src: MemoryDesc, diffWeights: MemoryDesc, diffBias: MemoryDesc?, diffDst: MemoryDesc,
                                             _ w: Window, hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_deconvolution_desc_t()
        var s = src.raw, wt = diffWeights.raw, o = diffDst.raw
        try withOptional(diffBias) { (b) throws(KernelError) in
            try check(dnnl_dilated_deconvolution_backward_weights_desc_init(&d, dnnl_deconvolution_direct, &s, &wt, b, &o, w.s, w.d, w.l, w.r), "deconv backward-weights desc")
        }
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "deconv backward weights \(diffWeights.dims)")
    }

    // MARK: normalization, element-wise, pooling

    /// Batch norm flags: `globalStats` uses the given mean/variance; `fuseReLU` applies ReLU inside.
    public struct BNFlags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let globalStats = BNFlags(rawValue: UInt32(dnnl_use_global_stats.rawValue))
        public static let scale = BNFlags(rawValue: UInt32(dnnl_use_scale.rawValue))
        public static let shift = BNFlags(rawValue: UInt32(dnnl_use_shift.rawValue))
        public static let fuseReLU = BNFlags(rawValue: UInt32(dnnl_fuse_norm_relu.rawValue))
    }

    public static func batchNormForward(_ prop: Propagation, data: MemoryDesc, epsilon: Float, flags: BNFlags) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_batch_normalization_desc_t()
        var m = data.raw
        try check(dnnl_batch_normalization_forward_desc_init(&d, prop.raw, &m, epsilon, flags.rawValue), "batch norm forward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "batch norm forward \(data.dims)")
    }

    public static func batchNormBackward(diffData: MemoryDesc, data: MemoryDesc, epsilon: Float, flags: BNFlags,
                                         hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_batch_normalization_desc_t()
        var dm = diffData.raw, m = data.raw
        try check(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &dm, &m, epsilon, flags.rawValue), "batch norm backward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "batch norm backward \(data.dims)")
    }

    public static func eltwiseForward(_ prop: Propagation, _ alg: EltwiseAlg, data: MemoryDesc, alpha: Float, beta: Float) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_eltwise_desc_t()
        var m = data.raw
        try check(dnnl_eltwise_forward_desc_init(&d, prop.raw, alg.raw, &m, alpha, beta), "eltwise forward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "eltwise \(alg) forward")
    }

    public static func eltwiseBackward(_ alg: EltwiseAlg, diffData: MemoryDesc, data: MemoryDesc, alpha: Float, beta: Float,
                                       hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_eltwise_desc_t()
        var dm = diffData.raw, m = data.raw
        try check(dnnl_eltwise_backward_desc_init(&d, alg.raw, &dm, &m, alpha, beta), "eltwise backward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "eltwise \(alg) backward")
    }

    public enum PoolAlg: Sendable { case max, avgIncludePad, avgExcludePad
        var raw: dnnl_alg_kind_t {
            switch self { case .max: dnnl_pooling_max; case .avgIncludePad: dnnl_pooling_avg_include_padding; case .avgExcludePad: dnnl_pooling_avg_exclude_padding }
        }
    }

    public static func poolForward(_ prop: Propagation, _ alg: PoolAlg, src: MemoryDesc, dst: MemoryDesc, kernel: [Int], _ w: Window) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_pooling_v2_desc_t()
        var s = src.raw, o = dst.raw
        try check(dnnl_pooling_v2_forward_desc_init(&d, prop.raw, alg.raw, &s, &o, w.s, kernel.map(Int64.init), w.d, w.l, w.r), "pooling forward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "pooling forward \(src.dims)")
    }

    public static func poolBackward(_ alg: PoolAlg, diffSrc: MemoryDesc, diffDst: MemoryDesc, kernel: [Int], _ w: Window,
                                    hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_pooling_v2_desc_t()
        var s = diffSrc.raw, o = diffDst.raw
        try check(dnnl_pooling_v2_backward_desc_init(&d, alg.raw, &s, &o, w.s, kernel.map(Int64.init), w.d, w.l, w.r), "pooling backward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "pooling backward \(diffSrc.dims)")
    }

    // MARK: inner product, binary, reduction, softmax, resampling, concat, sum

    public static func innerProductForward(_ prop: Propagation, src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc,
                                           attr: Attributes? = nil) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_inner_product_desc_t()
        var s = src.raw, wt = weights.raw, o = dst.raw
        try withOptional(bias) { (b) throws(KernelError) in
            try check(dnnl_inner_product_forward_desc_init(&d, prop.raw, &s, &wt, b, &o), "inner product forward desc")
        }
        return try PrimitiveDesc.create(&d, attr: attr, hint: nil, "inner product forward \(src.dims) x \(weights.dims)")
    }

    public static func innerProductBackwardData(diffSrc: MemoryDesc, weights: MemoryDesc, diffDst: MemoryDesc, hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_inner_product_desc_t()
        var s = diffSrc.raw, wt = weights.raw, o = diffDst.raw
        try check(dnnl_inner_product_backward_data_desc_init(&d, &s, &wt, &o), "inner product backward-data desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "inner product backward data")
    }

    public static func innerProductBackwardWeights(src: MemoryDesc, diffWeights: MemoryDesc, diffBias: MemoryDesc?, diffDst: MemoryDesc,
                                                   hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_inner_product_desc_t()
        var s = src.raw, wt = diffWeights.raw, o = diffDst.raw
        try withOptional(diffBias) { (b) throws(KernelError) in
            try check(dnnl_inner_product_backward_weights_desc_init(&d, &s, &wt, b, &o), "inner product backward-weights desc")
        }
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "inner product backward weights")
    }

    /// dst = src · weights, batched over leading dims ([B, M, K] · [B, K, N] → [B, M, N]).
    public static func matmul(src: MemoryDesc, weights: MemoryDesc, dst: MemoryDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_matmul_desc_t()
        var s = src.raw, wt = weights.raw, o = dst.raw
        try check(dnnl_matmul_desc_init(&d, &s, &wt, nil, &o), "matmul desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "matmul \(src.dims) x \(weights.dims)")
    }

    public enum BinaryAlg: Sendable { case add, mul, eq, lt, gt, le, ge
        var raw: dnnl_alg_kind_t {
            switch self {
            case .add: dnnl_binary_add
            case .mul: dnnl_binary_mul
            case .eq: dnnl_binary_eq
            case .lt: dnnl_binary_lt
            case .gt: dnnl_binary_gt
            case .le: dnnl_binary_le
            case .ge: dnnl_binary_ge
            }
        }
    }

    public static func binary(_ alg: BinaryAlg, src0: MemoryDesc, src1: MemoryDesc, dst: MemoryDesc, attr: Attributes? = nil) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_binary_desc_t()
        var a = src0.raw, b = src1.raw, o = dst.raw
        try check(dnnl_binary_desc_init(&d, alg.raw, &a, &b, &o), "binary desc")
        return try PrimitiveDesc.create(&d, attr: attr, hint: nil, "binary \(alg) \(src0.dims) \(src1.dims)")
    }

    /// Sum-reduction of `src` into the (smaller, size-1 on reduced axes) `dst`.
    public static func reduceSum(src: MemoryDesc, dst: MemoryDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_reduction_desc_t()
        var a = src.raw, o = dst.raw
        try check(dnnl_reduction_desc_init(&d, dnnl_reduction_sum, &a, &o, 0, 0), "reduction desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "reduce-sum \(src.dims) -> \(dst.dims)")
    }

    public static func softmaxForward(_ prop: Propagation, data: MemoryDesc, axis: Int) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_softmax_desc_t()
        var m = data.raw
        try check(dnnl_softmax_forward_desc_init(&d, prop.raw, &m, Int32(axis)), "softmax forward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "softmax forward")
    }

    public static func softmaxBackward(diffData: MemoryDesc, data: MemoryDesc, axis: Int, hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_softmax_desc_t()
        var dm = diffData.raw, m = data.raw
        try check(dnnl_softmax_backward_desc_init(&d, &dm, &m, Int32(axis)), "softmax backward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "softmax backward")
    }

    public static func logSoftmaxForward(_ prop: Propagation, data: MemoryDesc, axis: Int) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_logsoftmax_desc_t()
        var m = data.raw
        try check(dnnl_logsoftmax_forward_desc_init(&d, prop.raw, &m, Int32(axis)), "logsoftmax forward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "logsoftmax forward")
    }

    public static func logSoftmaxBackward(diffData: MemoryDesc, data: MemoryDesc, axis: Int, hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_logsoftmax_desc_t()
        var dm = diffData.raw, m = data.raw
        try check(dnnl_logsoftmax_backward_desc_init(&d, &dm, &m, Int32(axis)), "logsoftmax backward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "logsoftmax backward")
    }

    public enum ResampleAlg: Sendable { case nearest, linear
        var raw: dnnl_alg_kind_t { self == .nearest ? dnnl_resampling_nearest : dnnl_resampling_linear }
    }

    public static func resampleForward(_ prop: Propagation, _ alg: ResampleAlg, src: MemoryDesc, dst: MemoryDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_resampling_desc_t()
        var s = src.raw, o = dst.raw
        try check(dnnl_resampling_forward_desc_init(&d, prop.raw, alg.raw, nil, &s, &o), "resampling forward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: nil, "resampling forward")
    }

    public static func resampleBackward(_ alg: ResampleAlg, diffSrc: MemoryDesc, diffDst: MemoryDesc, hint: PrimitiveDesc) throws(KernelError) -> PrimitiveDesc {
        var d = dnnl_resampling_desc_t()
        var s = diffSrc.raw, o = diffDst.raw
        try check(dnnl_resampling_backward_desc_init(&d, alg.raw, nil, &s, &o), "resampling backward desc")
        return try PrimitiveDesc.create(&d, attr: nil, hint: hint, "resampling backward")
    }

    /// Concatenation along `axis`; `dst` nil lets oneDNN choose the output layout.
    public static func concat(srcs: [MemoryDesc], axis: Int, dst: MemoryDesc?) throws(KernelError) -> PrimitiveDesc {
        var pd: dnnl_primitive_desc_t?
        let raws = srcs.map(\.raw)
        try withOptional(dst) { (o) throws(KernelError) in
            try check(raws.withUnsafeBufferPointer { dnnl_concat_primitive_desc_create(&pd, o, Int32(srcs.count), Int32(axis), $0.baseAddress, nil, DNNL.shared.engine) }, "concat")
        }
        return PrimitiveDesc(pd!)
    }

    /// dst = Σ scales[i]·srcs[i].
    public static func sum(dst: MemoryDesc, scales: [Float], srcs: [MemoryDesc]) throws(KernelError) -> PrimitiveDesc {
        var pd: dnnl_primitive_desc_t?
        let raws = srcs.map(\.raw)
        var o = dst.raw
        try check(raws.withUnsafeBufferPointer { dnnl_sum_primitive_desc_create(&pd, &o, Int32(srcs.count), scales, $0.baseAddress, nil, DNNL.shared.engine) }, "sum")
        return PrimitiveDesc(pd!)
    }
}
