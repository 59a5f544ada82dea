// ResNet — He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), arXiv:1512.03385.
// Two templates, with torchvision's parameter names:
// - TAO's (nvidia_tao_tf1/core/templates/resnet.py), what the tasks train: Keras 'same' padding
//   everywhere, a 1×1 projection on the first block of every stage, the stride on the first
//   convolution of a bottleneck (v1); `use_pooling` chooses between a 3×3/2 max pool after the stem
//   with stages strided 1, 2, 2, 2 and a 7×7 average pool at the end (stride 32), or no pools with
//   stages strided 2, 2, 2, 1 (stride 16);
// - torchvision's, what the benchmarks compare with PyTorch: padding (k − 1) / 2, projections only
//   where shapes change, the stride on a bottleneck's 3×3 (v1.5), stages strided 1, 2, 2, 2 with or
//   without the max pool.
import TaoGraph

/// Configuration of a ResNet.
public struct ResNetConfig: Sendable {
    public var depth: Int
    public var classes: Int
    public var inputShape: Shape
    /// TAO's `use_pooling`: max pool after the stem (see the templates above for the strides that go with it).
    public var stemMaxPool: Bool
    public var template: Template = .torchvision
    /// Dropout before the classifier (TAO's `dropout`).
    public var dropout: Float
    /// Project every shortcut with a 1×1 convolution, not only where shapes change (TAO's `all_projections`).
    public var allProjections = false
    /// Biases on the convolutions (TAO's `use_bias`) and batch norm after them (`use_batch_norm`).
    public var useBias = false
    public var useBatchNorm = true
    public var bnEpsilon: Float = 1e-5
    public var bnMomentum: Float = 0.9
    /// The activation after each batch norm (TAO's `activation`).
    public var activation: Activation = .relu
    public init(depth: Int, classes: Int = 1000, inputShape: Shape = [3, 224, 224], stemMaxPool: Bool = true, dropout: Float = 0) {
        self.depth = depth; self.classes = classes; self.inputShape = inputShape; self.stemMaxPool = stemMaxPool; self.dropout = dropout
    }

    var bottleneck: Bool { depth >= 50 }
    var blocks: [Int] {
        switch depth {
        case 10: [1, 1, 1, 1]
        case 18: [2, 2, 2, 2]
        case 34, 50: [3, 4, 6, 3]
        case 101: [3, 4, 23, 3]
        case 152: [3, 8, 36, 3]
        default: []
        }
    }
}

public enum ResNet {
    /// Builds the classifier graph with input "image" and output logits.
    public static func build(_ cfg: ResNetConfig) throws -> Graph {
        var b = GraphBuilder()
        let features = try backbone(&b, b.input("image", cfg.inputShape), cfg)
        var x = features.last!.value
        // TAO's template ends in a 7×7 'same' average pool (stride 7) when it pools; TAO's classifier then
        // averages what is left, as the global average pool does.
        if cfg.template == .tao && cfg.stemMaxPool { x = b.avgPoolSame(x, "avgpool_7x7", kernel: 7, stride: 7) }
        x = b.globalAveragePool(x, "avgpool")
        if cfg.dropout > 0 { x = b.dropout(x, "dropout", rate: cfg.dropout) }
        x = b.dense(x, "fc", out: cfg.classes)
        return try b.build(outputs: [x])
    }

    /// The feature extractor of TAO's detection tasks: TAO's template without its final pool; without
    /// `use_pooling` the first stage strides 2 in place of the stem's max pool and the last keeps
    /// stride 1, so the deepest map is at stride 16; with it, max pool then strides 1, 2, 2, 2
    /// (stride 32). Returns block_1 … block_4 with their strides.
    public static func detectionBackbone(_ b: inout GraphBuilder, _ image: ValueID, _ cfg: ResNetConfig) throws -> [FeatureMap] {
        var cfg = cfg
        cfg.template = .tao
        return try backbone(&b, image, cfg)
    }

    /// The first block's stride in each stage.
    static func stageStrides(_ cfg: ResNetConfig) -> [Int] {
        cfg.template == .tao && !cfg.stemMaxPool ? [2, 2, 2, 1] : [1, 2, 2, 2]
    }

    /// Stem, then the four stages; each stage's output as a feature map.
    static func backbone(_ b: inout GraphBuilder, _ image: ValueID, _ cfg: ResNetConfig) throws -> [FeatureMap] {
        guard !cfg.blocks.isEmpty else { throw ModelError.unsupported("resnet depth \(cfg.depth) (choose 10, 18, 34, 50, 101 or 152)") }
        let stageStrides = stageStrides(cfg)
        var x = b.conv2d(image, "conv1", out: 64, kernel: 7, stride: 2, padding: padding(&b, image, kernel: 7, stride: 2, cfg), bias: cfg.useBias)
        x = b.act(cfg, norm(&b, x, "bn1", cfg), "relu")
        var stride = 2
        if cfg.stemMaxPool {
            x = cfg.template == .tao ? b.maxPoolSame(x, "maxpool", kernel: 3, stride: 2) : b.maxPool(x, "maxpool", kernel: 3, stride: 2, padding: 1)
            stride *= 2
        }
        var features: [FeatureMap] = []
        for (stage, count) in cfg.blocks.enumerated() {
            let planes = 64 << stage
            for i in 0..<count {
                let s = i == 0 ? stageStrides[stage] : 1
                let name = "layer\(stage + 1).\(i)"
                // TAO projects the shortcut of every stage's first block; torchvision only where the shape changes.
                let project = cfg.allProjections || (cfg.template == .tao && i == 0)
                x = cfg.bottleneck ? bottleneck(&b, x, name, planes: planes, stride: s, project: project, cfg)
                                   : basicBlock(&b, x, name, planes: planes, stride: s, project: project, cfg)
            }
            stride *= stageStrides[stage]
            features.append(FeatureMap(name: "block_\(stage + 1)", value: x, stride: stride, channels: b.shape(x)[0]))
        }
        return features
    }

    /// Keras's 'same' padding in TAO's template; (k − 1) / 2 on every side in torchvision's.
    static func padding(_ b: inout GraphBuilder, _ x: ValueID, kernel: Int, stride: Int, _ cfg: ResNetConfig) -> Padding2D {
        cfg.template == .tao ? b.samePadding(x, kernel: kernel, stride: stride) : Padding2D((kernel - 1) / 2)
    }

    static func norm(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, _ cfg: ResNetConfig) -> ValueID {
        cfg.useBatchNorm ? b.batchNorm(x, name, epsilon: cfg.bnEpsilon, momentum: cfg.bnMomentum) : x
    }

    static func shortcut(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, out: Int, stride: Int, project: Bool, _ cfg: ResNetConfig) -> ValueID {
        guard project || stride != 1 || b.shape(x)[0] != out else { return x }
        let c = b.conv2d(x, "\(name).downsample.0", out: out, kernel: 1, stride: stride, padding: .zero, bias: cfg.useBias)
        return norm(&b, c, "\(name).downsample.1", cfg)
    }

    static func basicBlock(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, planes: Int, stride: Int, project: Bool, _ cfg: ResNetConfig) -> ValueID {
        var y = b.conv2d(x, "\(name).conv1", out: planes, kernel: 3, stride: stride, padding: padding(&b, x, kernel: 3, stride: stride, cfg), bias: cfg.useBias)
        y = b.act(cfg, norm(&b, y, "\(name).bn1", cfg), "\(name).relu1")
        y = norm(&b, b.conv2d(y, "\(name).conv2", out: planes, kernel: 3, bias: cfg.useBias), "\(name).bn2", cfg)
        let s = shortcut(&b, x, name, out: planes, stride: stride, project: project, cfg)
        return b.act(cfg, b.add(y, s, "\(name).add"), "\(name).relu2")
    }

    /// TAO's template strides the first 1×1 (ResNet v1), torchvision's the 3×3 (v1.5).
    static func bottleneck(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, planes: Int, stride: Int, project: Bool, _ cfg: ResNetConfig) -> ValueID {
        let (s1, s3) = cfg.template == .tao ? (stride, 1) : (1, stride)
        var y = b.act(cfg, norm(&b, b.conv2d(x, "\(name).conv1", out: planes, kernel: 1, stride: s1, padding: .zero, bias: cfg.useBias), "\(name).bn1", cfg), "\(name).relu1")
        y = b.conv2d(y, "\(name).conv2", out: planes, kernel: 3, stride: s3, padding: padding(&b, y, kernel: 3, stride: s3, cfg), bias: cfg.useBias)
        y = b.act(cfg, norm(&b, y, "\(name).bn2", cfg), "\(name).relu2")
        y = norm(&b, b.conv2d(y, "\(name).conv3", out: planes * 4, kernel: 1, bias: cfg.useBias), "\(name).bn3", cfg)
        let s = shortcut(&b, x, name, out: planes * 4, stride: stride, project: project, cfg)
        return b.act(cfg, b.add(y, s, "\(name).add"), "\(name).relu3")
    }
}

extension GraphBuilder {
    /// The configured activation of a ResNet (ReLU unless the spec asks otherwise).
    mutating func act(_ cfg: ResNetConfig, _ x: ValueID, _ name: String) -> ValueID { activation(x, cfg.activation, name) }
}
