import TaoGraph
import TaoKernels

extension Executor {
    /// Plans one node: its forward steps now, its VJP rule for the backward pass.
    func lower(_ n: Node) throws -> RValue {
        switch n.op {
        case .conv2d(let c): return try lowerConv(n, c)
        case .convTranspose2d(let c): return try lowerConvTranspose(n, c)
        case .dense(let d): return try lowerDense(n, d)
        case .batchNorm(let b): return try lowerBatchNorm(n, b, fuseReLU: false)
        case .activation(let a): return try lowerActivation(n, a)
        case .pool2d(let p): return try lowerPool(n, p)
        case .globalAveragePool: return try lowerGlobalAveragePool(n)
        case .add: return try lowerBinary(n, .add)
        case .compare(let c): return try lowerCompare(n, c)
        case .mul: return try lowerBinary(n, .mul)
        case .concat(let axis): return try lowerConcat(n, axis: axis)
        case .slice(let s): return try lowerSlice(n, s)
        case .reshape, .flatten: return try lowerReshape(n)
        case .pad2d(let p): return try lowerPad(n, p)
        case .upsample(let u): return try lowerUpsample(n, u)
        case .resize(let r): return try lowerResize(n, r)
        case .dropout(let rate): return try lowerDropout(n, rate: rate)
        case .softmax: return try lowerSoftmax(n, log: false)
        case .logSoftmax: return try lowerSoftmax(n, log: true)
        case .transpose(let perm): return try lowerTranspose(n, perm)
        }
    }

    var prop: Propagation { mode == .training ? .training : .inference }

    /// The data type of convolutions' and matrix products' inputs and weights: bf16 in a bf16
    /// inference plan, else f32.
    var computeType: DataType { arithmetic == .bf16 ? .bf16 : .f32 }
}
