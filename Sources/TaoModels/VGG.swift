// VGG — Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
// (ICLR 2015), arXiv:1409.1556. Two templates:
// - TAO's (nvidia_tao_tf1/core/templates/vgg.py with TAO classification's head), what the tasks train:
//   blocks of 3×3 convolutions with Keras 'same' padding, each conv → (batch norm) → activation;
//   `use_pooling` puts a 2×2/2 max pool after blocks 1–4, or else the first convolution of blocks 2–5
//   strides 2; then global average pooling and one dense layer (about 15 M parameters, not 138 M);
// - torchvision's vgg16 / vgg19 (with optional batch norm), layout and names, for the benchmarks.
import TaoGraph

public struct VGGConfig: Sendable {
    public var depth: Int
    public var classes: Int
    public var inputShape: Shape
    public var batchNorm: Bool
    public var dropout: Float
    public var template: Template
    /// TAO's template: max pooling between blocks (`use_pooling`) or strided convolutions.
    public var usePooling = false
    /// TAO's template: activation, bias and batch-norm settings of each convolution.
    public var style: ConvStyle
    public init(depth: Int, classes: Int = 1000, inputShape: Shape = [3, 224, 224], batchNorm: Bool = false, dropout: Float = 0.5,
                template: Template = .torchvision) {
        self.depth = depth; self.classes = classes; self.inputShape = inputShape; self.batchNorm = batchNorm; self.dropout = dropout
        self.template = template
        style = ConvStyle(activation: .relu, batchNorm: batchNorm, bias: true)
    }
}

public enum VGG {
    public static func build(_ cfg: VGGConfig) throws -> Graph {
        let perStage: [Int]
        switch cfg.depth {
        case 11: perStage = [1, 1, 2, 2, 2]
        case 13: perStage = [2, 2, 2, 2, 2]
        case 16: perStage = [2, 2, 3, 3, 3]
        case 19: perStage = [2, 2, 4, 4, 4]
        default: throw ModelError.unsupported("vgg depth \(cfg.depth) (choose 16 or 19)")
        }
        return try cfg.template == .tao ? tao(cfg, perStage) : torchvision(cfg, perStage)
    }

    /// TAO's template; layers named `block<b>.conv<i>` (`.conv`, `.bn`, `.act`), as `freeze_blocks` counts them.
    static func tao(_ cfg: VGGConfig, _ perStage: [Int]) throws -> Graph {
        var b = GraphBuilder()
        let f = try taoBackbone(&b, b.input("image", cfg.inputShape), cfg)
        let x = b.classifierHead(f.last!.value, classes: cfg.classes, dropout: cfg.dropout)
        return try b.build(outputs: [x])
    }

    /// TAO's template without a head: each block's output, "block1" … "block5" (stride 16 at the
    /// end without `use_pooling`, 32 with it less the last pool: TAO pools after blocks 1–4 only).
    public static func taoBackbone(_ b: inout GraphBuilder, _ image: ValueID, _ cfg: VGGConfig) throws -> [FeatureMap] {
        let perStage: [Int]
        switch cfg.depth {
        case 16: perStage = [2, 2, 3, 3, 3]
        case 19: perStage = [2, 2, 4, 4, 4]
        default: throw ModelError.unsupported("TAO's vgg depth \(cfg.depth) (choose 16 or 19)")
        }
        var x = image
        var features: [FeatureMap] = []
        for (stage, n) in perStage.enumerated() {
            let width = min(64 << stage, 512)
            for i in 0..<n {
                let stride = i == 0 && stage > 0 && !cfg.usePooling ? 2 : 1
                x = b.convUnit(x, "block\(stage + 1).conv\(i + 1)", out: width, kernel: 3, stride: stride, cfg.style)
            }
            features.append(FeatureMap(name: "block\(stage + 1)", value: x, stride: b.shape(image)[2] / b.shape(x)[2], channels: width))
            if cfg.usePooling && stage < 4 { x = b.maxPoolSame(x, "block\(stage + 1).pool", kernel: 2, stride: 2) }
        }
        return features
    }

    static func torchvision(_ cfg: VGGConfig, _ perStage: [Int]) throws -> Graph {
        var b = GraphBuilder()
        var x = b.input("image", cfg.inputShape)
        var k = 0   // torchvision numbers the layers of `features` consecutively
        for (stage, n) in perStage.enumerated() {
            let width = min(64 << stage, 512)
            for _ in 0..<n {
                x = b.conv2d(x, "features.\(k)", out: width, kernel: 3, bias: true); k += 1
                if cfg.batchNorm { x = b.batchNorm(x, "features.\(k)"); k += 1 }
                x = b.relu(x, "features.\(k)"); k += 1
            }
            x = b.maxPool(x, "features.\(k)", kernel: 2, stride: 2); k += 1
        }
        x = b.flatten(x, "flatten")
        x = b.relu(b.dense(x, "classifier.0", out: 4096), "classifier.1")
        if cfg.dropout > 0 { x = b.dropout(x, "classifier.2", rate: cfg.dropout) }
        x = b.relu(b.dense(x, "classifier.3", out: 4096), "classifier.4")
        if cfg.dropout > 0 { x = b.dropout(x, "classifier.5", rate: cfg.dropout) }
        x = b.dense(x, "classifier.6", out: cfg.classes)
        return try b.build(outputs: [x])
    }
}
