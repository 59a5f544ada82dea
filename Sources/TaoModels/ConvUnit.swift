import TaoGraph

/// Whose layer recipe a backbone follows where two are known: TAO's Keras templates
/// (nvidia_tao_tf1/core/templates), which the tasks train, or torchvision's, which the benchmarks
/// compare with PyTorch like for like.
public enum Template: Sendable { case tao, torchvision }

/// How the Keras-style backbones of TAO's table build a convolution unit: conv, batch norm,
/// activation (TAO's `use_batch_norm`, `use_bias`, `batch_norm_config` and `activation`).
public struct ConvStyle: Sendable {
    public var activation: Activation
    public var batchNorm = true
    public var bias = false
    public var bnEpsilon: Float = 1e-3
    public var bnMomentum: Float = 0.9
    public init(activation: Activation, batchNorm: Bool = true, bias: Bool = false) {
        self.activation = activation; self.batchNorm = batchNorm; self.bias = bias
    }
}

extension GraphBuilder {
    /// conv → (batch norm) → activation (none when `linear`), named `name.conv`, `name.bn`, `name.act`;
    /// Keras's 'same' padding unless given, as TAO's templates pad (at stride 1 (k − 1) / 2 on every
    /// side; at stride 2 on an even size one less before than after, as `correct_pad` too).
    mutating func convUnit(_ x: ValueID, _ name: String, out: Int, kernel: Int, stride: Int = 1, groups: Int = 1, padding: Padding2D? = nil,
                           _ style: ConvStyle, linear: Bool = false) -> ValueID {
        let padding = padding ?? samePadding(x, kernel: kernel, stride: stride)
        var y = conv2d(x, "\(name).conv", out: out, kernel: kernel, stride: stride, padding: padding, groups: groups, bias: style.bias || !style.batchNorm)
        if style.batchNorm { y = batchNorm(y, "\(name).bn", epsilon: style.bnEpsilon, momentum: style.bnMomentum) }
        return linear ? y : self.activation(y, style.activation, "\(name).act")
    }

    /// Keras's 'same' padding of a k×k window at stride s on `x`: the output is ⌈n / s⌉, the odd
    /// pixel padded at the bottom / right (PyTorch pads both sides alike, so at stride 2 on an even
    /// size the windows sit half a step apart).
    func samePadding(_ x: ValueID, kernel: Int, stride: Int) -> Padding2D {
        let s = shape(x)
        func pads(_ n: Int) -> (Int, Int) {
            let total = max(((n + stride - 1) / stride - 1) * stride + kernel - n, 0)
            return (total / 2, total - total / 2)
        }
        let (t, b) = pads(s[1]), (l, r) = pads(s[2])
        return Padding2D(top: t, left: l, bottom: b, right: r)
    }

    /// Max pooling with Keras "same" padding: output ⌈n / stride⌉, the odd pixel padded at the end.
    mutating func maxPoolSame(_ x: ValueID, _ name: String, kernel: Int, stride: Int) -> ValueID {
        node(name, .pool2d(Pool2D(.max, kernel: [kernel, kernel], stride: [stride, stride],
                                  padding: samePadding(x, kernel: kernel, stride: stride))), [x])
    }

    /// Average pooling with Keras "same" padding (the padding not counted, as TensorFlow's).
    mutating func avgPoolSame(_ x: ValueID, _ name: String, kernel: Int, stride: Int) -> ValueID {
        node(name, .pool2d(Pool2D(.average, kernel: [kernel, kernel], stride: [stride, stride],
                                  padding: samePadding(x, kernel: kernel, stride: stride), countIncludePad: false)), [x])
    }

    /// Global average pooling, optional dropout and the dense classifier TAO adds to every backbone.
    mutating func classifierHead(_ x: ValueID, classes: Int, dropout: Float, name: String = "predictions") -> ValueID {
        var y = globalAveragePool(x, "avgpool")
        if dropout > 0 { y = self.dropout(y, "dropout", rate: dropout) }
        return dense(y, name, out: classes)
    }
}
