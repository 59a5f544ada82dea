// DarkNet 19 (Redmon & Farhadi, "YOLO9000", arXiv:1612.08242), DarkNet 53 ("YOLOv3", arXiv:1804.02767),
// CSPDarkNet 19/53 (Wang et al., "CSPNet", arXiv:1911.11929; Bochkovskiy et al., "YOLOv4",
// arXiv:2004.10934) and CSPDarkNet-tiny (YOLOv4-tiny, arXiv:2011.08036), laid out as TAO's templates
// lay them out: conv-BN-activation units, "same" padding, then global pooling and a dense head.
// Parameters are named `block<N>.<TAO layer name>`, N being TAO's freeze_blocks index.
import TaoGraph

public struct DarkNetConfig: Sendable {
    public enum Variant: Sendable { case darknet, cspDarknet, cspDarknetTiny }
    public var variant: Variant
    public var depth: Int            // 19 or 53 (ignored for tiny)
    public var classes: Int
    public var inputShape: Shape
    public var style: ConvStyle
    public var dropout: Float = 0
    public init(_ variant: Variant, depth: Int = 53, classes: Int = 1000, inputShape: Shape = [3, 224, 224],
                style: ConvStyle = ConvStyle(activation: .leakyRelu(alpha: 0.1))) {
        self.variant = variant; self.depth = depth; self.classes = classes; self.inputShape = inputShape; self.style = style
    }
}

public enum DarkNet {
    public static func build(_ cfg: DarkNetConfig) throws -> Graph {
        var b = GraphBuilder()
        let features = try backbone(&b, b.input("image", cfg.inputShape), cfg)
        let x = b.classifierHead(features.last!.value, classes: cfg.classes, dropout: cfg.dropout)
        return try b.build(outputs: [x])
    }

    /// The layers before the classifier. Returns the last map (named "last"); DarkNet and CSPDarkNet
    /// first return each stage's output ("b1" … "b5", TAO's `b3_conv3` / `b3_add7` / `b3_final_trans`
    /// and so on, the maps YOLO's heads read); CSPDarkNet-tiny the maps YOLOv4-tiny's heads read:
    /// TAO's `conv_3_conv_3` (stride 8) and `conv_4_conv_3` (16), before the blocks' pools, then `conv_5` (32).
    public static func backbone(_ b: inout GraphBuilder, _ image: ValueID, _ cfg: DarkNetConfig) throws -> [FeatureMap] {
        var x = image
        let s = cfg.style
        var features: [FeatureMap] = []
        switch (cfg.variant, cfg.depth) {
        case (.cspDarknetTiny, _):
            x = b.convUnit(x, "block0.conv_0", out: 32, kernel: 3, stride: 2, s)
            x = b.convUnit(x, "block1.conv_1", out: 64, kernel: 3, stride: 2, s)
            for (i, f) in [64, 128, 256].enumerated() {
                let (pooled, tap) = cspTinyBlock(&b, x, "block\(i + 2).conv_\(i + 2)", filters: f, s)
                if i > 0 { features.append(FeatureMap(name: "conv_\(i + 2)_conv_3", value: tap, stride: 4 << i, channels: f)) }
                x = pooled
            }
            x = b.convUnit(x, "block5.conv_5", out: 512, kernel: 3, s)
        case (_, 53):
            x = b.convUnit(x, "block0.conv1", out: 32, kernel: 3, s)
            for (stage, (c, n)) in [(64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)].enumerated() {
                let p = "block\(stage + 1)", t = "b\(stage + 1)"
                x = b.convUnit(x, "\(p).conv\(stage + 2)", out: c, kernel: 3, stride: 2, s)
                if cfg.variant == .darknet {
                    for i in 1...n { x = residual(&b, x, "\(p).\(t)_conv\(i)", mid: c / 2, out: c, s) }
                } else {
                    // The first stage keeps full width in both halves; later ones split the channels in two.
                    let half = stage == 0 ? c : c / 2
                    let z = b.convUnit(x, "\(p).conv\(stage + 2)_1", out: half, kernel: 1, s)
                    x = b.convUnit(x, "\(p).conv\(stage + 2)_2", out: half, kernel: 1, s)
                    for i in 1...n { x = residual(&b, x, "\(p).\(t)_conv\(i)", mid: stage == 0 ? c / 2 : half, out: half, s) }
                    x = b.convUnit(x, "\(p).\(t)_partial_trans", out: half, kernel: 1, s)
                    x = b.concat([x, z], "\(p).\(t)_concat")
                    x = b.convUnit(x, "\(p).\(t)_final_trans", out: c, kernel: 1, s)
                }
                features.append(stageEnd(b, x, t, image))
            }
        case (_, 19):
            x = b.convUnit(x, "block0.conv1", out: 32, kernel: 3, s)
            // Per stage: the 3×3 width and how many (1×1 → 3×3) pairs follow the first 3×3.
            for (stage, (c, pairs)) in [(64, 0), (128, 1), (256, 1), (512, 2), (1024, 2)].enumerated() {
                let p = "block\(stage + 1)", t = "b\(stage + 1)"
                x = b.maxPoolSame(x, "\(p).maxpool_\(stage + 1)", kernel: 2, stride: 2)
                x = b.convUnit(x, "\(p).\(t)_conv1", out: c, kernel: 3, s)
                guard pairs > 0 else { features.append(stageEnd(b, x, t, image)); continue }
                var z: ValueID?
                if cfg.variant == .cspDarknet {
                    z = b.convUnit(x, "\(p).\(t)_part1", out: c / 2, kernel: 1, s)
                    x = b.convUnit(x, "\(p).\(t)_part2", out: c / 2, kernel: 1, s)
                }
                for k in 0..<pairs {
                    x = b.convUnit(x, "\(p).\(t)_conv\(2 * k + 2)", out: c / 2, kernel: 1, s)
                    x = b.convUnit(x, "\(p).\(t)_conv\(2 * k + 3)", out: z == nil ? c : c / 2, kernel: 3, s)
                }
                if let z {
                    x = b.convUnit(x, "\(p).\(t)_partial_trans", out: c / 2, kernel: 1, s)
                    x = b.concat([x, z], "\(p).\(t)_concat")
                    x = b.convUnit(x, "\(p).\(t)_final_trans", out: c, kernel: 1, s)
                }
                features.append(stageEnd(b, x, t, image))
            }
        default:
            throw ModelError.unsupported("darknet depth \(cfg.depth) (choose 19 or 53)")
        }
        var last = stageEnd(b, x, "last", image)
        if cfg.variant == .cspDarknetTiny { last.name = "conv_5" }
        return features + [last]
    }

    static func stageEnd(_ b: GraphBuilder, _ x: ValueID, _ name: String, _ image: ValueID) -> FeatureMap {
        FeatureMap(name: name, value: x, stride: b.shape(image)[2] / b.shape(x)[2], channels: b.shape(x)[0])
    }

    /// 1×1 to `mid`, 3×3 back to `out`, added to the input.
    static func residual(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, mid: Int, out: Int, _ s: ConvStyle) -> ValueID {
        var y = b.convUnit(x, "\(name)_1", out: mid, kernel: 1, s)
        y = b.convUnit(y, "\(name)_2", out: out, kernel: 3, s)
        return b.add(x, y, "\(name)_add")
    }

    /// YOLOv4-tiny's block: 3×3, the second half of its channels through two 3×3s (concatenated),
    /// a 1×1, concatenated with the first 3×3's output, then 2×2 max pooling. Returns the pooled
    /// output and the 1×1's (TAO's `conv_N_conv_3`).
    static func cspTinyBlock(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, filters f: Int, _ s: ConvStyle) -> (ValueID, ValueID) {
        let route = b.convUnit(x, "\(name)_conv_0", out: f, kernel: 3, s)
        let half = b.node("\(name)_split_0", .slice(Slice(axis: 1, start: f / 2, end: f)), [route])
        let r1 = b.convUnit(half, "\(name)_conv_1", out: f / 2, kernel: 3, s)
        var y = b.convUnit(r1, "\(name)_conv_2", out: f / 2, kernel: 3, s)
        y = b.concat([y, r1], "\(name)_concat_0")
        let tap = b.convUnit(y, "\(name)_conv_3", out: f, kernel: 1, s)
        y = b.concat([route, tap], "\(name)_concat_1")
        return (b.maxPoolSame(y, "\(name)_pool_0", kernel: 2, stride: 2), tap)
    }
}
