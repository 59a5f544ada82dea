import TaoGraph
import TaoKernels

extension Executor {
    /// Inference: a convolution with its folded batch norm, activations and residual add in one primitive.
    func lowerFusedConv(_ n: Node, index: Int, _ c: Conv2D, _ tail: ConvTail) throws -> RValue {
        let x = value(n.inputs[0])
        let xd = dims(n.inputs[0]), yd = dims(n.output)
        let (wDims, win) = convGeometry(n, c)
        let o = c.outChannels
        var w = param(paramIndex(n.inputs[1]), logicalDims: wDims)
        var b = c.hasBias ? value(n.inputs[2]) : nil
        if let bn = tail.batchNorm, case .batchNorm(let attrs) = bn.op {
            // w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β, recomputed whenever the parameters change.
            let folded = constantValue(w.md)
            let foldedBias = constantValue(MemoryDesc([o]))
            let perChannel = wDims.suffix(3).reduce(1, *), eps = attrs.epsilon
            let (wm, bm, gm) = (w.mem, b?.mem, [value(bn.inputs[1]), value(bn.inputs[2]), value(bn.inputs[3]), value(bn.inputs[4])].map(\.mem))
            prepSteps.append(.swift([wm, folded.mem, foldedBias.mem] + gm) {
                let (gamma, beta, mean, variance) = (gm[0].floats, gm[1].floats, gm[2].floats, gm[3].floats)
                let (src, dst, bsrc, bdst) = (wm.floats, folded.mem.floats, bm?.floats, foldedBias.mem.floats)
                for k in 0..<o {
                    let s = gamma[k] / (variance[k] + eps).squareRoot()
                    for j in 0..<perChannel { dst[k * perChannel + j] = src[k * perChannel + j] * s }
                    bdst[k] = ((bsrc?[k] ?? 0) - mean[k]) * s + beta[k]
                }
            })
            w = folded
            b = foldedBias
        }
        if let geometry = ownWinograd(c, input: xd, output: yd),
           let ops = WinogradConvolution.PostOps(tail.activation, sum: tail.addend != nil, tail.postActivation) {
            let xin = try ensure(x, MemoryDesc(xd, .nChw8c))
            let addend = try tail.addend.map { try ensure(value($0), MemoryDesc(yd, .nChw8c)) }
            let y = try fusedOutput(index: index, tail, addend: addend, src: [x.mem, xin.mem], md: MemoryDesc(yd, .nChw8c))
            return try lowerOwnWinograd(geometry, ops, x: xin, weights: w, bias: b, y: y)
        }
        var postOps: [Attributes.PostOp] = []
        if let a = tail.activation { let (alg, al, be) = a.eltwise; postOps.append(.eltwise(alg, alpha: al, beta: be)) }
        var addend: RValue?
        if let v = tail.addend { addend = value(v); postOps.append(.sum(scale: 1)) }
        if let a = tail.postActivation { let (alg, al, be) = a.eltwise; postOps.append(.eltwise(alg, alpha: al, beta: be)) }
        let attr = Attributes()
        try attr.setPostOps(postOps)
        let dstMD = addend?.md ?? MemoryDesc(yd, .any, type: activationType(tail.output))
        let (srcAny, wAny) = (MemoryDesc(xd, .any, type: computeType), MemoryDesc(wDims, .any, type: computeType))
        let pd = try (try? Kernels.convForward(.inference, src: srcAny, weights: wAny, bias: b?.md, dst: dstMD, win, attr: attr, algorithm: algorithm(for: c, input: xd)))
            ?? Kernels.convForward(.inference, src: srcAny, weights: wAny, bias: b?.md, dst: dstMD, win, attr: attr)
        let xin = try ensure(x, pd.md(.src))
        let wf = try ensure(w, pd.md(.weights), differentiable: false)
        let y = try fusedOutput(index: index, tail, addend: addend, src: [x.mem, xin.mem], md: pd.md(.dst))
        var binds: [(Arg, Memory)] = [(.src, xin.mem), (.weights, wf.mem), (.dst, y.mem)]
        if let b { binds.append((.bias, b.mem)) }
        forwardSteps.append(try step(pd, binds))
        return y
    }

    /// Inference: a transposed convolution with its folded batch norm and activation (`tail`, when
    /// fused). Strided ones whose kernel is a multiple of the stride (UNet's 4×4 and 2×2 at stride 2)
    /// run as one convolution and a pixel shuffle (`SubPixelDeconvolution`): on UNet ResNet-18 at
    /// 320², batch 8, oneDNN's deconvolutions took 830 of 2,240 ms a pass at 42–65% of the
    /// processor's peak (AVX2 EPYC); on a Xeon with AVX-512 the whole pass went from 2.0–2.3 s to
    /// 0.77–0.87 s with this. The rest run as oneDNN's deconvolution with the tail as post-ops.
    func lowerInferenceConvTranspose(_ n: Node, _ c: ConvTranspose2D, _ tail: ConvTail?) throws -> RValue {
        let x = value(n.inputs[0])
        let xd = dims(n.inputs[0]), yd = dims(n.output)
        let (o, i, kh, kw) = (c.outChannels, xd[1], c.kernel[0], c.kernel[1])
        // The parameter is [I, O, KH, KW]; oneDNN's deconvolution wants logical [O, I, KH, KW]: same bytes, permuted strides.
        let w = param(paramIndex(n.inputs[1]), logicalDims: [o, i, kh, kw], strides: [kh * kw, o * kh * kw, kw, 1])
        let b = c.hasBias ? value(n.inputs[2]) : nil
        var bnMems: [Memory] = [], eps: Float = 0
        if let bn = tail?.batchNorm, case .batchNorm(let attrs) = bn.op {
            bnMems = (1...4).map { value(bn.inputs[$0]).mem }
            eps = attrs.epsilon
        }
        /// Per output channel: the folded batch norm's scale (nil without one) and the bias.
        let (wm, bm) = (w.mem, b?.mem)
        func scaleAndBias(_ bias: UnsafeMutablePointer<Float>) -> [Float]? {
            for k in 0..<o { bias[k] = bm?.floats[k] ?? 0 }
            guard bnMems.count == 4 else { return nil }
            let (gamma, beta, mean, variance) = (bnMems[0].floats, bnMems[1].floats, bnMems[2].floats, bnMems[3].floats)
            let scale = (0..<o).map { gamma[$0] / (variance[$0] + eps).squareRoot() }
            for k in 0..<o { bias[k] = (bias[k] - mean[k]) * scale[k] + beta[k] }
            return scale
        }
        var postOps: [Attributes.PostOp] = []
        if let a = tail?.activation { let (alg, al, be) = a.eltwise; postOps.append(.eltwise(alg, alpha: al, beta: be)) }
        let attr = Attributes()
        try attr.setPostOps(postOps)

        if let sp = subPixel(n, c) {
            let cw = constantValue(MemoryDesc(sp.convWeightDims)), cb = constantValue(MemoryDesc([sp.phases * o]))
            let bias = constantValue(MemoryDesc([o]))
            prepSteps.append(.swift([wm, cw.mem, cb.mem, bias.mem] + (bm.map { [$0] } ?? []) + bnMems) {
                let scale = scaleAndBias(bias.mem.floats)
                if let scale { scale.withUnsafeBufferPointer { sp.convWeights(from: wm.floats, scale: $0.baseAddress, into: cw.mem.floats) } }
                else { sp.convWeights(from: wm.floats, scale: nil, into: cw.mem.floats) }
                sp.convBias(from: bias.mem.floats, into: cb.mem.floats)
            })
            return try lowerSubPixel(sp, x: x, convWeights: cw, convBias: cb, attr: attr).y
        }
        var weights = w, bias = b
        if tail?.batchNorm != nil {
            let fw = constantValue(w.md), fb = constantValue(MemoryDesc([o]))
            prepSteps.append(.swift([wm, fw.mem, fb.mem] + (bm.map { [$0] } ?? []) + bnMems) {
                let scale = scaleAndBias(fb.mem.floats)!
                let (src, dst) = (wm.floats, fw.mem.floats)
                for ic in 0..<i { for k in 0..<o { for j in 0..<(kh * kw) { dst[(ic * o + k) * kh * kw + j] = src[(ic * o + k) * kh * kw + j] * scale[k] } } }
            })
            (weights, bias) = (fw, fb)
        }
        // Output padding is extra rows/columns at the end: it reduces the right padding.
        let win = Window(strides: c.stride, dilation: c.dilation.map { $0 - 1 }, padLeft: [c.padding.top, c.padding.left],
                         padRight: [c.padding.bottom - c.outputPadding[0], c.padding.right - c.outputPadding[1]])
        let pd = try Kernels.deconvForward(.inference, src: MemoryDesc(xd, .any, type: computeType), weights: MemoryDesc([o, i, kh, kw], .any, type: computeType), bias: bias?.md,
                                           dst: MemoryDesc(yd, .any), win, attr: attr)
        let xin = try ensure(x, pd.md(.src))
        let wf = try ensure(weights, pd.md(.weights), differentiable: false)
        let y = newValue(pd.md(.dst), needsGrad: false)
        var binds: [(Arg, Memory)] = [(.src, xin.mem), (.weights, wf.mem), (.dst, y.mem)]
        if let bias { binds.append((.bias, bias.mem)) }
        forwardSteps.append(try step(pd, binds))
        return y
    }

    /// The output of a fused convolution: with a residual addend, the addend's own buffer when
    /// nothing reads it after this convolution (or a copy of it), else a new value of layout `md`.
    private func fusedOutput(index: Int, _ tail: ConvTail, addend: RValue?, src: [Memory], md: MemoryDesc) throws -> RValue {
        guard let addend, let v = tail.addend else { return newValue(md, needsGrad: false) }
        let later = graphConsumers[v.index].filter { $0 != index && !tail.absorbed.contains($0) && $0 > index }
        let isInput: Bool = { if case .node = graph.source(of: v) { return false }; return true }()
        if later.isEmpty && !isInput && !graph.outputs.contains(v) && !src.contains(where: { $0 === addend.mem }) {
            // A new value on the same buffer: layout conversions cached for the addend hold its old contents.
            return RValue(addend.md, addend.mem, needsGrad: false)
        }
        let y = newValue(addend.md, needsGrad: false)
        forwardSteps.append(try step(Kernels.reorder(from: addend.md, to: addend.md), [(.src, addend.mem), (.dst, y.mem)]))
        return y
    }
}
