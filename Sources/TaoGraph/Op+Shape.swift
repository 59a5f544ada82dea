import TaoTensor

/// Why an op cannot accept its inputs; `Graph` wraps it with the node's name.
public struct ShapeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

private func outSize(_ n: Int, kernel k: Int, stride s: Int, dilation d: Int, padBefore a: Int, padAfter b: Int) -> Int {
    let effective = (k - 1) * d + 1
    return (n + a + b - effective) / s + 1
}

extension Op {
    /// The per-sample output shape for per-sample activation shapes and full parameter shapes.
    public func outputShape(_ inputs: [Shape]) throws(ShapeError) -> Shape {
        let (lo, hi) = arity
        guard inputs.count >= lo && inputs.count <= hi else {
            throw ShapeError("\(kind) takes \(lo == hi ? "\(lo)" : "\(lo)…") inputs, got \(inputs.count)")
        }
        let x = inputs[0]
        switch self {
        case .conv2d(let c):
            guard x.rank == 3 else { throw ShapeError("conv2d input must be [C,H,W], got \(x)") }
            guard c.groups >= 1, x[0] % c.groups == 0, c.outChannels % c.groups == 0 else {
                throw ShapeError("conv2d groups \(c.groups) must divide input channels \(x[0]) and output channels \(c.outChannels)")
            }
            let w = inputs[1]
            let expected: Shape = [c.outChannels, x[0] / c.groups, c.kernel[0], c.kernel[1]]
            guard w == expected else {
                throw ShapeError("conv2d weight shape \(w) does not fit input \(x): expected \(expected)")
            }
            if c.hasBias, inputs[2] != [c.outChannels] {
                throw ShapeError("conv2d bias shape \(inputs[2]) must be [\(c.outChannels)]")
            }
            let h = outSize(x[1], kernel: c.kernel[0], stride: c.stride[0], dilation: c.dilation[0], padBefore: c.padding.top, padAfter: c.padding.bottom)
            let wd = outSize(x[2], kernel: c.kernel[1], stride: c.stride[1], dilation: c.dilation[1], padBefore: c.padding.left, padAfter: c.padding.right)
            guard h > 0, wd > 0 else { throw ShapeError("conv2d kernel \(c.kernel) does not fit input \(x) with padding \(c.padding)") }
            return [c.outChannels, h, wd]
        case .convTranspose2d(let c):
            guard x.rank == 3 else { throw ShapeError("conv_transpose2d input must be [C,H,W], got \(x)") }
            let expected: Shape = [x[0], c.outChannels, c.kernel[0], c.kernel[1]]
            guard inputs[1] == expected else {
                throw ShapeError("conv_transpose2d weight shape \(inputs[1]) does not fit input \(x): expected \(expected)")
            }
            if c.hasBias, inputs[2] != [c.outChannels] {
                throw ShapeError("conv_transpose2d bias shape \(inputs[2]) must be [\(c.outChannels)]")
            }
            let h = (x[1] - 1) * c.stride[0] - c.padding.top - c.padding.bottom + (c.kernel[0] - 1) * c.dilation[0] + 1 + c.outputPadding[0]
            let w = (x[2] - 1) * c.stride[1] - c.padding.left - c.padding.right + (c.kernel[1] - 1) * c.dilation[1] + 1 + c.outputPadding[1]
            guard h > 0, w > 0 else { throw ShapeError("conv_transpose2d output would be empty for input \(x)") }
            return [c.outChannels, h, w]
        case .batchNorm:
            guard x.rank == 3 || x.rank == 1 else { throw ShapeError("batch_norm input must be [C,H,W] or [C], got \(x)") }
            for (i, s) in inputs.dropFirst().enumerated() where s != [x[0]] {
                throw ShapeError("batch_norm parameter \(i + 1) has shape \(s), expected [\(x[0])] for input \(x)")
            }
            return x
        case .activation, .dropout:
            return x
        case .resize(let r):
            guard x.rank == 3, r.size.count == 2, r.size.allSatisfy({ $0 > 0 }) else { throw ShapeError("resize takes [C,H,W] to a positive size, got \(x) to \(r.size)") }
            return [x[0], r.size[0], r.size[1]]
        case .softmax, .logSoftmax:
            guard x.rank >= 1 else { throw ShapeError("\(kind) needs a per-sample axis, got \(x)") }
            return x
        case .pool2d(let p):
            guard x.rank == 3 else { throw ShapeError("pool input must be [C,H,W], got \(x)") }
            let h = outSize(x[1], kernel: p.kernel[0], stride: p.stride[0], dilation: 1, padBefore: p.padding.top, padAfter: p.padding.bottom)
            let w = outSize(x[2], kernel: p.kernel[1], stride: p.stride[1], dilation: 1, padBefore: p.padding.left, padAfter: p.padding.right)
            guard h > 0, w > 0 else { throw ShapeError("pool kernel \(p.kernel) does not fit input \(x)") }
            return [x[0], h, w]
        case .globalAveragePool:
            guard x.rank == 3 else { throw ShapeError("global_avg_pool input must be [C,H,W], got \(x)") }
            return [x[0]]
        case .dense(let d):
            guard x.rank == 1 else { throw ShapeError("dense input must be flat [F], got \(x); add a flatten") }
            guard inputs[1] == [d.outFeatures, x[0]] else {
                throw ShapeError("dense weight shape \(inputs[1]) does not fit input \(x): expected [\(d.outFeatures),\(x[0])]")
            }
            if d.hasBias, inputs[2] != [d.outFeatures] {
                throw ShapeError("dense bias shape \(inputs[2]) must be [\(d.outFeatures)]")
            }
            return [d.outFeatures]
        case .add, .mul, .compare:
            let y = inputs[1]
            if x == y { return x }
            // Broadcasting: the second input may be [C,1,1] (squeeze-excite) against [C,H,W].
            if y.rank == x.rank, zip(x.dims, y.dims).allSatisfy({ $0 == $1 || $1 == 1 }) { return x }
            throw ShapeError("\(kind) inputs \(x) and \(y) are not compatible (the second may only broadcast by size-1 axes)")
        case .concat(let axis):
            let a = axis - 1
            guard a >= 0, a < x.rank else { throw ShapeError("concat axis \(axis) is out of range for \(x)") }
            var total = 0
            for s in inputs {
                guard s.rank == x.rank, (0..<x.rank).allSatisfy({ $0 == a || s[$0] == x[$0] }) else {
                    throw ShapeError("concat inputs \(x) and \(s) differ outside axis \(axis)")
                }
                total += s[a]
            }
            var out = x
            out[a] = total
            return out
        case .slice(let s):
            let a = s.axis - 1
            guard a >= 0, a < x.rank else { throw ShapeError("slice axis \(s.axis) is out of range for \(x)") }
            guard s.start >= 0, s.end <= x[a], s.start < s.end, s.step >= 1 else {
                throw ShapeError("slice \(s.start)..<\(s.end) step \(s.step) is out of range for axis \(s.axis) of \(x)")
            }
            var out = x
            out[a] = s.count
            return out
        case .reshape(let target):
            guard target.count == x.count else { throw ShapeError("reshape \(x) to \(target): element counts \(x.count) and \(target.count) differ") }
            return target
        case .flatten:
            return [x.count]
        case .pad2d(let p):
            guard x.rank == 3 else { throw ShapeError("pad2d input must be [C,H,W], got \(x)") }
            guard min(p.top, p.left, p.bottom, p.right) >= 0 else { throw ShapeError("pad2d padding \(p) must be non-negative") }
            return [x[0], x[1] + p.top + p.bottom, x[2] + p.left + p.right]
        case .upsample(let u):
            guard x.rank == 3 else { throw ShapeError("upsample input must be [C,H,W], got \(x)") }
            return [x[0], x[1] * u.scale[0], x[2] * u.scale[1]]
        case .transpose(let perm):
            guard perm.count == x.rank + 1, perm.first == 0, perm.sorted() == Array(0...x.rank) else {
                throw ShapeError("transpose \(perm) is not a permutation of the axes of [N] + \(x) keeping the batch axis first")
            }
            return Shape(perm.dropFirst().map { x[$0 - 1] })
        }
    }

    /// Multiply-accumulates per sample, for FLOP reports (convolutions and dense layers only).
    public func macs(inputs: [Shape], output: Shape) -> Int {
        switch self {
        case .conv2d(let c):
            return output.count * (inputs[0][0] / c.groups) * c.kernel[0] * c.kernel[1]
        case .convTranspose2d(let c):
            return inputs[0].count * c.outChannels * c.kernel[0] * c.kernel[1]
        case .dense(let d):
            return inputs[0][0] * d.outFeatures
        default:
            return 0
        }
    }
}
