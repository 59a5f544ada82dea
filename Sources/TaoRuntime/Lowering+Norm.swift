import TaoGraph
import TaoKernels

// Batch normalization: batch statistics in training (running statistics updated after each
// forward), running statistics in inference and for frozen layers.
extension Executor {
    func lowerBatchNorm(_ n: Node, _ bn: BatchNorm) throws -> RValue {
        let x = value(n.inputs[0])
        let scale = value(n.inputs[1]), shift = value(n.inputs[2])
        let runMean = value(n.inputs[3]), runVar = value(n.inputs[4])
        let batchStats = mode == .training && !frozenBatchNorm.contains(n.name)
        var flags: Kernels.BNFlags = [.scale, .shift]
        if !batchStats { flags.insert(.globalStats) }
        let pd = try Kernels.batchNormForward(batchStats ? .training : .inference, data: x.md, epsilon: bn.epsilon, flags: flags)
        let c = runMean.md.dims[0]
        let mean = batchStats ? Memory(MemoryDesc([c])) : runMean.mem
        let variance = batchStats ? Memory(MemoryDesc([c])) : runVar.mem
        let y = newValue(x.md, needsGrad: x.needsGrad || scale.needsGrad || shift.needsGrad)
        forwardSteps.append(try step(pd, [(.src, x.mem), (.scale, scale.mem), (.shift, shift.mem),
                                          (.mean, mean), (.variance, variance), (.dst, y.mem)]))
        if batchStats {
            let m = bn.momentum
            let count = Float(x.md.dims.reduce(1, *) / c)
            let unbias = count > 1 ? count / (count - 1) : 1
            let (rm, rv, bm, bv) = (runMean.mem.floats, runVar.mem.floats, mean.floats, variance.floats)
            forwardSteps.append(.swift {
                for k in 0..<c {
                    rm[k] = m * rm[k] + (1 - m) * bm[k]
                    rv[k] = m * rv[k] + (1 - m) * bv[k] * unbias
                }
            })
        }
        onBackward(y) { [unowned self] in
            let bd = try Kernels.batchNormBackward(diffData: x.md, data: x.md, epsilon: bn.epsilon, flags: flags, hint: pd)
            try self.contribute(to: [x, scale, shift]) { t in
                [try self.step(bd, [(.src, x.mem), (.mean, mean), (.variance, variance), (.diffDst, self.grad(y)),
                                    (.scale, scale.mem), (.shift, shift.mem), (.diffSrc, t[0]!), (.diffScale, t[1]!), (.diffShift, t[2]!)])]
            }
        }
        return y
    }
}
