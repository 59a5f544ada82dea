import TaoGraph
import TaoKernels

// Convolution, transposed convolution and dense layers: oneDNN picks blocked layouts for
// activations and weights ("any"); weights are reordered from the plain parameter store only
// when they change, and weight gradients are reordered back to plain for the optimizer.
extension Executor {
    func lowerConv(_ n: Node, _ c: Conv2D) throws -> RValue {
        let x = value(n.inputs[0])
        let xd = dims(n.inputs[0]), yd = dims(n.output)
        let (o, i, kh, kw) = (c.outChannels, xd[1] / c.groups, c.kernel[0], c.kernel[1])
        let wDims = c.groups > 1 ? [c.groups, o / c.groups, i, kh, kw] : [o, i, kh, kw]
        let w = param(paramIndex(n.inputs[1]), logicalDims: wDims)
        let b = c.hasBias ? value(n.inputs[2]) : nil
        let win = Window(strides: c.stride, dilation: c.dilation.map { $0 - 1 },
                         padLeft: [c.padding.top, c.padding.left], padRight: [c.padding.bottom, c.padding.right])
        let pd = try Kernels.convForward(prop, src: MemoryDesc(xd, .any), weights: MemoryDesc(wDims, .any), bias: b?.md,
                                         dst: MemoryDesc(yd, .any), win)
        let xin = try ensure(x, pd.md(.src))
        let wb = try ensure(w, pd.md(.weights))
        let y = newValue(pd.md(.dst), needsGrad: xin.needsGrad || wb.needsGrad || (b?.needsGrad ?? false))
        var binds: [(Arg, Memory)] = [(.src, xin.mem), (.weights, wb.mem), (.dst, y.mem)]
        if let b { binds.append((.bias, b.mem)) }
        forwardSteps.append(try step(pd, binds))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            if xin.needsGrad {
                let bd = try Kernels.convBackwardData(diffSrc: xin.md, weights: wb.md, diffDst: y.md, win, hint: pd)
                try self.contribute(to: [xin]) { t in [try self.step(bd, [(.diffDst, dy), (.weights, wb.mem), (.diffSrc, t[0]!)])] }
            }
            if wb.needsGrad || (b?.needsGrad ?? false) {
                let bw = try Kernels.convBackwardWeights(src: xin.md, diffWeights: wb.md, diffBias: b?.md, diffDst: y.md, win, hint: pd)
                try self.contribute(to: [wb, b]) { t in
                    var a: [(Arg, Memory)] = [(.src, xin.mem), (.diffDst, dy), (.diffWeights, t[0]!)]
                    if let db = t[1] { a.append((.diffBias, db)) }
                    return [try self.step(bw, a)]
                }
            }
        }
        return y
    }

    func lowerConvTranspose(_ n: Node, _ c: ConvTranspose2D) throws -> RValue {
        let x = value(n.inputs[0])
        let xd = dims(n.inputs[0]), yd = dims(n.output)
        let (o, i, kh, kw) = (c.outChannels, xd[1], c.kernel[0], c.kernel[1])
        // The parameter is [I, O, KH, KW]; oneDNN wants logical [O, I, KH, KW]: same bytes, permuted strides.
        let w = param(paramIndex(n.inputs[1]), logicalDims: [o, i, kh, kw], strides: [kh * kw, o * kh * kw, kw, 1])
        let b = c.hasBias ? value(n.inputs[2]) : nil
        // Output padding is extra rows/columns at the end: fold it into the right padding.
        let win = Window(strides: c.stride, dilation: c.dilation.map { $0 - 1 },
                         padLeft: [c.padding.top, c.padding.left],
                         padRight: [c.padding.bottom - c.outputPadding[0], c.padding.right - c.outputPadding[1]])
        let pd = try Kernels.deconvForward(prop, src: MemoryDesc(xd, .any), weights: MemoryDesc([o, i, kh, kw], .any), bias: b?.md,
                                           dst: MemoryDesc(yd, .any), win)
        let xin = try ensure(x, pd.md(.src))
        let wb = try ensure(w, pd.md(.weights))
        let y = newValue(pd.md(.dst), needsGrad: xin.needsGrad || wb.needsGrad || (b?.needsGrad ?? false))
        var binds: [(Arg, Memory)] = [(.src, xin.mem), (.weights, wb.mem), (.dst, y.mem)]
        if let b { binds.append((.bias, b.mem)) }
        forwardSteps.append(try step(pd, binds))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            if xin.needsGrad {
                let bd = try Kernels.deconvBackwardData(diffSrc: xin.md, weights: wb.md, diffDst: y.md, win, hint: pd)
                try self.contribute(to: [xin]) { t in [try self.step(bd, [(.diffDst, dy), (.weights, wb.mem), (.diffSrc, t[0]!)])] }
            }
            if wb.needsGrad || (b?.needsGrad ?? false) {
                let bw = try Kernels.deconvBackwardWeights(src: xin.md, diffWeights: wb.md, diffBias: b?.md, diffDst: y.md, win, hint: pd)
                try self.contribute(to: [wb, b]) { t in
                    var a: [(Arg, Memory)] = [(.src, xin.mem), (.diffDst, dy), (.diffWeights, t[0]!)]
                    if let db = t[1] { a.append((.diffBias, db)) }
                    return [try self.step(bw, a)]
                }
            }
        }
        return y
    }

    func lowerDense(_ n: Node, _ d: Dense) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0])))
        let w = value(n.inputs[1])
        let b = d.hasBias ? value(n.inputs[2]) : nil
        let xd = dims(n.inputs[0])
        let pd = try Kernels.innerProductForward(prop, src: x.md, weights: MemoryDesc([d.outFeatures, xd[1]], .any), bias: b?.md,
                                                 dst: MemoryDesc([batch, d.outFeatures]))
        let wb = try ensure(w, pd.md(.weights))
        let y = newValue(pd.md(.dst), needsGrad: x.needsGrad || wb.needsGrad || (b?.needsGrad ?? false))
        var binds: [(Arg, Memory)] = [(.src, x.mem), (.weights, wb.mem), (.dst, y.mem)]
        if let b { binds.append((.bias, b.mem)) }
        forwardSteps.append(try step(pd, binds))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            if x.needsGrad {
                let bd = try Kernels.innerProductBackwardData(diffSrc: x.md, weights: wb.md, diffDst: y.md, hint: pd)
                try self.contribute(to: [x]) { t in [try self.step(bd, [(.diffDst, dy), (.weights, wb.mem), (.diffSrc, t[0]!)])] }
            }
            if wb.needsGrad || (b?.needsGrad ?? false) {
                let bw = try Kernels.innerProductBackwardWeights(src: x.md, diffWeights: wb.md, diffBias: b?.md, diffDst: y.md, hint: pd)
                try self.contribute(to: [wb, b]) { t in
                    var a: [(Arg, Memory)] = [(.src, x.mem), (.diffDst, dy), (.diffWeights, t[0]!)]
                    if let db = t[1] { a.append((.diffBias, db)) }
                    return [try self.step(bw, a)]
                }
            }
        }
        return y
    }
}
