// MobileNetV2 — Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
// (CVPR 2018), arXiv:1801.04381. Built as torchvision builds it, with its parameter names.
import TaoGraph

public struct MobileNetV2Config: Sendable {
    public var classes: Int
    public var inputShape: Shape
    public var widthMultiplier: Double
    public var dropout: Float
    public init(classes: Int = 1000, inputShape: Shape = [3, 224, 224], widthMultiplier: Double = 1, dropout: Float = 0.2) {
        self.classes = classes; self.inputShape = inputShape; self.widthMultiplier = widthMultiplier; self.dropout = dropout
    }
}

public enum MobileNetV2 {
    /// Rounds channel counts to multiples of 8, never below 90% of the requested width (as the paper's code).
    static func makeDivisible(_ v: Double, _ divisor: Int = 8) -> Int {
        var n = max(divisor, Int(v + Double(divisor) / 2) / divisor * divisor)
        if Double(n) < 0.9 * v { n += divisor }
        return n
    }

    public static func build(_ cfg: MobileNetV2Config) throws -> Graph {
        // (expansion t, channels c, repeats n, first stride s)
        let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var b = GraphBuilder()
        var x = b.input("image", cfg.inputShape)
        var cin = makeDivisible(32 * cfg.widthMultiplier)
        let last = makeDivisible(1280 * max(1, cfg.widthMultiplier))
        x = convBNReLU6(&b, x, "features.0", out: cin, kernel: 3, stride: 2)
        var index = 1
        for (t, c, n, s) in settings {
            let out = makeDivisible(Double(c) * cfg.widthMultiplier)
            for i in 0..<n {
                x = invertedResidual(&b, x, "features.\(index)", inp: cin, out: out, stride: i == 0 ? s : 1, expand: t)
                cin = out
                index += 1
            }
        }
        x = convBNReLU6(&b, x, "features.\(index)", out: last, kernel: 1, stride: 1)
        x = b.globalAveragePool(x, "avgpool")
        x = b.dropout(x, "classifier.0", rate: cfg.dropout)
        x = b.dense(x, "classifier.1", out: cfg.classes)
        return try b.build(outputs: [x])
    }

    static func convBNReLU6(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, out: Int, kernel: Int, stride: Int, groups: Int = 1) -> ValueID {
        let c = b.conv2d(x, "\(name).0", out: out, kernel: kernel, stride: stride, groups: groups)
        return b.activation(b.batchNorm(c, "\(name).1"), .relu6, "\(name).2")
    }

    static func invertedResidual(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, inp: Int, out: Int, stride: Int, expand: Int) -> ValueID {
        let hidden = inp * expand
        var y = x
        var k = 0
        if expand != 1 {
            y = convBNReLU6(&b, y, "\(name).conv.\(k)", out: hidden, kernel: 1, stride: 1)
            k += 1
        }
        y = convBNReLU6(&b, y, "\(name).conv.\(k)", out: hidden, kernel: 3, stride: stride, groups: hidden)
        y = b.conv2d(y, "\(name).conv.\(k + 1)", out: out, kernel: 1, padding: .zero)
        y = b.batchNorm(y, "\(name).conv.\(k + 2)")
        return stride == 1 && inp == out ? b.add(y, x, "\(name).add") : y
    }
}

extension MobileNetV2 {
    /// TAO's template (nvidia_tao_tf1/core/templates/mobilenet.py, `MobileNetV2` without a head), as
    /// TAO's detectors build it: batch norm ε 1e-3, every 3×3 padded by one on each side, ReLU (or
    /// `activation`), and with `allProjections` a 1×1 convolution on each identity shortcut. Total
    /// stride 16 stops after block 12 (96 channels); 32 adds blocks 13–16 and the 1×1 to 1280.
    /// Layers are named `block<N>.…`, N being TAO's freeze_blocks index (0 the stem, block_id + 1).
    /// Returns TAO's `block_5_add` (stride 8) and `block_9_add` (16), which YOLO reads, then "last".
    public static func taoBackbone(_ b: inout GraphBuilder, _ image: ValueID, stride total: Int, allProjections: Bool,
                                   activation: Activation) -> [FeatureMap] {
        var style = ConvStyle(activation: activation)
        style.bnMomentum = 0.999
        func feature(_ name: String, _ x: ValueID) -> FeatureMap {
            FeatureMap(name: name, value: x, stride: b.shape(image)[2] / b.shape(x)[2], channels: b.shape(x)[0])
        }
        var x = b.convUnit(image, "block0.conv1", out: 32, kernel: 3, stride: 2, padding: Padding2D(1), style)
        // (filters, stride, expansion) of TAO's blocks 0–16.
        var blocks = [(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6),
                      (96, 1, 6), (96, 1, 6), (96, 1, 6)]
        if total == 32 { blocks += [(160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6)] }
        var features: [FeatureMap] = []
        for (id, (filters, stride, expansion)) in blocks.enumerated() {
            let p = "block\(id + 1).block_\(id)", cin = b.shape(x)[0], out = makeDivisible(Double(filters))
            var y = x
            if id > 0 { y = b.convUnit(y, "\(p)_expand", out: expansion * cin, kernel: 1, style) }
            let hidden = b.shape(y)[0]
            y = b.convUnit(y, "\(p)_depthwise", out: hidden, kernel: 3, stride: stride, groups: hidden, padding: Padding2D(1), style)
            y = b.convUnit(y, "\(p)_project", out: out, kernel: 1, style, linear: true)
            if cin == out && stride == 1 {
                let shortcut = allProjections ? b.conv2d(x, "\(p)_projected_inputs", out: cin, kernel: 1, padding: .zero) : x
                y = b.add(shortcut, y, "\(p)_add")
                if id == 5 || id == 9 { features.append(feature("block_\(id)_add", y)) }
            }
            x = y
        }
        if total == 32 { x = b.convUnit(x, "block18.conv_1", out: 1280, kernel: 1, style) }
        return features + [feature("last", x)]
    }
}
