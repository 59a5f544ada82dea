// GoogLeNet (Inception v1) — Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015),
// arXiv:1409.4842, with batch norm after every convolution and 2×2 max pooling as TAO's template
// builds it, then global pooling, dropout 0.4 and a dense head. Parameters are named
// `block<N>.<layer>`, N being TAO's freeze_blocks index (0 the stem, 1–9 the inception blocks).
import TaoGraph

public struct GoogLeNetConfig: Sendable {
    public var classes: Int
    public var inputShape: Shape
    public var style: ConvStyle
    public var dropout: Float
    public init(classes: Int = 1000, inputShape: Shape = [3, 224, 224], style: ConvStyle = ConvStyle(activation: .relu), dropout: Float = 0.4) {
        self.classes = classes; self.inputShape = inputShape; self.style = style; self.dropout = dropout
    }
}

public enum GoogLeNet {
    /// Inception blocks: (name, 1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool projection), as the paper's table 1.
    static let blocks: [(String, [Int])] = [
        ("3a", [64, 96, 128, 16, 32, 32]), ("3b", [128, 128, 192, 32, 96, 64]),
        ("4a", [192, 96, 208, 16, 48, 64]), ("4b", [160, 112, 224, 24, 64, 64]), ("4c", [128, 128, 256, 24, 64, 64]),
        ("4d", [112, 144, 288, 32, 64, 64]), ("4e", [256, 160, 320, 32, 128, 128]),
        ("5a", [256, 160, 320, 32, 128, 128]), ("5b", [384, 192, 384, 48, 128, 128]),
    ]

    public static func build(_ cfg: GoogLeNetConfig) throws -> Graph {
        var b = GraphBuilder()
        let f = backbone(&b, b.input("image", cfg.inputShape), cfg, poolAfter4e: true)
        let x = b.classifierHead(f.last!.value, classes: cfg.classes, dropout: cfg.dropout)
        return try b.build(outputs: [x])
    }

    /// The stem and the inception blocks without a head. TAO's template pools after 4e only when it
    /// adds its own head, so its detectors end at stride 16 (`poolAfter4e` false). Returns the
    /// outputs of `inception_4e` and `inception_5a`, which TAO's YOLO reads, then the last ("last").
    public static func backbone(_ b: inout GraphBuilder, _ image: ValueID, _ cfg: GoogLeNetConfig, poolAfter4e: Bool) -> [FeatureMap] {
        let s = cfg.style
        func feature(_ name: String, _ x: ValueID) -> FeatureMap {
            FeatureMap(name: name, value: x, stride: b.shape(image)[2] / b.shape(x)[2], channels: b.shape(x)[0])
        }
        var x = b.convUnit(image, "block0.conv1", out: 64, kernel: 7, stride: 2, s)
        x = b.maxPoolSame(x, "block0.pool1", kernel: 2, stride: 2)
        x = b.convUnit(x, "block0.conv2_reduce", out: 64, kernel: 1, s)
        x = b.convUnit(x, "block0.conv2", out: 192, kernel: 3, s)
        x = b.maxPoolSame(x, "block0.pool2", kernel: 2, stride: 2)
        var features: [FeatureMap] = []
        for (i, (index, f)) in blocks.enumerated() {
            let p = "block\(i + 1).inception_\(index)"
            let b1 = b.convUnit(x, "\(p).conv_1x1", out: f[0], kernel: 1, s)
            let b2 = b.convUnit(b.convUnit(x, "\(p).conv_3x3_reduce", out: f[1], kernel: 1, s), "\(p).conv_3x3", out: f[2], kernel: 3, s)
            let b3 = b.convUnit(b.convUnit(x, "\(p).conv_5x5_reduce", out: f[3], kernel: 1, s), "\(p).conv_5x5", out: f[4], kernel: 5, s)
            let pooled = b.maxPool(x, "\(p).pool", kernel: 3, stride: 1, padding: 1)
            let b4 = b.convUnit(pooled, "\(p).conv_pool_proj", out: f[5], kernel: 1, s)
            x = b.concat([b1, b2, b3, b4], "\(p).concat")
            if index == "4e" || index == "5a" { features.append(feature("inception_\(index)", x)) }
            if index == "3b" || (index == "4e" && poolAfter4e) { x = b.maxPoolSame(x, "block\(i + 1).pool\(index == "3b" ? 3 : 4)", kernel: 2, stride: 2) }
        }
        return features + [feature("last", x)]
    }
}
