import TaoGraph
import TaoKernels

// Convolution, transposed convolution and dense layers. Every primitive, forward and backward,
// picks its own layouts ("any"): weights are reordered from the plain parameter store once per
// parameter update, activations and gradients only where two primitives disagree, and weight
// gradients are reordered straight back to plain for the optimizer.
extension Executor {
    /// The three primitive descriptors of a convolution-like op.
    struct ConvFamily {
        var forward: (_ src: MemoryDesc, _ weights: MemoryDesc, _ bias: MemoryDesc?, _ dst: MemoryDesc) throws -> PrimitiveDesc
        var backwardData: (_ diffSrc: MemoryDesc, _ weights: MemoryDesc, _ diffDst: MemoryDesc, _ hint: PrimitiveDesc) throws -> PrimitiveDesc
        var backwardWeights: (_ src: MemoryDesc, _ diffWeights: MemoryDesc, _ diffBias: MemoryDesc?, _ diffDst: MemoryDesc, _ hint: PrimitiveDesc) throws -> PrimitiveDesc
    }

    /// Winograd for 3×3 stride-1 dense convolutions when enabled and the feature map is at least
    /// `winogradMinSide` on each side (its 4×4 output tiles waste most of their work on smaller maps);
    /// primitives fall back to direct convolution where oneDNN has no Winograd kernel for the shapes.
    func algorithm(for c: Conv2D, input: [Int]) -> Kernels.ConvAlgorithm {
        let side = min(input[2], input[3])
        return winograd && side >= Self.winogradMinSide && c.groups == 1 && c.kernel == [3, 3] && c.stride == [1, 1]
            && c.dilation == [1, 1] ? .winograd : .direct
    }

    /// Measured on ResNet-10 training, batch 128, 32² grayscale input (maps 8, 4, 2, 1): Winograd
    /// everywhere 1,911–2,026 img/s; only on maps ≥ 4: 3,318–3,330 img/s; only on maps ≥ 7: 2,575–3,220.
    static let winogradMinSide = 4

    /// The geometry for our own Winograd kernel (`WinogradConvolution`) where oneDNN has no fp32
    /// Winograd (AVX2 processors) and the convolution qualifies: Winograd enabled, 3×3 stride 1
    /// dense, channels in blocks of 8, maps at least `winogradMinSide`. In training it computes the
    /// forward pass, the data gradient and (without a bias) the weight gradient. On an AVX2 EPYC
    /// (384×1248, batch 8) it ran 3×3 layers of 512, 256, 128 and 64 channels 1.6–2.5, 2.1–2.6, 2.1
    /// and 1.1–1.4× faster than oneDNN's direct convolution.
    func ownWinograd(_ c: Conv2D, input xd: [Int], output yd: [Int]) -> WinogradConvolution.Geometry? {
        guard !Kernels.hasWinograd, WinogradConvolution.available, arithmetic == .fp32,
              algorithm(for: c, input: xd) == .winograd else { return nil }
        let g = WinogradConvolution.Geometry(batch: xd[0], inChannels: xd[1], outChannels: yd[1], inHeight: xd[2], inWidth: xd[3],
                                             outHeight: yd[2], outWidth: yd[3], padTop: c.padding.top, padLeft: c.padding.left)
        // Under ~16 tiles of 4×4 (a 7×7 map at batch 1) the matmul's fixed cost outweighs the saving:
        // ResNet-10 at 28², batch 1, ran 0.88 ms a pass with Winograd there and 0.47 ms without.
        // Training transforms the weights twice a step (forward and data gradient), which the SIMD
        // transform makes cheap (6 ms of CPU for 512×512 channels, 5× less than before): the same
        // rule holds there. DetectNet_v2 at 96×160, batch 16 (the 512-channel maps are 6×10: 96
        // tiles), trained at 644 ms a step with it, 826 ms with ours only from 400 tiles.
        return WinogradConvolution.supports(g) && g.tiles >= Self.ownWinogradMinTiles ? g : nil
    }
    static let ownWinogradMinTiles = 16

    /// Plans our Winograd convolution: weights (plain [O, I, 3, 3]) transformed when the parameters
    /// change, scratch from the memory plan, output `y` (nChw8c, holding the addend when `ops.sum`).
    func lowerOwnWinograd(_ g: WinogradConvolution.Geometry, _ ops: WinogradConvolution.PostOps, x: RValue, weights w: RValue,
                          bias b: RValue?, y: RValue) throws -> RValue {
        precondition(w.md.isPlain && (b?.md.isPlain ?? true), "Winograd weights and bias are plain")
        let conv = try WinogradConvolution(g, postOps: ops)
        let (wm, bm) = (w.mem, b?.mem)
        prepSteps.append(.swift([wm]) { conv.setWeights(wm.floats) })
        let v = buffer(conv.scratchV), m = buffer(conv.scratchM)
        let (xm, ym) = (x.mem, y.mem)
        forwardSteps.append(.kernel(kind: "convolution", implementation: "winograd_4x3:tao_avx2", [xm, ym, v, m] + (bm.map { [$0] } ?? [])) {
            conv.run(src: xm.floats, dst: ym.floats, bias: bm?.floats, v: v, m: m)
        })
        ownWinogradConvolutions += 1
        return y
    }

    /// Training on our Winograd kernel: the forward pass; the data gradient as the same kernel over
    /// the output gradient (weights transposed and flipped, padding 2 − p); the weight gradient by
    /// the adjoint transforms (`WinogradConvolution.weightGradient`), or with a bias from oneDNN's
    /// backward-weights primitive.
    func lowerOwnWinogradTraining(_ g: WinogradConvolution.Geometry, x xin: RValue, weights w: RValue, weightDims: [Int],
                                  bias b: RValue?, window win: Window) throws -> RValue {
        let xd = [g.batch, g.inChannels, g.inHeight, g.inWidth], yd = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        let y = newValue(MemoryDesc(yd, .nChw8c), needsGrad: xin.needsGrad || w.needsGrad || (b?.needsGrad ?? false))
        _ = try lowerOwnWinograd(g, .init(), x: xin, weights: w, bias: b, y: y)
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            if xin.needsGrad {
                let back = WinogradConvolution.Geometry(batch: g.batch, inChannels: g.outChannels, outChannels: g.inChannels,
                                                        inHeight: g.outHeight, inWidth: g.outWidth, outHeight: g.inHeight,
                                                        outWidth: g.inWidth, padTop: 2 - g.padTop, padLeft: 2 - g.padLeft)
                let conv = try WinogradConvolution(back)
                let wm = w.mem
                self.prepSteps.append(.swift([wm]) { conv.setWeights(wm.floats, transposedAndFlipped: true) })
                let v = self.buffer(conv.scratchV), m = self.buffer(conv.scratchM)
                try self.contribute(to: [xin]) { t in
                    let dx = t[0]!
                    return [.kernel(kind: "convolution", implementation: "winograd_4x3:tao_avx2", [dy, dx, v, m]) {
                        conv.run(src: dy.floats, dst: dx.floats, bias: nil, v: v, m: m)
                    }]
                }
            }
            if w.needsGrad && b == nil {
                // Ours too: dU = Σ Vᵀ·dM over the tiles (oneDNN's batched matmul), then Gᵀ dU G.
                let conv = try WinogradConvolution(g)
                try conv.planWeightGradient()
                let v = self.buffer(conv.scratchV), m = self.buffer(conv.scratchM), du = self.buffer(conv.gradientScratch)
                let xm = xin.mem
                try self.contribute(to: [w]) { t in
                    try self.writeVia(t[0]!, MemoryDesc(weightDims)) { dw in
                        .kernel(kind: "convolution", implementation: "winograd_4x3_weights:tao_avx2", [xm, dy, dw, v, m, du]) {
                            conv.weightGradient(src: xm.floats, diffDst: dy.floats, diffWeights: dw.floats, v: v, m: m, du: du)
                        }
                    }
                }
            } else if w.needsGrad || (b?.needsGrad ?? false) {
                let hint = try Kernels.convForward(.training, src: MemoryDesc(xd, .nChw8c), weights: MemoryDesc(weightDims, .any),
                                                   bias: b?.md, dst: MemoryDesc(yd, .nChw8c), win)
                let bw = try Kernels.convBackwardWeights(src: MemoryDesc(xd, .any), diffWeights: MemoryDesc(weightDims, .any), diffBias: b?.md,
                                                         diffDst: MemoryDesc(yd, .any), win, hint: hint)
                try self.planWeightGradient(bw, x: xin.mem, dy: dy, w: w, b: b)
            }
        }
        return y
    }

    /// Backward steps of a weight (and bias) gradient primitive, converting its inputs as it wants them.
    func planWeightGradient(_ bw: PrimitiveDesc, x: Memory, dy: Memory, w: RValue, b: RValue?) throws {
        let src = try readAs(x, bw.md(.src))
        let dyIn = try readAs(dy, bw.md(.diffDst))
        try contribute(to: [w, b]) { t in
            try writeVia(t[0]!, bw.md(.diffWeights)) { dw in
                var a: [(Arg, Memory)] = [(.src, src), (.diffDst, dyIn), (.diffWeights, dw)]
                if let db = t[1] { a.append((.diffBias, db)) }
                return try step(bw, a)
            }
        }
    }

    /// oneDNN's view of a convolution's weights ([G, O/G, I/G, KH, KW] when grouped) and its window.
    func convGeometry(_ n: Node, _ c: Conv2D) -> (weightDims: [Int], window: Window) {
        let cin = dims(n.inputs[0])[1]
        let (o, i, kh, kw) = (c.outChannels, cin / c.groups, c.kernel[0], c.kernel[1])
        let wDims = c.groups > 1 ? [c.groups, o / c.groups, i, kh, kw] : [o, i, kh, kw]
        let win = Window(strides: c.stride, dilation: c.dilation.map { $0 - 1 },
                         padLeft: [c.padding.top, c.padding.left], padRight: [c.padding.bottom, c.padding.right])
        return (wDims, win)
    }

    func lowerConv(_ n: Node, _ c: Conv2D) throws -> RValue {
        let (wDims, win) = convGeometry(n, c)
        let w = param(paramIndex(n.inputs[1]), logicalDims: wDims)
        if let g = ownWinograd(c, input: dims(n.inputs[0]), output: dims(n.output)) {
            let xin = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0]), .nChw8c))
            let b = c.hasBias ? value(n.inputs[2]) : nil
            if mode == .inference {
                return try lowerOwnWinograd(g, .init(), x: xin, weights: w, bias: b, y: newValue(MemoryDesc(dims(n.output), .nChw8c), needsGrad: false))
            }
            return try lowerOwnWinogradTraining(g, x: xin, weights: w, weightDims: wDims, bias: b, window: win)
        }
        if let g = smallMap(c, input: dims(n.inputs[0]), output: dims(n.output)) {
            return try lowerSmallMapTraining(g, x: value(n.inputs[0]), weights: w, weightDims: wDims)
        }
        let alg = algorithm(for: c, input: dims(n.inputs[0]))
        let family = ConvFamily(
            forward: { [prop] in try (try? Kernels.convForward(prop, src: $0, weights: $1, bias: $2, dst: $3, win, algorithm: alg)) ?? Kernels.convForward(prop, src: $0, weights: $1, bias: $2, dst: $3, win) },
            backwardData: { try (try? Kernels.convBackwardData(diffSrc: $0, weights: $1, diffDst: $2, win, hint: $3, algorithm: alg)) ?? Kernels.convBackwardData(diffSrc: $0, weights: $1, diffDst: $2, win, hint: $3) },
            backwardWeights: { try (try? Kernels.convBackwardWeights(src: $0, diffWeights: $1, diffBias: $2, diffDst: $3, win, hint: $4, algorithm: alg)) ?? Kernels.convBackwardWeights(src: $0, diffWeights: $1, diffBias: $2, diffDst: $3, win, hint: $4) })
        let cin = dims(n.inputs[0])[1]
        return try lowerConvLike(n, family: family, weights: w, hasBias: c.hasBias, depthwise: c.groups == cin && c.outChannels == cin ? c : nil)
    }

    /// Training convolutions on maps of at most 4 pixels (a 2×2 map, and what feeds it) as one
    /// matrix product (`SmallMapConvolution`): dense, no bias, kernels larger than 1×1. Measured on
    /// ResNet-10's last stage on Fashion-MNIST (2×2 maps, 512 channels, batch 128, AVX2 EPYC), where
    /// oneDNN's convolutions ran at 12–24% of the processor's peak.
    func smallMap(_ c: Conv2D, input xd: [Int], output yd: [Int]) -> SmallMapConvolution.Geometry? {
        guard mode == .training, arithmetic == .fp32, c.groups == 1, !c.hasBias, c.dilation == [1, 1], c.kernel != [1, 1],
              xd[2] * xd[3] <= 4, yd[2] * yd[3] <= 4 else { return nil }
        return SmallMapConvolution.Geometry(batch: xd[0], inChannels: xd[1], outChannels: yd[1], inHeight: xd[2], inWidth: xd[3],
                                            outHeight: yd[2], outWidth: yd[3], kernelHeight: c.kernel[0], kernelWidth: c.kernel[1],
                                            strideHeight: c.stride[0], strideWidth: c.stride[1], padTop: c.padding.top, padLeft: c.padding.left)
    }

    func lowerSmallMapTraining(_ g: SmallMapConvolution.Geometry, x xin: RValue, weights w: RValue, weightDims: [Int]) throws -> RValue {
        precondition(w.md.isPlain, "small-map convolution weights are plain")
        let x = try ensure(xin, MemoryDesc([g.batch, g.inChannels, g.inHeight, g.inWidth]))
        let conv = try SmallMapConvolution(g)
        let wm = w.mem
        prepSteps.append(.swift([wm]) { conv.setWeights(wm.floats) })
        let y = newValue(MemoryDesc([g.batch, g.outChannels, g.outHeight, g.outWidth]), needsGrad: x.needsGrad || w.needsGrad)
        let (xm, ym) = (x.mem, y.mem)
        forwardSteps.append(.kernel(kind: "convolution", implementation: "small_map_matmul:tao", [xm, ym]) {
            conv.run(src: xm.floats, dst: ym.floats)
        })
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            if x.needsGrad {
                try self.contribute(to: [x]) { t in
                    let dx = t[0]!
                    return [.kernel(kind: "convolution", implementation: "small_map_matmul:tao", [dy, dx]) {
                        conv.dataGradient(diffDst: dy.floats, diffSrc: dx.floats)
                    }]
                }
            }
            if w.needsGrad {
                let scratch = self.buffer(conv.gradientScratch)
                try self.contribute(to: [w]) { t in
                    try self.writeVia(t[0]!, MemoryDesc(weightDims)) { dw in
                        .kernel(kind: "convolution", implementation: "small_map_matmul:tao", [xm, dy, dw, scratch]) {
                            conv.weightGradient(src: xm.floats, diffDst: dy.floats, diffWeights: dw.floats, scratch: scratch)
                        }
                    }
                }
            }
        }
        smallMapConvolutions += 1
        return y
    }

    func lowerConvTranspose(_ n: Node, _ c: ConvTranspose2D) throws -> RValue {
        if mode == .inference { return try lowerInferenceConvTranspose(n, c, nil) }
        let xd = dims(n.inputs[0])
        let (o, i, kh, kw) = (c.outChannels, xd[1], c.kernel[0], c.kernel[1])
        // The parameter is [I, O, KH, KW]; oneDNN wants logical [O, I, KH, KW]: same bytes, permuted strides.
        let w = param(paramIndex(n.inputs[1]), logicalDims: [o, i, kh, kw], strides: [kh * kw, o * kh * kw, kw, 1])
        // Output padding is extra rows/columns at the end: it reduces the right padding.
        if let sp = subPixel(n, c) {
            return try lowerSubPixelTraining(sp, x: value(n.inputs[0]), weights: w, bias: c.hasBias ? value(n.inputs[2]) : nil)
        }
        let win = Window(strides: c.stride, dilation: c.dilation.map { $0 - 1 },
                         padLeft: [c.padding.top, c.padding.left],
                         padRight: [c.padding.bottom - c.outputPadding[0], c.padding.right - c.outputPadding[1]])
        let family = ConvFamily(
            forward: { [prop] in try Kernels.deconvForward(prop, src: $0, weights: $1, bias: $2, dst: $3, win) },
            backwardData: { try Kernels.deconvBackwardData(diffSrc: $0, weights: $1, diffDst: $2, win, hint: $3) },
            backwardWeights: { try Kernels.deconvBackwardWeights(src: $0, diffWeights: $1, diffBias: $2, diffDst: $3, win, hint: $4) })
        return try lowerConvLike(n, family: family, weights: w, hasBias: c.hasBias)
    }

    private func lowerConvLike(_ n: Node, family: ConvFamily, weights w: RValue, hasBias: Bool, depthwise: Conv2D? = nil) throws -> RValue {
        let x = value(n.inputs[0])
        let b = hasBias ? value(n.inputs[2]) : nil
        let xd = dims(n.inputs[0]), yd = dims(n.output)
        let anyW = MemoryDesc(w.md.dims, .any, type: computeType)
        let pd = try family.forward(MemoryDesc(xd, .any, type: computeType), anyW, b?.md, MemoryDesc(yd, .any, type: activationType(n.output)))
        let xin = try ensure(x, pd.md(.src))
        let wf = try ensure(w, pd.md(.weights), differentiable: false)
        let y = newValue(pd.md(.dst), needsGrad: xin.needsGrad || w.needsGrad || (b?.needsGrad ?? false))
        var binds: [(Arg, Memory)] = [(.src, xin.mem), (.weights, wf.mem), (.dst, y.mem)]
        if let b { binds.append((.bias, b.mem)) }
        forwardSteps.append(try step(pd, binds))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            if xin.needsGrad {
                // bf16: the input gradient in bf16 (what the bf16 input's gradient buffer holds).
                let bd = try family.backwardData(MemoryDesc(xd, .any, type: computeType), anyW, MemoryDesc(yd, .any, type: computeType), pd)
                let wb = try self.ensure(w, bd.md(.weights), differentiable: false)
                let dyIn = try self.readAs(dy, bd.md(.diffDst))
                try self.contribute(to: [xin]) { t in
                    try self.writeVia(t[0]!, bd.md(.diffSrc)) { out in try self.step(bd, [(.diffDst, dyIn), (.weights, wb.mem), (.diffSrc, out)]) }
                }
            }
            if w.needsGrad || (b?.needsGrad ?? false) {
                // bf16: the input and output gradient in bf16, the weight gradient in fp32 for the master weights.
                let bw = try family.backwardWeights(MemoryDesc(xd, .any, type: computeType), MemoryDesc(w.md.dims, .any), b?.md,
                                                    MemoryDesc(yd, .any, type: computeType), pd)
                if let c = depthwise, bw.implementation.contains("gemm") {
                    try self.depthwiseBackwardWeights(c, x: xin.mem, dy: dy, xd: xd, yd: yd, w: w, b: b)
                    return
                }
                try self.planWeightGradient(bw, x: xin.mem, dy: dy, w: w, b: b)
            }
        }
        return y
    }

    /// Depthwise weight (and bias) gradients computed directly. oneDNN 2.6 has no JIT kernel for
    /// depthwise backward-weights on very small maps (it falls back to a per-group GEMM that took 84%
    /// of a MobileNetV2 training step at 28² input); there the direct sum is a few million
    /// multiply-adds.
    private func depthwiseBackwardWeights(_ c: Conv2D, x: Memory, dy: Memory, xd: [Int], yd: [Int], w: RValue, b: RValue?) throws {
        let src = try readAs(x, MemoryDesc(xd)), diff = try readAs(dy, MemoryDesc(yd))
        let (n, ch, h, wi) = (xd[0], xd[1], xd[2], xd[3]), (oh, ow) = (yd[2], yd[3])
        let (kh, kw) = (c.kernel[0], c.kernel[1]), (sh, sw) = (c.stride[0], c.stride[1])
        let (dh, dw) = (c.dilation[0], c.dilation[1]), (pt, pl) = (c.padding.top, c.padding.left)
        try contribute(to: [w, b]) { t in
            try writeVia(t[0]!, MemoryDesc(w.md.dims)) { wg in
                var mems = [src, diff, wg]
                if let db = t[1] { mems.append(db) }
                return .swift(mems) {
                    let (xp, gp, out) = (src.floats, diff.floats, wg.floats)
                    let bias = t[1]?.floats
                    for k in 0..<ch {
                        for i in 0..<kh { for j in 0..<kw {
                            var sum: Float = 0
                            for s in 0..<n {
                                let xb = xp + (s * ch + k) * h * wi, gb = gp + (s * ch + k) * oh * ow
                                for y in 0..<oh {
                                    let iy = y * sh - pt + i * dh
                                    guard iy >= 0 && iy < h else { continue }
                                    for xx in 0..<ow {
                                        let ix = xx * sw - pl + j * dw
                                        if ix >= 0 && ix < wi { sum += gb[y * ow + xx] * xb[iy * wi + ix] }
                                    }
                                }
                            }
                            out[(k * kh + i) * kw + j] = sum
                        } }
                        if let bias {
                            var sum: Float = 0
                            for s in 0..<n { for q in 0..<(oh * ow) { sum += gp[(s * ch + k) * oh * ow + q] } }
                            bias[k] = sum
                        }
                    }
                }
            }
        }
    }

    func lowerDense(_ n: Node, _ d: Dense) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0]), type: computeType))
        let w = value(n.inputs[1])
        let b = d.hasBias ? value(n.inputs[2]) : nil
        let anyW = MemoryDesc(w.md.dims, .any, type: computeType)
        let pd = try Kernels.innerProductForward(prop, src: x.md, weights: anyW, bias: b?.md, dst: MemoryDesc([batch, d.outFeatures]))
        let wf = try ensure(w, pd.md(.weights), differentiable: false)
        let y = newValue(pd.md(.dst), needsGrad: x.needsGrad || w.needsGrad || (b?.needsGrad ?? false))
        var binds: [(Arg, Memory)] = [(.src, x.mem), (.weights, wf.mem), (.dst, y.mem)]
        if let b { binds.append((.bias, b.mem)) }
        forwardSteps.append(try step(pd, binds))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            let dyIn = try self.readAs(dy, MemoryDesc(y.md.dims, type: self.computeType))
            if x.needsGrad {
                let bd = try Kernels.innerProductBackwardData(diffSrc: x.md, weights: anyW, diffDst: dyIn.desc, hint: pd)
                let wb = try self.ensure(w, bd.md(.weights), differentiable: false)
                try self.contribute(to: [x]) { t in [try self.step(bd, [(.diffDst, dyIn), (.weights, wb.mem), (.diffSrc, t[0]!)])] }
            }
            if w.needsGrad || (b?.needsGrad ?? false) {
                let bw = try Kernels.innerProductBackwardWeights(src: x.md, diffWeights: MemoryDesc(w.md.dims, .any), diffBias: b?.md, diffDst: dyIn.desc, hint: pd)
                try self.contribute(to: [w, b]) { t in
                    try self.writeVia(t[0]!, bw.md(.diffWeights)) { dw in
                        var a: [(Arg, Memory)] = [(.src, x.mem), (.diffDst, dyIn), (.diffWeights, dw)]
                        if let db = t[1] { a.append((.diffBias, db)) }
                        return try self.step(bw, a)
                    }
                }
            }
        }
        return y
    }
}

extension WinogradConvolution.PostOps {
    /// The fused tail of a convolution as our Winograd kernel's post-ops (ReLU and leaky ReLU), or
    /// nil when an activation is one it does not compute.
    init?(_ activation: Activation?, sum: Bool, _ postActivation: Activation?) {
        func relu(_ a: Activation?) -> WinogradConvolution.Activation? {
            switch a {
            case nil: return WinogradConvolution.Activation.none
            case .relu?: return .relu(slope: 0)
            case .leakyRelu(let s)?: return .relu(slope: s)
            default: return nil
            }
        }
        guard let pre = relu(activation), let post = relu(postActivation) else { return nil }
        self.init(activation: pre, sum: sum, postActivation: post)
    }
}
