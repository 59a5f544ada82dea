/// Zero padding on the four sides of a feature map (asymmetric allowed, as TF's "same").
public struct Padding2D: Hashable, Sendable, Codable, CustomStringConvertible {
    public var top: Int, left: Int, bottom: Int, right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    /// The same padding on every side.
    public init(_ p: Int) { self.init(top: p, left: p, bottom: p, right: p) }
    public static let zero = Padding2D(0)
    public var description: String { "(\(top),\(left),\(bottom),\(right))" }
}

/// A 2-D convolution; inputs are `x`, `weight` [O, I/groups, KH, KW] and optionally `bias` [O].
public struct Conv2D: Hashable, Sendable, Codable {
    public var outChannels: Int
    public var kernel: [Int]      // [kh, kw]
    public var stride: [Int]      // [sh, sw]
    public var dilation: [Int]    // [dh, dw], 1 = dense
    public var padding: Padding2D
    public var groups: Int
    public var hasBias: Bool
    public init(outChannels: Int, kernel: [Int], stride: [Int] = [1, 1], dilation: [Int] = [1, 1],
                padding: Padding2D = .zero, groups: Int = 1, hasBias: Bool = false) {
        self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.dilation = dilation
        self.padding = padding; self.groups = groups; self.hasBias = hasBias
    }
}

/// A transposed 2-D convolution; `weight` is [I, O/groups, KH, KW] as in PyTorch and ONNX.
public struct ConvTranspose2D: Hashable, Sendable, Codable {
    public var outChannels: Int
    public var kernel: [Int]
    public var stride: [Int]
    public var dilation: [Int]
    public var padding: Padding2D
    public var outputPadding: [Int]
    public var hasBias: Bool
    public init(outChannels: Int, kernel: [Int], stride: [Int] = [1, 1], dilation: [Int] = [1, 1],
                padding: Padding2D = .zero, outputPadding: [Int] = [0, 0], hasBias: Bool = false) {
        self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.dilation = dilation
        self.padding = padding; self.outputPadding = outputPadding; self.hasBias = hasBias
    }
}

/// Batch normalization over channels; inputs are `x`, `scale`, `shift`, `runningMean`, `runningVariance`.
public struct BatchNorm: Hashable, Sendable, Codable {
    public var epsilon: Float
    /// Weight of the old running statistic in each update (Keras' convention: 0.99).
    public var momentum: Float
    public init(epsilon: Float = 1e-5, momentum: Float = 0.9) { self.epsilon = epsilon; self.momentum = momentum }
}

/// Element-wise activation functions.
public enum Activation: Hashable, Sendable, Codable {
    case relu
    case relu6
    case leakyRelu(alpha: Float)
    case elu(alpha: Float)
    case sigmoid
    case tanh
    case swish
    case hardSwish
    case mish
    /// α·x + β (ONNX's scalar Mul/Add, and with `clip` its HardSigmoid).
    case linear(alpha: Float, beta: Float)
    /// min(max(x, lower), upper) (ONNX's Clip).
    case clip(lower: Float, upper: Float)
    /// |x|, √x, eˣ, ln x, ln(1 + eˣ): ONNX's Abs, Sqrt, Exp, Log, Softplus.
    case abs, sqrt, exp, log, softplus
    /// scale · x^exponent (ONNX's Pow by a constant, Reciprocal, and c / x).
    case pow(scale: Float, exponent: Float)
    /// x · Φ(x), Φ the normal distribution (erf) — ONNX's Gelu and its erf subgraph.
    case gelu
    /// erf(x) — ONNX's Erf outside GELU's pattern (no oneDNN algorithm: a loop of its own).
    case erf
}

/// An elementwise comparison giving 1 where it holds and 0 elsewhere (ONNX's Equal, Less, …).
public enum Comparison: String, Hashable, Sendable, Codable, CaseIterable {
    case equal = "Equal", less = "Less", greater = "Greater", lessOrEqual = "LessOrEqual", greaterOrEqual = "GreaterOrEqual"
    public func holds(_ a: Double, _ b: Double) -> Bool {
        switch self {
        case .equal: a == b
        case .less: a < b
        case .greater: a > b
        case .lessOrEqual: a <= b
        case .greaterOrEqual: a >= b
        }
    }
}

/// Max or average pooling over windows.
public struct Pool2D: Hashable, Sendable, Codable {
    public enum Kind: Hashable, Sendable, Codable { case max, average }
    public var kind: Kind
    public var kernel: [Int]
    public var stride: [Int]
    public var padding: Padding2D
    /// For average pooling: whether padded zeros count in the divisor.
    public var countIncludePad: Bool
    public init(_ kind: Kind, kernel: [Int], stride: [Int], padding: Padding2D = .zero, countIncludePad: Bool = false) {
        self.kind = kind; self.kernel = kernel; self.stride = stride; self.padding = padding; self.countIncludePad = countIncludePad
    }
}

/// A fully connected layer; inputs are `x` [F], `weight` [O, F] and optionally `bias` [O].
public struct Dense: Hashable, Sendable, Codable {
    public var outFeatures: Int
    public var hasBias: Bool
    public init(outFeatures: Int, hasBias: Bool = true) { self.outFeatures = outFeatures; self.hasBias = hasBias }
}

/// A contiguous range along one axis (axis counted with the batch axis as 0).
/// Elements start, start + step, … below end along one axis (ONNX's Slice with a positive step).
public struct Slice: Hashable, Sendable, Codable {
    public var axis: Int, start: Int, end: Int
    public var step: Int
    public init(axis: Int, start: Int, end: Int, step: Int = 1) { self.axis = axis; self.start = start; self.end = end; self.step = step }
    /// How many elements it takes.
    public var count: Int { (end - start + step - 1) / step }

    enum CodingKeys: String, CodingKey { case axis, start, end, step }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        (axis, start, end) = (try c.decode(Int.self, forKey: .axis), try c.decode(Int.self, forKey: .start), try c.decode(Int.self, forKey: .end))
        step = try c.decodeIfPresent(Int.self, forKey: .step) ?? 1   // checkpoints from before strided slices
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(axis, forKey: .axis); try c.encode(start, forKey: .start); try c.encode(end, forKey: .end)
        if step != 1 { try c.encode(step, forKey: .step) }
    }
}

/// Spatial upsampling by integer factors.
public struct Upsample: Hashable, Sendable, Codable {
    public enum Mode: Hashable, Sendable, Codable { case nearest, bilinear }
    public var mode: Mode
    public var scale: [Int]   // [sh, sw]
    public init(_ mode: Mode, scale: [Int]) { self.mode = mode; self.scale = scale }
}
