import Foundation
import TaoGraph
import TaoKernels

extension Activation {
    /// The oneDNN algorithm and its alpha/beta for this activation.
    var eltwise: (EltwiseAlg, Float, Float) {
        switch self {
        case .relu: (.relu, 0, 0)
        case .relu6: (.clip, 0, 6)
        case .leakyRelu(let a): (.relu, a, 0)
        case .elu(let a): (.elu, a, 0)
        case .sigmoid: (.logistic, 0, 0)
        case .tanh: (.tanh, 0, 0)
        case .swish: (.swish, 1, 0)
        case .hardSwish: (.hardswish, 0, 0)
        case .mish: (.mish, 0, 0)
        case .linear(let a, let b): (.linear, a, b)
        case .clip(let lo, let hi): (.clip, lo, hi)
        case .abs: (.abs, 0, 0)
        case .sqrt: (.sqrt, 0, 0)
        case .exp: (.exp, 0, 0)
        case .log: (.log, 0, 0)
        case .softplus: (.softRelu, 0, 0)
        case .pow(let scale, let exponent): (.pow, scale, exponent)
        case .gelu: (.geluErf, 0, 0)
        case .erf: (.linear, 1, 0)   // never used: `lowerActivation` runs erf by a loop
        }
    }
}

// Activations, element-wise add/multiply (with broadcasting of size-1 axes), dropout.
extension Executor {
    func lowerActivation(_ n: Node, _ a: Activation) throws -> RValue {
        if a == .erf { return try lowerErf(n) }
        let x = value(n.inputs[0])
        let (alg, alpha, beta) = a.eltwise
        let pd = try Kernels.eltwiseForward(prop, alg, data: x.md, alpha: alpha, beta: beta)
        let y = newValue(x.md, needsGrad: x.needsGrad)
        forwardSteps.append(try step(pd, [(.src, x.mem), (.dst, y.mem)]))
        onBackward(y) { [unowned self] in
            let bd = try Kernels.eltwiseBackward(alg, diffData: x.md, data: x.md, alpha: alpha, beta: beta, hint: pd)
            try self.contribute(to: [x]) { t in [try self.step(bd, [(.src, x.mem), (.diffDst, self.grad(y)), (.diffSrc, t[0]!)])] }
        }
        return y
    }

    /// A comparison by oneDNN's binary primitive (1 or 0 in f32); no gradient.
    func lowerCompare(_ n: Node, _ c: Comparison) throws -> RValue {
        let a = value(n.inputs[0])
        let broadcast = dims(n.inputs[1]) != a.md.dims
        let b = broadcast ? value(n.inputs[1]) : try ensure(value(n.inputs[1]), a.md)
        let alg: Kernels.BinaryAlg = switch c {
        case .equal: .eq
        case .less: .lt
        case .greater: .gt
        case .lessOrEqual: .le
        case .greaterOrEqual: .ge
        }
        let pd = try Kernels.binary(alg, src0: a.md, src1: b.md, dst: a.md)
        let y = newValue(a.md, needsGrad: false)
        forwardSteps.append(try step(pd, [(.src, a.mem), (.src1, b.mem), (.dst, y.mem)]))
        return y
    }

    /// erf elementwise over the plain layout; backward dy · 2/√π · e^(−x²).
    func lowerErf(_ n: Node) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0])))
        let y = newValue(x.md, needsGrad: x.needsGrad)
        let count = dims(n.inputs[0]).reduce(1, *)
        forwardSteps.append(.swift([x.mem, y.mem]) {
            let (src, dst) = (x.mem.floats, y.mem.floats)
            forEachSlice(of: count) { r in for i in r { dst[i] = Foundation.erf(src[i]) } }
        })
        onBackward(y) { [unowned self] in
            try self.contribute(to: [x]) { t in
                let target = t[0]!, g = self.grad(y)
                return [.swift([target, g, x.mem]) {
                    let (dx, dy, src) = (target.floats, g.floats, x.mem.floats)
                    let c = 2 / Float.pi.squareRoot()
                    forEachSlice(of: count) { r in for i in r { dx[i] = dy[i] * c * Foundation.exp(-src[i] * src[i]) } }
                }]
            }
        }
        return y
    }

    func lowerBinary(_ n: Node, _ alg: Kernels.BinaryAlg) throws -> RValue {
        let a = value(n.inputs[0])
        let bd = dims(n.inputs[1])
        let broadcast = bd != a.md.dims
        // Same shapes share one layout; a broadcast operand keeps its own.
        let b = broadcast ? value(n.inputs[1]) : try ensure(value(n.inputs[1]), a.md)
        let pd = try Kernels.binary(alg, src0: a.md, src1: b.md, dst: a.md)
        let y = newValue(a.md, needsGrad: a.needsGrad || b.needsGrad)
        forwardSteps.append(try step(pd, [(.src, a.mem), (.src1, b.mem), (.dst, y.mem)]))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            switch alg {
            case .add:
                // d/da = dy; d/db = dy summed over broadcast axes.
                try self.contribute(to: [a]) { t in [try self.step(Kernels.reorder(from: a.md, to: a.md), [(.src, dy), (.dst, t[0]!)])] }
                try self.contribute(to: [b]) { t in
                    broadcast ? [try self.step(Kernels.reduceSum(src: a.md, dst: b.md), [(.src, dy), (.dst, t[0]!)])]
                              : [try self.step(Kernels.reorder(from: a.md, to: b.md), [(.src, dy), (.dst, t[0]!)])]
                }
            case .mul:
                if a.needsGrad {
                    let m = try Kernels.binary(.mul, src0: a.md, src1: b.md, dst: a.md)
                    try self.contribute(to: [a]) { t in [try self.step(m, [(.src, dy), (.src1, b.mem), (.dst, t[0]!)])] }
                }
                if b.needsGrad {
                    let m = try Kernels.binary(.mul, src0: a.md, src1: a.md, dst: a.md)
                    let prod = self.buffer(a.md)
                    try self.contribute(to: [b]) { t in
                        [try self.step(m, [(.src, dy), (.src1, a.mem), (.dst, broadcast ? prod : t[0]!)])]
                            + (broadcast ? [try self.step(Kernels.reduceSum(src: a.md, dst: b.md), [(.src, prod), (.dst, t[0]!)])] : [])
                    }
                }
            case .eq, .lt, .gt, .le, .ge:
                break   // comparisons are lowered by `lowerCompare`, without gradients
            }
        }
        return y
    }

    func lowerDropout(_ n: Node, rate: Float) throws -> RValue {
        let x = value(n.inputs[0])
        guard mode == .training, rate > 0 else { return x }
        let y = newValue(x.md, needsGrad: x.needsGrad)
        let count = x.md.byteCount / 4
        let mask = buffer(x.md)
        let keep = 1 - rate, scale = 1 / (1 - rate)
        forwardSteps.append(.swift([x.mem, y.mem, mask]) { [unowned self] in
            let (xp, yp, mp) = (x.mem.floats, y.mem.floats, mask.floats)
            for i in 0..<count {
                let m: Float = self.rng.nextFloat() < keep ? scale : 0
                mp[i] = m
                yp[i] = xp[i] * m
            }
        })
        onBackward(y) { [unowned self] in
            let m = try Kernels.binary(.mul, src0: x.md, src1: x.md, dst: x.md)
            try self.contribute(to: [x]) { t in [try self.step(m, [(.src, self.grad(y)), (.src1, mask), (.dst, t[0]!)])] }
        }
        return y
    }
}
