// ResNet — He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), arXiv:1512.03385.
// Built as torchvision builds it (v1.5: stride on the 3×3 of bottlenecks), with torchvision's
// parameter names, so parameter counts and FLOPs compare like for like with PyTorch.
import TaoGraph

/// Configuration of a torchvision-style ResNet.
public struct ResNetConfig: Sendable {
    public var depth: Int
    public var classes: Int
    public var inputShape: Shape
    public init(depth: Int, classes: Int = 1000, inputShape: Shape = [3, 224, 224]) {
        self.depth = depth; self.classes = classes; self.inputShape = inputShape
    }

    var bottleneck: Bool { depth >= 50 }
    var blocks: [Int] {
        switch depth {
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
        guard !cfg.blocks.isEmpty else { throw ModelError.unsupported("resnet depth \(cfg.depth) (choose 18, 34, 50, 101 or 152)") }
        var b = GraphBuilder()
        var x = b.input("image", cfg.inputShape)
        x = b.conv2d(x, "conv1", out: 64, kernel: 7, stride: 2, padding: Padding2D(3))
        x = b.relu(b.batchNorm(x, "bn1"), "relu")
        x = b.maxPool(x, "maxpool", kernel: 3, stride: 2, padding: 1)
        for (stage, count) in cfg.blocks.enumerated() {
            let planes = 64 << stage
            for i in 0..<count {
                let stride = (i == 0 && stage > 0) ? 2 : 1
                let name = "layer\(stage + 1).\(i)"
                x = cfg.bottleneck ? bottleneck(&b, x, name, planes: planes, stride: stride)
                                   : basicBlock(&b, x, name, planes: planes, stride: stride)
            }
        }
        x = b.globalAveragePool(x, "avgpool")
        x = b.dense(x, "fc", out: cfg.classes)
        return try b.build(outputs: [x])
    }

    static func shortcut(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, out: Int, stride: Int) -> ValueID {
        guard stride != 1 || b.shape(x)[0] != out else { return x }
        let c = b.conv2d(x, "\(name).downsample.0", out: out, kernel: 1, stride: stride, padding: .zero)
        return b.batchNorm(c, "\(name).downsample.1")
    }

    static func basicBlock(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, planes: Int, stride: Int) -> ValueID {
        var y = b.conv2d(x, "\(name).conv1", out: planes, kernel: 3, stride: stride)
        y = b.relu(b.batchNorm(y, "\(name).bn1"), "\(name).relu1")
        y = b.batchNorm(b.conv2d(y, "\(name).conv2", out: planes, kernel: 3), "\(name).bn2")
        let s = shortcut(&b, x, name, out: planes, stride: stride)
        return b.relu(b.add(y, s, "\(name).add"), "\(name).relu2")
    }

    static func bottleneck(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, planes: Int, stride: Int) -> ValueID {
        var y = b.relu(b.batchNorm(b.conv2d(x, "\(name).conv1", out: planes, kernel: 1), "\(name).bn1"), "\(name).relu1")
        y = b.relu(b.batchNorm(b.conv2d(y, "\(name).conv2", out: planes, kernel: 3, stride: stride), "\(name).bn2"), "\(name).relu2")
        y = b.batchNorm(b.conv2d(y, "\(name).conv3", out: planes * 4, kernel: 1), "\(name).bn3")
        let s = shortcut(&b, x, name, out: planes * 4, stride: stride)
        return b.relu(b.add(y, s, "\(name).add"), "\(name).relu3")
    }
}
