import TaoGraph
import TaoKernels

// Strided transposed convolutions as one convolution and a pixel shuffle (`SubPixelDeconvolution`),
// in inference (`lowerInferenceConvTranspose`, with the batch norm folded) and in training.
extension Executor {
    /// The decomposition of `n`, where it applies.
    func subPixel(_ n: Node, _ c: ConvTranspose2D) -> SubPixelDeconvolution? {
        SubPixelDeconvolution(input: dims(n.inputs[0]), output: dims(n.output), kernel: c.kernel, stride: c.stride,
                              dilation: c.dilation, padTop: c.padding.top, padLeft: c.padding.left)
    }

    /// Plans the convolution (weights `convWeights` [phases·O, I, T, T] plain, bias optional) and the
    /// shuffle; returns the output, the convolution's primitive and the channel block of both
    /// outputs' layouts (16, 8 or 1: nChw16c, nChw8c, plain).
    ///
    /// Channels in blocks of 16 where the channels fill them and an AVX-512 kernel takes them: given
    /// "any" layout, oneDNN 2.6 picks its AVX2 kernel (nChw8c) for these 2×2 convolutions on AVX-512
    /// processors, at half the speed (UNet ResNet-18's four decoder convolutions at 320², batch 1:
    /// 27 ms against 52 ms, Xeon with AVX-512). Else the layout oneDNN picks where it is blocked by
    /// 8 or 16, or plain.
    func lowerSubPixel(_ sp: SubPixelDeconvolution, x: RValue, convWeights cw: RValue, convBias cb: RValue?,
                       attr: Attributes? = nil, needsGrad: Bool = false) throws -> (y: RValue, x: RValue, pd: PrimitiveDesc, window: Window, block: Int) {
        let win = Window(strides: [1, 1], padLeft: [sp.h.padBefore, sp.w.padBefore], padRight: [sp.h.padAfter, sp.w.padAfter])
        let (i, o) = (sp.inChannels, sp.outChannels)
        let xd = [sp.batch, i, x.md.dims[2], x.md.dims[3]], dstDims = sp.convOutputDims
        let wAny = MemoryDesc(sp.convWeightDims, .any, type: computeType)
        func conv(_ src: Layout, _ dst: Layout) throws -> PrimitiveDesc {
            try Kernels.convForward(prop, src: MemoryDesc(xd, src, type: computeType), weights: wAny, bias: cb?.md, dst: MemoryDesc(dstDims, dst), win, attr: attr)
        }
        let layouts: [Int: Layout] = [16: .nChw16c, 8: .nChw8c, 1: .plain]
        var pd = try conv(.any, .any)
        if i % 16 == 0 && o % 16 == 0, let p16 = try? conv(.nChw16c, .nChw16c), p16.implementation.contains("avx512") { pd = p16 }
        var block = [16, 8, 1].first { o % $0 == 0 && pd.md(.dst) == MemoryDesc(dstDims, layouts[$0]!) }
        if block == nil {
            block = o % 8 == 0 ? 8 : 1
            pd = try conv(.any, layouts[block!]!)
        }
        let xin = try ensure(x, pd.md(.src))
        let wf = try ensure(cw, pd.md(.weights), differentiable: false)
        let z = buffer(pd.md(.dst))
        var binds: [(Arg, Memory)] = [(.src, xin.mem), (.weights, wf.mem), (.dst, z)]
        if let cb { binds.append((.bias, cb.mem)) }
        forwardSteps.append(try step(pd, binds))
        let y = newValue(MemoryDesc(sp.outputDims, layouts[block!]!), needsGrad: needsGrad)
        forwardSteps.append(.kernel(kind: "deconvolution", implementation: "sub_pixel_shuffle:tao", [z, y.mem]) { [block] in
            sp.gather(z.floats, y.mem.floats, block: block!)
        })
        return (y, xin, pd, win, block!)
    }

    /// Training: the forward pass as in inference (weights permuted from the parameter when it
    /// changes); backward, the output gradient scattered to the convolution's output, then the
    /// convolution's data gradient and its weight (and bias) gradient permuted back (a bias's
    /// gradient summed over the phases). Measured on UNet ResNet-18 at 320², batch 4 (Xeon with
    /// AVX-512): oneDNN's deconvolutions took 448 of 1,508 ms a step.
    func lowerSubPixelTraining(_ sp: SubPixelDeconvolution, x: RValue, weights w: RValue, bias b: RValue?) throws -> RValue {
        let o = sp.outChannels, phases = sp.phases
        let cw = constantValue(MemoryDesc(sp.convWeightDims))
        let cb = b.map { _ in constantValue(MemoryDesc([phases * o])) }
        let (wm, bm) = (w.mem, b?.mem)
        prepSteps.append(.swift([wm, cw.mem] + [bm, cb?.mem].compactMap { $0 }) {
            sp.convWeights(from: wm.floats, scale: nil, into: cw.mem.floats)
            if let bm, let cb { sp.convBias(from: bm.floats, into: cb.mem.floats) }
        })
        let (y, xin, pd, win, block) = try lowerSubPixel(sp, x: x, convWeights: cw, convBias: cb,
                                                    needsGrad: x.needsGrad || w.needsGrad || (b?.needsGrad ?? false))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            let dz = self.buffer(pd.md(.dst))
            self.backwardSteps.append(.kernel(kind: "deconvolution", implementation: "sub_pixel_shuffle:tao", [dy, dz]) {
                sp.scatter(dy.floats, dz.floats, block: block)
            })
            let (xAny, wAny, zAny) = (MemoryDesc(xin.md.dims, .any), MemoryDesc(sp.convWeightDims, .any), MemoryDesc(sp.convOutputDims, .any))
            if xin.needsGrad {
                let bd = try Kernels.convBackwardData(diffSrc: xAny, weights: wAny, diffDst: zAny, win, hint: pd)
                let wb = try self.ensure(cw, bd.md(.weights), differentiable: false)
                let dzIn = try self.readAs(dz, bd.md(.diffDst))
                try self.contribute(to: [xin]) { t in
                    try self.writeVia(t[0]!, bd.md(.diffSrc)) { out in try self.step(bd, [(.diffDst, dzIn), (.weights, wb.mem), (.diffSrc, out)]) }
                }
            }
            if w.needsGrad || (b?.needsGrad ?? false) {
                let bw = try Kernels.convBackwardWeights(src: xAny, diffWeights: wAny, diffBias: cb?.md, diffDst: zAny, win, hint: pd)
                let src = try self.readAs(xin.mem, bw.md(.src)), dzIn = try self.readAs(dz, bw.md(.diffDst))
                let dw = self.buffer(MemoryDesc(sp.convWeightDims)), db = cb.map { self.buffer($0.md) }
                try self.contribute(to: [w, b]) { t in
                    var steps = try self.writeVia(dw, bw.md(.diffWeights)) { out in
                        var a: [(Arg, Memory)] = [(.src, src), (.diffDst, dzIn), (.diffWeights, out)]
                        if let db { a.append((.diffBias, db)) }
                        return try self.step(bw, a)
                    }
                    let (gw, gb) = (t[0]!, t[1])
                    steps.append(.swift([dw, gw] + [db, gb].compactMap { $0 }) {
                        sp.deconvWeights(from: dw.floats, into: gw.floats)
                        if let db, let gb {
                            for k in 0..<o { gb.floats[k] = (0..<phases).reduce(0) { $0 + db.floats[$1 * o + k] } }
                        }
                    })
                    return steps
                }
            }
        }
        return y
    }
}
