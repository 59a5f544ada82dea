import TaoGraph
import TaoKernels

// Batch normalization: batch statistics in training (running statistics updated after each
// forward), running statistics in inference and for frozen layers.
extension Executor {
    func lowerBatchNorm(_ n: Node, _ bn: BatchNorm, fuseReLU: Bool) throws -> RValue {
        let x = value(n.inputs[0])
        let scale = value(n.inputs[1]), shift = value(n.inputs[2])
        let runMean = value(n.inputs[3]), runVar = value(n.inputs[4])
        let batchStats = mode == .training && !frozenBatchNorm.contains(n.name)
        var flags: Kernels.BNFlags = [.scale, .shift]
        if !batchStats { flags.insert(.globalStats) }
        if fuseReLU { flags.insert(.fuseReLU) }
        let pd = try Kernels.batchNormForward(batchStats ? .training : .inference, data: x.md, epsilon: bn.epsilon, flags: flags)
        let c = runMean.md.dims[0]
        let mean = batchStats ? buffer(MemoryDesc([c])) : runMean.mem
        let variance = batchStats ? buffer(MemoryDesc([c])) : runVar.mem
        let y = newValue(x.md, needsGrad: x.needsGrad || scale.needsGrad || shift.needsGrad)
        // With a fused ReLU, training keeps a workspace (where the output was clipped) for backward.
        let wsDesc = pd.md(.workspace)
        let ws = wsDesc.isZero ? nil : buffer(wsDesc)
        var binds: [(Arg, Memory)] = [(.src, x.mem), (.scale, scale.mem), (.shift, shift.mem), (.mean, mean), (.variance, variance), (.dst, y.mem)]
        if let ws { binds.append((.workspace, ws)) }
        forwardSteps.append(try step(pd, binds))
        if batchStats {
            let m = bn.momentum
            let count = Float(x.md.dims.reduce(1, *) / c)
            let unbias = count > 1 ? count / (count - 1) : 1
            forwardSteps.append(.swift([runMean.mem, runVar.mem, mean, variance]) {
                let (rm, rv, bm, bv) = (runMean.mem.floats, runVar.mem.floats, mean.floats, variance.floats)
                for k in 0..<c {
                    rm[k] = m * rm[k] + (1 - m) * bm[k]
                    rv[k] = m * rv[k] + (1 - m) * bv[k] * unbias
                }
            })
        }
        onBackward(y) { [unowned self] in
            let bd = try Kernels.batchNormBackward(diffData: x.md, data: x.md, epsilon: bn.epsilon, flags: flags, hint: pd)
            try self.contribute(to: [x, scale, shift]) { t in
                var a: [(Arg, Memory)] = [(.src, x.mem), (.mean, mean), (.variance, variance), (.diffDst, self.grad(y)),
                                          (.scale, scale.mem), (.shift, shift.mem), (.diffSrc, t[0]!), (.diffScale, t[1]!), (.diffShift, t[2]!)]
                if let ws { a.append((.workspace, ws)) }
                return [try self.step(bd, a)]
            }
        }
        return y
    }
}
