// YOLOv3 (Redmon & Farhadi, arXiv:1804.02767), YOLOv4 (Bochkovskiy et al., arXiv:2004.10934) and
// YOLOv4-tiny (arXiv:2011.08036) as TAO builds them (nvidia_tao_tf1/cv/yolo_v3 and yolo_v4:
// models/base_model.py, architecture/yolo_arch.py): a stride-16 backbone, a neck to stride 32
// (YOLOv4: three convolutions, SPP, then the strided convolution), and heads at strides 32, 16
// and 8 joined by upsampling and concatenation (YOLOv4 adds the PAN path back down). Each head ends
// in a 1×1 convolution of anchors × (5 + classes) channels: per anchor t_y, t_x, t_h, t_w,
// objectness, then the classes' logits (TAO's order, y before x). Decoding stays outside the graph.
import TaoGraph

/// What a YOLO graph is built from.
public struct YOLOModelConfig: Sendable {
    public enum Version: Sendable { case v3, v4, v4Tiny }
    public enum Backbone: Sendable { case resnet(depth: Int), cspDarknetTiny }
    public var version: Version
    public var backbone: Backbone
    public var inputShape: Shape
    public var classes: Int
    /// Anchors per head, big (stride 32) first.
    public var anchorsPerHead: [Int]
    /// YOLOv3's `arch_conv_blocks` (0, 1 or 2 extra 3×3 / 1×1 pairs per head).
    public var archConvBlocks = 2
    /// TAO's `force_relu`: ReLU wherever the model would use LeakyReLU (or Mish).
    public var forceReLU = false
    /// The activation of CSPDarkNet-tiny's units (`activation`: leaky_relu or mish).
    public var backboneActivation: Activation = .leakyRelu(alpha: 0.1)
    public init(version: Version, backbone: Backbone, inputShape: Shape, classes: Int, anchorsPerHead: [Int]) {
        self.version = version; self.backbone = backbone; self.inputShape = inputShape; self.classes = classes; self.anchorsPerHead = anchorsPerHead
    }
}

public enum YOLO {
    /// The heads' output layers, big (stride 32) first, as TAO names them; never pruned.
    public static let headLayers = ["conv_big_object", "conv_mid_object", "conv_sm_object"]
    /// The strides of the heads, big first.
    public static let strides = [32, 16, 8]

    /// The graph: input "image" [C, H, W] (H, W multiples of 32); outputs, big head first, the raw
    /// maps [anchors · (5 + classes), H / stride, W / stride].
    public static func build(_ cfg: YOLOModelConfig) throws -> Graph {
        let s = cfg.inputShape
        guard s[1] % 32 == 0, s[2] % 32 == 0, s[1] >= 32, s[2] >= 32 else {
            throw ModelError.unsupported("YOLO input \(s[1])×\(s[2]): height and width must be multiples of 32")
        }
        let heads = cfg.version == .v4Tiny ? 2 : 3
        guard cfg.anchorsPerHead.count == heads, cfg.anchorsPerHead.allSatisfy({ $0 >= 1 }) else {
            throw ModelError.unsupported("\(heads) anchor groups expected, got \(cfg.anchorsPerHead)")
        }
        guard cfg.classes >= 1 else { throw ModelError.unsupported("YOLO needs at least one class") }
        var b = GraphBuilder()
        let image = b.input("image", s)
        let leaky = ConvStyle(activation: cfg.forceReLU ? .relu : .leakyRelu(alpha: 0.1))
        var outputs: [ValueID] = []
        switch (cfg.version, cfg.backbone) {
        case (.v4Tiny, .cspDarknetTiny):
            let act = cfg.forceReLU ? Activation.relu : cfg.backboneActivation
            let f = try DarkNet.backbone(&b, image, DarkNetConfig(.cspDarknetTiny, inputShape: s, style: ConvStyle(activation: act)))
            guard let top = f.first(where: { $0.name == "conv_5" }), let mid = f.first(where: { $0.name == "conv_4_conv_3" }) else {
                throw ModelError.unsupported("CSPDarkNet-tiny without its conv_5 and conv_4_conv_3 maps")
            }
            outputs = tinyHeads(&b, top: top.value, mid: mid.value, width: 128, cfg, leaky)
        case (.v3, .resnet(let depth)), (.v4, .resnet(let depth)):
            var r = ResNetConfig(depth: depth, classes: 1, inputShape: s, stemMaxPool: false)
            r.allProjections = true
            r.bnEpsilon = 1e-3
            let f = try ResNet.detectionBackbone(&b, image, r)
            guard f.count == 4, f[1].stride == 8, f[2].stride == 16, f[3].stride == 16 else {
                throw ModelError.unsupported("YOLO needs a ResNet whose last two stages are at stride 16")
            }
            var top = f[3].value
            if cfg.version == .v4 { top = spp(&b, top, leaky) }
            top = b.convUnit(top, "yolo_expand_conv1", out: 512, kernel: 3, stride: 2, leaky)
            outputs = cfg.version == .v3
                ? v3Heads(&b, [top, f[2].value, f[1].value], widths: (128, 64), cfg, leaky)
                : v4Heads(&b, [top, f[2].value, f[1].value], widths: (128, 64), cfg, leaky)
        default:
            throw ModelError.unsupported("this YOLO version and backbone do not go together (YOLOv4-tiny is built on CSPDarkNet-tiny)")
        }
        return try b.build(outputs: outputs)
    }

    /// The detection layer of a head: a 1×1 convolution with bias to anchors · (5 + classes).
    static func detection(_ b: inout GraphBuilder, _ x: ValueID, head: Int, _ cfg: YOLOModelConfig) -> ValueID {
        b.conv2d(x, headLayers[head], out: cfg.anchorsPerHead[head] * (5 + cfg.classes), kernel: 1, padding: .zero, bias: true)
    }

    /// YOLOv4's neck on the backbone's last map: 1×1, 3×3, 1×1, then spatial pyramid pooling
    /// (5, 9, 13, stride 1) concatenated with its input, and a 1×1.
    static func spp(_ b: inout GraphBuilder, _ x: ValueID, _ s: ConvStyle) -> ValueID {
        var n = b.convUnit(x, "yolo_neck_1", out: 512, kernel: 1, s)
        n = b.convUnit(n, "yolo_neck_2", out: 1024, kernel: 3, s)
        n = b.convUnit(n, "yolo_neck_3", out: 512, kernel: 1, s)
        let pools = [5, 9, 13].enumerated().map { i, k in b.maxPoolSame(n, "yolo_spp_pool_\(i + 1)", kernel: k, stride: 1) }
        return b.convUnit(b.concat(pools + [n], "yolo_spp_concat"), "yolo_spp_conv", out: 512, kernel: 1, s)
    }

    /// Upsampling by two, nearest neighbour.
    static func up(_ b: inout GraphBuilder, _ x: ValueID, _ name: String) -> ValueID {
        b.node(name, .upsample(Upsample(.nearest, scale: [2, 2])), [x])
    }

    /// YOLOv3's three heads (TAO's YOLO_FCN): `maps` big, mid, small; `widths` TAO's concat_num_filters.
    static func v3Heads(_ b: inout GraphBuilder, _ maps: [ValueID], widths w: (Int, Int), _ cfg: YOLOModelConfig, _ s: ConvStyle) -> [ValueID] {
        let blocks = cfg.archConvBlocks
        func stack(_ x: ValueID, _ p: String, first: Int, width: Int) -> ValueID {
            var x = b.convUnit(x, "yolo_conv\(p)_\(first)", out: width, kernel: 1, s)
            for k in 0..<blocks {
                x = b.convUnit(x, "yolo_conv\(p)_\(2 * k + 2)", out: width * 2, kernel: 3, s)
                x = b.convUnit(x, "yolo_conv\(p)_\(2 * k + 3)", out: width, kernel: 1, s)
            }
            return x
        }
        var x = stack(maps[0], "1", first: 1, width: w.0 * 2)
        let big = b.convUnit(x, "yolo_conv1_6", out: w.0 * 4, kernel: 3, s)
        x = up(&b, b.convUnit(x, "yolo_conv2", out: w.0, kernel: 1, s), "upsample0")
        x = stack(b.concat([x, maps[1]], "yolo_concat0"), "3", first: 1, width: w.0)
        let mid = b.convUnit(x, "yolo_conv3_6", out: w.0 * 2, kernel: 3, s)
        x = up(&b, b.convUnit(x, "yolo_conv4", out: w.1, kernel: 1, s), "upsample1")
        x = stack(b.concat([x, maps[2]], "yolo_concat1"), "5", first: 1, width: w.1)
        let small = b.convUnit(x, "yolo_conv5_6", out: w.1 * 2, kernel: 3, s)
        return [detection(&b, big, head: 0, cfg), detection(&b, mid, head: 1, cfg), detection(&b, small, head: 2, cfg)]
    }

    /// YOLOv4's heads with the PAN path (TAO's YOLO_FCN of yolo_v4): down through the big and mid
    /// maps to the small head, then back up with strided convolutions to the mid and big heads.
    static func v4Heads(_ b: inout GraphBuilder, _ maps: [ValueID], widths w: (Int, Int), _ cfg: YOLOModelConfig, _ s: ConvStyle) -> [ValueID] {
        func c(_ x: ValueID, _ name: String, _ out: Int, _ k: Int, stride: Int = 1) -> ValueID { b.convUnit(x, name, out: out, kernel: k, stride: stride, s) }
        var x = c(maps[0], "yolo_conv1_2", w.0 * 4, 3)
        x = c(x, "yolo_conv1_3", w.0 * 2, 1)
        x = c(x, "yolo_conv2", w.0, 1)
        let branch0 = x
        x = b.concat([up(&b, x, "upsample0"), c(maps[1], "yolo_x_branch", w.0, 1)], "yolo_concat0")
        x = c(x, "yolo_conv3_1", w.0, 1)
        x = c(x, "yolo_conv3_2", w.0 * 2, 3)
        x = c(x, "yolo_conv3_3", w.0, 1)
        x = c(x, "yolo_conv3_4", w.0 * 2, 3)
        x = c(x, "yolo_conv3_5", w.0, 1)
        let nextNext = x
        x = c(x, "yolo_conv4", w.1, 1)
        x = b.concat([up(&b, x, "upsample1"), c(maps[2], "yolo_x_branch_2", w.1, 1)], "yolo_concat1")
        x = c(x, "yolo_conv5_1", w.1, 1)
        x = c(x, "yolo_conv5_2", w.1 * 2, 3)
        x = c(x, "yolo_conv5_3", w.1, 1)
        x = c(x, "yolo_conv5_4", w.1 * 2, 3)
        x = c(x, "yolo_conv5_5", w.1, 1)
        let smBranch = x
        let small = c(x, "yolo_conv5_6", w.1 * 2, 3)
        x = b.concat([nextNext, c(smBranch, "yolo_sm_branch_conv", w.0, 3, stride: 2)], "yolo_concat2")
        x = c(x, "yolo_conv3_5_1", w.0, 1)
        x = c(x, "yolo_conv3_4_2", w.0 * 2, 3)
        x = c(x, "yolo_conv3_5_1_1", w.0, 1)
        var mid = c(x, "yolo_conv3_6", w.0 * 2, 3)
        mid = c(mid, "md_leaky_conv512", 256, 1)
        let midDown = c(mid, "md_leaky_conv512_down", 512, 3, stride: 2)
        mid = c(mid, "md_leaky_conv1024", 512, 3)
        x = b.concat([branch0, midDown], "yolo_concat3")
        x = c(x, "yolo_conv1_3_1", w.0 * 2, 1)
        x = c(x, "yolo_conv1_4", w.0 * 4, 3)
        x = c(x, "yolo_conv1_5", w.0 * 2, 1)
        var big = c(x, "yolo_conv1_6", w.0 * 4, 3)
        big = c(big, "bg_leaky_conv512", 512, 1)
        big = c(big, "bg_leaky_conv1024", 1024, 3)
        return [detection(&b, big, head: 0, cfg), detection(&b, mid, head: 1, cfg), detection(&b, small, head: 2, cfg)]
    }

    /// YOLOv4-tiny's two heads (TAO's YOLO_FCN_Tiny).
    static func tinyHeads(_ b: inout GraphBuilder, top: ValueID, mid midMap: ValueID, width w: Int, _ cfg: YOLOModelConfig, _ s: ConvStyle) -> [ValueID] {
        var x = b.convUnit(top, "yolo_conv1_1", out: w * 2, kernel: 1, s)
        let big = b.convUnit(x, "yolo_conv1_6", out: w * 4, kernel: 3, s)
        x = up(&b, b.convUnit(x, "yolo_conv2", out: w, kernel: 1, s), "upsample0")
        let mid = b.convUnit(b.concat([x, midMap], "yolo_concat0"), "yolo_conv3_6", out: w * 2, kernel: 3, s)
        return [detection(&b, big, head: 0, cfg), detection(&b, mid, head: 1, cfg)]
    }
}
