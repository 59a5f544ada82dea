import TaoGraph

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
    /// "same" padding.
    mutating func convUnit(_ x: ValueID, _ name: String, out: Int, kernel: Int, stride: Int = 1, groups: Int = 1,
                           _ style: ConvStyle, linear: Bool = false) -> ValueID {
        var y = conv2d(x, "\(name).conv", out: out, kernel: kernel, stride: stride, groups: groups, bias: style.bias || !style.batchNorm)
        if style.batchNorm { y = batchNorm(y, "\(name).bn", epsilon: style.bnEpsilon, momentum: style.bnMomentum) }
        return linear ? y : self.activation(y, style.activation, "\(name).act")
    }

    /// Max pooling with Keras "same" padding: output ⌈n / stride⌉, the odd pixel padded at the end.
    mutating func maxPoolSame(_ x: ValueID, _ name: String, kernel: Int, stride: Int) -> ValueID {
        let s = shape(x)
        func pads(_ n: Int) -> (Int, Int) {
            let out = (n + stride - 1) / stride
            let total = max((out - 1) * stride + kernel - n, 0)
            return (total / 2, total - total / 2)
        }
        let (t, b) = pads(s[1]), (l, r) = pads(s[2])
        return node(name, .pool2d(Pool2D(.max, kernel: [kernel, kernel], stride: [stride, stride],
                                         padding: Padding2D(top: t, left: l, bottom: b, right: r))), [x])
    }

    /// Global average pooling, optional dropout and the dense classifier TAO adds to every backbone.
    mutating func classifierHead(_ x: ValueID, classes: Int, dropout: Float, name: String = "predictions") -> ValueID {
        var y = globalAveragePool(x, "avgpool")
        if dropout > 0 { y = self.dropout(y, "dropout", rate: dropout) }
        return dense(y, name, out: classes)
    }
}
