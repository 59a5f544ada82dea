// VGG — Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
// (ICLR 2015), arXiv:1409.1556. Layout and names as torchvision's vgg16/vgg19 (with optional batch norm).
import TaoGraph

public struct VGGConfig: Sendable {
    public var depth: Int
    public var classes: Int
    public var inputShape: Shape
    public var batchNorm: Bool
    public var dropout: Float
    public init(depth: Int, classes: Int = 1000, inputShape: Shape = [3, 224, 224], batchNorm: Bool = false, dropout: Float = 0.5) {
        self.depth = depth; self.classes = classes; self.inputShape = inputShape; self.batchNorm = batchNorm; self.dropout = dropout
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
