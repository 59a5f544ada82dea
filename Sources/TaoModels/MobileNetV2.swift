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
