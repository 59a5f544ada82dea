// U-Net — Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
// Segmentation" (MICCAI 2015), arXiv:1505.04597, as TAO's unet task builds it
// (nvidia_tao_tf1/cv/unet/model): the classic network with valid convolutions (`vanilla_unet`, 572²
// in, 388² out), its 'same'-padded, batch-normed variant (`vanilla_unet_dynamic`), and TAO's
// backbones as encoders with TAO's decoders. The output is per-pixel class logits [classes, H, W]
// named "logits"; the task applies softmax or sigmoid.
import Foundation
import TaoGraph

public struct UNetModelConfig: Sendable {
    public enum Encoder: Sendable, Equatable {
        case resnet(depth: Int), vgg(depth: Int), vanilla, vanillaDynamic, efficientnetB0
        /// The backbone of another model (an imported ONNX file), with the ResNet encoder's decoder.
        case imported(ImportedEncoder)
    }
    public var encoder: Encoder
    /// C, H, W of the input.
    public var inputShape: Shape
    public var classes: Int
    /// TAO's `use_batch_norm` (the decoders' and the ResNet / VGG encoders' batch norms).
    public var useBatchNorm: Bool
    /// TAO's `all_projections` (ResNet encoders).
    public var allProjections = false
    public init(encoder: Encoder, inputShape: Shape, classes: Int, useBatchNorm: Bool = true) {
        self.encoder = encoder; self.inputShape = inputShape; self.classes = classes; self.useBatchNorm = useBatchNorm
    }
}

public enum UNet {
    /// The name of the output layer (never pruned).
    public static let head = "head"

    /// The spatial size of the output for an input of `height` × `width` (vanilla_unet's valid
    /// convolutions shrink it; every other model keeps it).
    public static func outputSize(_ encoder: UNetModelConfig.Encoder, height: Int, width: Int) -> (height: Int, width: Int) {
        guard encoder == .vanilla else { return (height, width) }
        // Four times: two valid 3×3 (−4), pool (/2); the bottom two (−4); four times up: ×2, −4.
        func f(_ n: Int) -> Int {
            var n = n
            for _ in 0..<4 { n = (n - 4) / 2 }
            n -= 4
            for _ in 0..<4 { n = n * 2 - 4 }
            return n
        }
        return (f(height), f(width))
    }

    public static func build(_ c: UNetModelConfig) throws -> Graph {
        var b = GraphBuilder()
        let image = b.input("image", c.inputShape)
        let (h, w) = (c.inputShape[1], c.inputShape[2])
        var multiple = c.encoder == .efficientnetB0 ? 32 : 16
        if case .imported(let e) = c.encoder { multiple = e.deepestStride }
        if c.encoder != .vanilla, h % multiple != 0 || w % multiple != 0 {
            throw ModelError.unsupported("the UNet's encoder halves its input \(Int(log2(Double(multiple)))) times: height and width must be multiples of \(multiple), got \(h)×\(w)")
        }
        let x: ValueID
        switch c.encoder {
        case .resnet(let depth): x = try resnet(&b, image, depth: depth, c)
        case .vgg(let depth): x = try vgg(&b, image, depth: depth, c)
        case .vanillaDynamic: x = vanillaDynamic(&b, image, c)
        case .vanilla: x = try vanilla(&b, image, c)
        case .efficientnetB0: x = try efficientnet(&b, image, c)
        case .imported(let e): x = try imported(&b, image, e, c)
        }
        return try b.build(outputs: [x])
    }

    /// Keras's 'same' padding of a transposed convolution of kernel k at stride 2: the full output
    /// (2n + k − 2) cropped to 2n, the odd row or column taken off the end.
    static func transposedSame(kernel: Int) -> Padding2D {
        let total = kernel - 2
        return Padding2D(top: total / 2, left: total / 2, bottom: total - total / 2, right: total - total / 2)
    }

    /// A convolution with bias, then batch norm where the spec has them, then ReLU (Keras's Conv2D,
    /// BatchNormalization, Activation).
    static func convBNReLU(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, out: Int, kernel: Int = 3, bn: Bool, bias: Bool = true) -> ValueID {
        var y = b.conv2d(x, "\(name).conv", out: out, kernel: kernel, padding: b.samePadding(x, kernel: kernel, stride: 1), bias: bias)
        if bn { y = b.batchNorm(y, "\(name).bn", epsilon: 1e-3, momentum: 0.99) }
        return b.relu(y, "\(name).relu")
    }

    /// TAO's ResNet encoder (no pooling: stages strided 2, 2, 2, 1, so the deepest map is at stride 16)
    /// with `upsample_block_other` ×4 (256, 128, 64, 64): a 4×4 transposed convolution at stride 2,
    /// concatenated with the stem's activation, block_1b and block_2b (block_1a / block_2a for
    /// ResNet-10), batch norm, ReLU, a 3×3 convolution, batch norm, ReLU; a 3×3 convolution to the classes.
    static func resnet(_ b: inout GraphBuilder, _ image: ValueID, depth: Int, _ c: UNetModelConfig) throws -> ValueID {
        var r = ResNetConfig(depth: depth, classes: 1, inputShape: c.inputShape, stemMaxPool: false)
        r.allProjections = c.allProjections
        r.useBatchNorm = c.useBatchNorm
        r.useBias = true   // TAO's ResNet template's default, which ResnetUnet keeps
        r.bnEpsilon = 1e-3
        let f = try ResNet.detectionBackbone(&b, image, r)
        let block = depth == 10 ? 0 : 1, relu = depth >= 50 ? "relu3" : "relu2"
        let skips = try ["layer2.\(block).\(relu)", "layer1.\(block).\(relu)", "relu"].map { name -> ValueID in
            guard let v = b.value(named: name) else { throw ModelError.unsupported("ResNet-\(depth) has no '\(name)' for the UNet's skip") }
            return v
        }
        var x = f.last!.value
        for (i, filters) in [256, 128, 64, 64].enumerated() {
            let name = "decoder\(i + 1)"
            x = b.convTranspose2d(x, "\(name).upconv", out: filters, kernel: 4, stride: 2, padding: transposedSame(kernel: 4), bias: true)
            if i < 3 { x = b.concat([x, skips[i]], "\(name).concat") }
            if c.useBatchNorm { x = b.batchNorm(x, "\(name).bn1", epsilon: 1e-3, momentum: 0.99) }
            x = b.relu(x, "\(name).relu1")
            x = convBNReLU(&b, x, "\(name).block", out: filters, bn: c.useBatchNorm)
        }
        return b.conv2d(x, head, out: c.classes, kernel: 3, padding: b.samePadding(x, kernel: 3, stride: 1), bias: true)
    }

    /// Another model's backbone (`ImportedEncoder`'s feature maps, its parameters under their own
    /// names) with the ResNet encoder's decoder: from the deepest map, a 4×4 transposed convolution
    /// at stride 2 (256 channels to stride 16, 128 to 8, 64 to 4 and 2, 32 to the input's size), the
    /// map of that stride concatenated where the backbone has one, batch norm, ReLU, a 3×3
    /// convolution, batch norm, ReLU; a 3×3 convolution to the classes.
    static func imported(_ b: inout GraphBuilder, _ image: ValueID, _ e: ImportedEncoder, _ c: UNetModelConfig) throws -> ValueID {
        let input = e.graph.shape(of: e.graph.inputs[0])
        guard input == c.inputShape else {
            throw ModelError.unsupported("\(e.source) was read for input \(input), the UNet's is \(c.inputShape)")
        }
        let maps = b.append(e.graph, inputs: [image], outputs: e.features.map(\.value))
        let skips = Dictionary(uniqueKeysWithValues: zip(e.features.map(\.stride), maps))
        var x = maps.last!, stride = e.deepestStride, level = 0
        while stride > 1 {
            stride /= 2; level += 1
            let filters = stride >= 16 ? 256 : stride == 8 ? 128 : stride >= 2 ? 64 : 32, name = "decoder\(level)"
            x = b.convTranspose2d(x, "\(name).upconv", out: filters, kernel: 4, stride: 2, padding: transposedSame(kernel: 4), bias: true)
            if let skip = skips[stride] { x = b.concat([x, skip], "\(name).concat") }
            if c.useBatchNorm { x = b.batchNorm(x, "\(name).bn1", epsilon: 1e-3, momentum: 0.99) }
            x = b.relu(x, "\(name).relu1")
            x = convBNReLU(&b, x, "\(name).block", out: filters, bn: c.useBatchNorm)
        }
        return b.conv2d(x, head, out: c.classes, kernel: 3, padding: b.samePadding(x, kernel: 3, stride: 1), bias: true)
    }

    /// TAO's VGG encoder (with pooling, as TAO's decoder reads the pools) and its decoder: the last
    /// block pooled to stride 32, then five times a 4×4 transposed convolution at stride 2 to the
    /// channels of the map it meets (block 4's pool, 3's, 2's, 1's, block 1's first convolution),
    /// the concatenation and two linear 3×3 convolutions; a 1×1 convolution to the classes.
    static func vgg(_ b: inout GraphBuilder, _ image: ValueID, depth: Int, _ c: UNetModelConfig) throws -> ValueID {
        var v = VGGConfig(depth: depth, classes: 1, inputShape: c.inputShape, batchNorm: c.useBatchNorm, template: .tao)
        v.usePooling = true
        let f = try VGG.taoBackbone(&b, image, v)
        var x = b.maxPoolSame(f.last!.value, "block5.pool", kernel: 2, stride: 2)
        let names = ["block4.pool", "block3.pool", "block2.pool", "block1.pool", "block1.conv1.act"]
        for (i, name) in names.enumerated() {
            guard let skip = b.value(named: name) else { throw ModelError.unsupported("VGG-\(depth) has no '\(name)' for the UNet's skip") }
            let ch = b.shape(skip)[0], d = "decoder\(i + 1)"
            x = b.convTranspose2d(x, "\(d).upconv", out: ch, kernel: 4, stride: 2, padding: transposedSame(kernel: 4), bias: true)
            x = b.concat([x, skip], "\(d).concat")
            x = b.conv2d(x, "\(d).conv1", out: ch, kernel: 3, padding: b.samePadding(x, kernel: 3, stride: 1), bias: true)
            x = b.conv2d(x, "\(d).conv2", out: ch, kernel: 3, padding: b.samePadding(x, kernel: 3, stride: 1), bias: true)
        }
        return b.conv2d(x, head, out: c.classes, kernel: 1, bias: true)
    }

    /// TAO's `vanilla_unet_dynamic`: five encoder blocks (32 … 512: two 'same' 3×3 convolutions with
    /// batch norm and ReLU, a 2×2 max pool), a 1024 centre, five decoder blocks (a 2×2 transposed
    /// convolution at stride 2, the skip concatenated in front, batch norm, ReLU, two convolutions);
    /// a 1×1 convolution to the classes.
    static func vanillaDynamic(_ b: inout GraphBuilder, _ image: ValueID, _ c: UNetModelConfig) -> ValueID {
        var x = image
        var skips: [ValueID] = []
        for (i, filters) in [32, 64, 128, 256, 512].enumerated() {
            x = convBNReLU(&b, x, "encoder\(i).conv1", out: filters, bn: c.useBatchNorm)
            x = convBNReLU(&b, x, "encoder\(i).conv2", out: filters, bn: c.useBatchNorm)
            skips.append(x)
            x = b.maxPool(x, "encoder\(i).pool", kernel: 2, stride: 2)
        }
        x = convBNReLU(&b, x, "center.conv1", out: 1024, bn: c.useBatchNorm)
        x = convBNReLU(&b, x, "center.conv2", out: 1024, bn: c.useBatchNorm)
        for (i, filters) in [512, 256, 128, 64, 32].enumerated() {
            let d = "decoder\(4 - i)"
            x = b.convTranspose2d(x, "\(d).upconv", out: filters, kernel: 2, stride: 2, bias: true)
            x = b.concat([skips[4 - i], x], "\(d).concat")
            if c.useBatchNorm { x = b.batchNorm(x, "\(d).bn1", epsilon: 1e-3, momentum: 0.99) }
            x = b.relu(x, "\(d).relu1")
            x = convBNReLU(&b, x, "\(d).conv1", out: filters, bn: c.useBatchNorm)
            x = convBNReLU(&b, x, "\(d).conv2", out: filters, bn: c.useBatchNorm)
        }
        return b.conv2d(x, head, out: c.classes, kernel: 1, bias: true)
    }

    /// The classic U-Net (TAO's `vanilla_unet`): valid 3×3 convolutions with ReLU, max pools, a 3×3
    /// transposed convolution ('same', stride 2, ReLU) up each level, the skip cropped to the map it
    /// joins; 388² out of 572² in.
    static func vanilla(_ b: inout GraphBuilder, _ image: ValueID, _ c: UNetModelConfig) throws -> ValueID {
        let (oh, ow) = outputSize(.vanilla, height: c.inputShape[1], width: c.inputShape[2])
        guard oh > 0, ow > 0 else {
            throw ModelError.unsupported("vanilla_unet's valid convolutions need a larger input than \(c.inputShape[1])×\(c.inputShape[2]) (TAO's is 572×572)")
        }
        func valid(_ x: ValueID, _ name: String, _ out: Int) -> ValueID {
            b.relu(b.conv2d(x, "\(name).conv", out: out, kernel: 3, padding: .zero, bias: true), "\(name).relu")
        }
        func up(_ x: ValueID, _ name: String, _ out: Int) -> ValueID {
            b.relu(b.convTranspose2d(x, "\(name).upconv", out: out, kernel: 3, stride: 2, padding: transposedSame(kernel: 3), bias: true), "\(name).uprelu")
        }
        func crop(_ skip: ValueID, to x: ValueID, _ name: String) -> ValueID {
            let (s, t) = (b.shape(skip), b.shape(x))
            let (dy, dx) = ((s[1] - t[1]) / 2, (s[2] - t[2]) / 2)
            let rows = b.node("\(name).crop_rows", .slice(Slice(axis: 2, start: dy, end: dy + t[1])), [skip])
            return b.node("\(name).crop_cols", .slice(Slice(axis: 3, start: dx, end: dx + t[2])), [rows])
        }
        var x = image
        var skips: [ValueID] = []
        for (i, filters) in [64, 128, 256, 512].enumerated() {
            x = valid(valid(x, "encoder\(i).conv1", filters), "encoder\(i).conv2", filters)
            skips.append(x)
            x = b.maxPool(x, "encoder\(i).pool", kernel: 2, stride: 2)
        }
        x = valid(valid(x, "center.conv1", 1024), "center.conv2", 1024)
        x = up(x, "center", 512)
        for (i, (filters, upTo)) in [(512, 256), (256, 128), (128, 64)].enumerated() {
            let d = "decoder\(3 - i)"
            x = b.concat([x, crop(skips[3 - i], to: x, d)], "\(d).concat")
            x = up(valid(valid(x, "\(d).conv1", filters), "\(d).conv2", filters), d, upTo)
        }
        x = b.concat([x, crop(skips[0], to: x, "decoder0")], "decoder0.concat")
        x = valid(valid(x, "decoder0.conv1", 64), "decoder0.conv2", 64)
        return b.conv2d(x, head, out: c.classes, kernel: 1, bias: true)
    }

    /// TAO's EfficientNet-B0 encoder (swish; stride 32 — TAO asks for stride 16, but its
    /// `force_stride16` rebinds a local and changes nothing) and its decoder: five times a 2×2
    /// transposed convolution at stride 2 (512, 256, 128, 64, 32), concatenated with the projections
    /// of blocks 5a, 3a, 2a and 1a, a 3×3 convolution with batch norm and ReLU, another (batch norm
    /// where the spec has them), ReLU; a 1×1 convolution to the classes.
    static func efficientnet(_ b: inout GraphBuilder, _ image: ValueID, _ c: UNetModelConfig) throws -> ValueID {
        let f = try EfficientNet.backbone(&b, image, EfficientNetConfig(variant: 0, classes: 1, inputShape: c.inputShape))
        let skips = try ["block5.0.project.bn", "block3.0.project.bn", "block2.0.project.bn", "block1.0.project.bn"].map { name -> ValueID in
            guard let v = b.value(named: name) else { throw ModelError.unsupported("EfficientNet-B0 has no '\(name)' for the UNet's skip") }
            return v
        }
        var x = f.last!.value
        for (i, filters) in [512, 256, 128, 64, 32].enumerated() {
            let d = "decoder\(i + 1)"
            x = b.convTranspose2d(x, "\(d).upconv", out: filters, kernel: 2, stride: 2, bias: true)
            if i < skips.count { x = b.concat([x, skips[i]], "\(d).concat") }
            x = convBNReLU(&b, x, "\(d).conv1", out: filters, bn: true, bias: false)
            x = convBNReLU(&b, x, "\(d).conv2", out: filters, bn: c.useBatchNorm, bias: false)
        }
        return b.conv2d(x, head, out: c.classes, kernel: 1, bias: true)
    }
}
