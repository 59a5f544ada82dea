import TaoTensor

/// The closed set of operations a `Graph` can hold. Each case carries typed attributes; op names
/// as strings exist only at the ONNX and spec boundaries.
///
/// Activation shapes in the graph are per sample (no batch axis); axes in attributes count the
/// batch axis as 0, as ONNX and PyTorch do (so 1 is the channel axis).
public enum Op: Hashable, Sendable, Codable {
    case conv2d(Conv2D)
    case convTranspose2d(ConvTranspose2D)
    case batchNorm(BatchNorm)
    case activation(Activation)
    case pool2d(Pool2D)
    case globalAveragePool
    case dense(Dense)
    case add
    case mul
    case concat(axis: Int)
    case slice(Slice)
    case reshape(Shape)
    case flatten
    case pad2d(Padding2D)
    case upsample(Upsample)
    /// ONNX's Resize of height and width in any mode and size (`Resize`); integer upscaling by
    /// nearest repeat or half-pixel linear is `upsample`, on oneDNN's resampling.
    case resize(Resize)
    /// 1 where the comparison of the two inputs holds, else 0 (the second broadcast by size-1 axes,
    /// as `add`'s); no gradient flows through it.
    case compare(Comparison)
    case dropout(rate: Float)
    /// Softmax over axis 1: the features of [F], the channels of [C,H,W] (ONNX's Softmax, opset 13+, axis 1).
    case softmax
    /// log(softmax) over axis 1, computed as x − max − log Σ exp(x − max) (ONNX's LogSoftmax).
    case logSoftmax
    /// Axes reordered: output axis k is input axis perm[k] (ONNX's Transpose); perm[0] = 0, the batch stays.
    case transpose(perm: [Int])

    /// A short lowercase name for messages and reports.
    public var kind: String {
        switch self {
        case .conv2d: "conv2d"
        case .convTranspose2d: "conv_transpose2d"
        case .batchNorm: "batch_norm"
        case .activation(let a): "\(a)".split(separator: "(").first.map(String.init) ?? "activation"
        case .pool2d(let p): p.kind == .max ? "max_pool2d" : "avg_pool2d"
        case .globalAveragePool: "global_avg_pool"
        case .dense: "dense"
        case .add: "add"
        case .mul: "mul"
        case .concat: "concat"
        case .slice: "slice"
        case .reshape: "reshape"
        case .flatten: "flatten"
        case .pad2d: "pad2d"
        case .upsample: "upsample"
        case .resize: "resize"
        case .compare: "compare"
        case .dropout: "dropout"
        case .softmax: "softmax"
        case .logSoftmax: "logsoftmax"
        case .transpose: "transpose"
        }
    }

    /// How many inputs the op takes, as (minimum, maximum).
    var arity: (Int, Int) {
        switch self {
        case .conv2d(let c): c.hasBias ? (3, 3) : (2, 2)
        case .convTranspose2d(let c): c.hasBias ? (3, 3) : (2, 2)
        case .batchNorm: (5, 5)
        case .dense(let d): d.hasBias ? (3, 3) : (2, 2)
        case .add, .mul, .compare: (2, 2)
        case .concat: (1, Int.max)
        default: (1, 1)
        }
    }
}
