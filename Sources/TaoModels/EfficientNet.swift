// EfficientNet B0/B1 — Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
// Networks" (ICML 2019), arXiv:1905.11946. Built as torchvision builds it (MBConv blocks with
// squeeze-excite, swish, batch norm eps 1e-3), so its parameter counts match torchvision's.
// Parameters are named `block<N>.…`: block0 the stem, block1–7 the stages, `top` the last 1×1.
import TaoGraph

public struct EfficientNetConfig: Sendable {
    public var variant: Int            // 0 (B0) or 1 (B1)
    public var classes: Int
    public var inputShape: Shape
    public var style: ConvStyle
    public var dropout: Float
    public init(variant: Int, classes: Int = 1000, inputShape: Shape? = nil, style: ConvStyle = ConvStyle(activation: .swish), dropout: Float = 0.2) {
        self.variant = variant; self.classes = classes
        self.inputShape = inputShape ?? (variant == 1 ? [3, 240, 240] : [3, 224, 224])
        self.style = style; self.dropout = dropout
    }
}

public enum EfficientNet {
    /// (expansion, kernel, first stride, output channels, repeats) of B0's seven stages.
    static let stages = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                         (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

    public static func build(_ cfg: EfficientNetConfig) throws -> Graph {
        var b = GraphBuilder()
        let f = try backbone(&b, b.input("image", cfg.inputShape), cfg)
        let x = b.classifierHead(f.last!.value, classes: cfg.classes, dropout: cfg.dropout)
        return try b.build(outputs: [x])
    }

    /// The stem, the seven stages and the top 1×1 (to 1280), without a head. Returns the expansion
    /// outputs of the first blocks of stages 5 and 6 (Keras's `block5a_expand_activation`, stride 16,
    /// and `block6a_expand_activation`, stride 16 before that block's stride-2 depthwise), which
    /// TAO's YOLO reads, then the last map ("last").
    public static func backbone(_ b: inout GraphBuilder, _ image: ValueID, _ cfg: EfficientNetConfig) throws -> [FeatureMap] {
        guard cfg.variant == 0 || cfg.variant == 1 else { throw ModelError.unsupported("efficientnet_b\(cfg.variant) (choose b0 or b1)") }
        let depthMultiplier = cfg.variant == 1 ? 1.1 : 1.0
        var s = cfg.style
        s.bnEpsilon = 1e-3
        var x = b.convUnit(image, "block0.stem", out: 32, kernel: 3, stride: 2, s)
        var features: [FeatureMap] = []
        for (i, (t, k, stride, out, n)) in stages.enumerated() {
            let repeats = Int((Double(n) * depthMultiplier).rounded(.up))
            for j in 0..<repeats {
                x = mbConv(&b, x, "block\(i + 1).\(j)", expand: t, kernel: k, stride: j == 0 ? stride : 1, out: out, s)
                if j == 0 && (i == 4 || i == 5), let e = b.value(named: "block\(i + 1).0.expand.act") {
                    features.append(FeatureMap(name: "block\(i + 1)a_expand_activation", value: e, stride: b.shape(image)[2] / b.shape(e)[2], channels: b.shape(e)[0]))
                }
            }
        }
        x = b.convUnit(x, "top", out: 1280, kernel: 1, s)
        return features + [FeatureMap(name: "last", value: x, stride: b.shape(image)[2] / b.shape(x)[2], channels: 1280)]
    }

    /// Inverted residual: 1×1 expansion, depthwise k×k, squeeze-excite (to a quarter of the block's
    /// input channels), linear 1×1 projection, and the identity shortcut when shapes allow.
    static func mbConv(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, expand: Int, kernel: Int, stride: Int, out: Int, _ s: ConvStyle) -> ValueID {
        let cin = b.shape(x)[0], hidden = cin * expand
        var y = x
        if expand != 1 { y = b.convUnit(y, "\(name).expand", out: hidden, kernel: 1, s) }
        y = b.convUnit(y, "\(name).dwconv", out: hidden, kernel: kernel, stride: stride, groups: hidden, s)
        // Squeeze-excite: global pool, 1×1 reduce (bias), activation, 1×1 expand (bias), sigmoid, scale.
        var g = b.globalAveragePool(y, "\(name).se.squeeze")
        g = b.node("\(name).se.reshape", .reshape([hidden, 1, 1]), [g])
        g = b.activation(b.conv2d(g, "\(name).se.reduce", out: max(1, cin / 4), kernel: 1, bias: true), s.activation, "\(name).se.act")
        g = b.activation(b.conv2d(g, "\(name).se.expand", out: hidden, kernel: 1, bias: true), .sigmoid, "\(name).se.gate")
        y = b.mul(y, g, "\(name).se.scale")
        y = b.convUnit(y, "\(name).project", out: out, kernel: 1, s, linear: true)
        return stride == 1 && cin == out ? b.add(y, x, "\(name).add") : y
    }
}
