// YOLOv3 (Redmon & Farhadi, arXiv:1804.02767), YOLOv4 (Bochkovskiy et al., arXiv:2004.10934) and
// YOLOv4-tiny (arXiv:2011.08036) as TAO builds them (nvidia_tao_tf1/cv/yolo_v3 and yolo_v4:
// models/base_model.py, architecture/yolo_arch.py): a backbone from TAO's table, three of its maps
// (YOLOv4: three convolutions and SPP on the last; a strided convolution where the backbone ends at
// stride 16), and heads at strides 32, 16 and 8 (VGG's 16, 8, 4) joined by upsampling and
// concatenation (YOLOv4 adds the PAN path back down). Each head ends
// in a 1×1 convolution of anchors × (5 + classes) channels: per anchor t_y, t_x, t_h, t_w,
// objectness, then the classes' logits (TAO's order, y before x). Decoding stays outside the graph.
import TaoGraph

/// What a YOLO graph is built from.
public struct YOLOModelConfig: Sendable {
    public enum Version: Sendable { case v3, v4, v4Tiny }
    /// TAO's YOLO backbones (`arch`, `nlayers`), built as TAO's detectors build them (no bias, batch
    /// norm, no pooling where the template has the choice).
    public enum Backbone: Sendable, Equatable {
        case resnet(depth: Int), vgg(depth: Int), darknet(depth: Int), cspDarknet(depth: Int)
        case mobilenetV1, mobilenetV2, squeezenet, googlenet, efficientnetB0, cspDarknetTiny
    }
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

    /// The strides of the heads, big first: TAO's VGG ends at stride 16 and its heads sit at 16, 8
    /// and 4; YOLOv4-tiny has two heads.
    public var headStrides: [Int] {
        if version == .v4Tiny { return [32, 16] }
        if case .vgg = backbone { return [16, 8, 4] }
        return [32, 16, 8]
    }
}

public enum YOLO {
    /// The heads' output layers, big (stride 32) first, as TAO names them; never pruned.
    public static let headLayers = ["conv_big_object", "conv_mid_object", "conv_sm_object"]

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
        case (.v4Tiny, _):
            throw ModelError.unsupported("YOLOv4-tiny is built on CSPDarkNet-tiny")
        case (_, .cspDarknetTiny):
            throw ModelError.unsupported("CSPDarkNet-tiny carries YOLOv4-tiny only")
        case (.v3, .cspDarknet):
            throw ModelError.unsupported("TAO's YOLOv3 has no CSPDarkNet backbone (YOLOv4 has)")
        default:
            let t = try taps(&b, image, cfg, leaky)
            var top = t.last
            if cfg.version == .v4 && t.spp { top = spp(&b, top, leaky) }
            if let width = t.expand { top = b.convUnit(top, "yolo_expand_conv1", out: width, kernel: 3, stride: 2, leaky) }
            outputs = cfg.version == .v3
                ? v3Heads(&b, [top, t.mid, t.small], widths: t.widths, cfg, leaky)
                : v4Heads(&b, [top, t.mid, t.small], widths: t.widths, cfg, leaky)
        }
        let graph = try b.build(outputs: outputs)
        for (o, stride) in zip(graph.outputs, cfg.headStrides) where graph.shape(of: o)[1] * stride != s[1] || graph.shape(of: o)[2] * stride != s[2] {
            throw ModelError.unsupported("YOLO head \(graph.shape(of: o)) is not at stride \(stride) of the \(s[1])×\(s[2]) input")
        }
        return graph
    }

    /// What the heads read from a backbone (TAO's `get_base_model`): its last map, the maps (or
    /// the convolutions on them) the mid and small heads concatenate, whether YOLOv4's SPP goes on
    /// the last map, the width of the strided `yolo_expand_conv1` that brings a stride-16 backbone
    /// to 32, and TAO's `map_size` (the heads' concat widths).
    struct Taps { var last, mid, small: ValueID; var spp = true; var expand: Int?; var widths: (Int, Int) }

    static func taps(_ b: inout GraphBuilder, _ image: ValueID, _ cfg: YOLOModelConfig, _ leaky: ConvStyle) throws -> Taps {
        let s = cfg.inputShape
        let relu = ConvStyle(activation: .relu)
        switch cfg.backbone {
        case .resnet(let depth):
            var r = ResNetConfig(depth: depth, classes: 1, inputShape: s, stemMaxPool: false)
            r.allProjections = true
            r.bnEpsilon = 1e-3
            let f = try ResNet.detectionBackbone(&b, image, r)
            guard f.count == 4, f[1].stride == 8, f[2].stride == 16, f[3].stride == 16 else {
                throw ModelError.unsupported("YOLO needs a ResNet whose last two stages are at stride 16")
            }
            guard r.bottleneck else { return Taps(last: f[3].value, mid: f[2].value, small: f[1].value, expand: 512, widths: (128, 64)) }
            // ResNet 50/101 (TAO's layers[-7] and [-43], 12 layers a block): the 3×3's activation in the
            // last block of stage 4, and in the last of stage 3 upsampled to stride 8.
            guard let mid = b.value(named: "layer4.\(r.blocks[3] - 1).relu2"), let small = b.value(named: "layer3.\(r.blocks[2] - 1).relu2") else {
                throw ModelError.unsupported("ResNet-\(depth) without its blocks' relu2")
            }
            return Taps(last: f[3].value, mid: mid, small: up(&b, small, "expand_upsample"), expand: 1024, widths: (256, 128))
        case .vgg(let depth):
            var v = VGGConfig(depth: depth, inputShape: s, batchNorm: true, template: .tao)
            v.style = ConvStyle(activation: .relu)
            let f = try VGG.taoBackbone(&b, image, v)
            return Taps(last: try f.named("block5").value, mid: try f.named("block4").value, small: try f.named("block3").value, widths: (256, 128))
        case .darknet(let depth), .cspDarknet(let depth):
            let variant: DarkNetConfig.Variant = cfg.backbone == .darknet(depth: depth) ? .darknet : .cspDarknet
            let act = cfg.forceReLU ? Activation.relu : variant == .cspDarknet ? cfg.backboneActivation : .leakyRelu(alpha: 0.1)
            let f = try DarkNet.backbone(&b, image, DarkNetConfig(variant, depth: depth, inputShape: s, style: ConvStyle(activation: act)))
            return Taps(last: try f.named("last").value, mid: try f.named("b4").value, small: try f.named("b3").value, widths: (256, 128))
        case .mobilenetV1:
            let f = MobileNetV1.backbone(&b, image, stride: 16, activation: .relu)
            return Taps(last: try f.named("last").value, mid: try f.named("conv_dw_6_relu").value, small: try f.named("conv_dw_4_relu").value,
                        expand: 512, widths: (128, 64))
        case .mobilenetV2:
            let f = MobileNetV2.taoBackbone(&b, image, stride: 16, allProjections: true, activation: .relu)
            return Taps(last: try f.named("last").value, mid: try f.named("block_9_add").value, small: try f.named("block_5_add").value,
                        expand: 96, widths: (32, 16))
        case .squeezenet:
            let f = SqueezeNet.backbone(&b, image)
            let last = try f.named("last").value
            let mid = b.convUnit(last, "expand_conv2", out: 128, kernel: 1, leaky)
            let small = b.convUnit(try f.named("fire8").value, "expand_conv3", out: 128, kernel: 1, leaky)
            return Taps(last: last, mid: mid, small: small, expand: 128, widths: (64, 64))
        case .googlenet:
            let f = GoogLeNet.backbone(&b, image, GoogLeNetConfig(inputShape: s, style: relu), poolAfter4e: false)
            let mid = b.convUnit(try f.named("inception_5a").value, "expand_conv2", out: 512, kernel: 3, leaky)
            let small = b.convUnit(up(&b, try f.named("inception_4e").value, "expand_upsample"), "expand_conv3", out: 256, kernel: 3, leaky)
            return Taps(last: try f.named("last").value, mid: mid, small: small, expand: 1024, widths: (256, 128))
        case .efficientnetB0:
            let f = try EfficientNet.backbone(&b, image, EfficientNetConfig(variant: 0, inputShape: s, style: relu))
            let small = b.convUnit(up(&b, try f.named("block5a_expand_activation").value, "expand_upsample"), "expand_conv3", out: 256, kernel: 3, leaky)
            // TAO builds the SPP block here too but reads the backbone's own last map: no SPP.
            return Taps(last: try f.named("last").value, mid: try f.named("block6a_expand_activation").value, small: small, spp: false, widths: (256, 128))
        case .cspDarknetTiny:
            throw ModelError.unsupported("CSPDarkNet-tiny carries YOLOv4-tiny only")
        }
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
