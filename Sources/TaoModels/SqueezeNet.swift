// SqueezeNet — Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
// <0.5MB model size" (2016), arXiv:1602.07360. Version 1.1, as torchvision builds it.
import TaoGraph

public enum SqueezeNet {
    public static func build(classes: Int = 1000, inputShape: Shape = [3, 224, 224], dropout: Float = 0.5) throws -> Graph {
        var b = GraphBuilder()
        /// Max pooling 3×3/2 with torchvision's ceil mode: pad the bottom/right edge when a window would be cut off.
        func pool(_ x: ValueID, _ name: String) -> ValueID {
            let s = b.shape(x)
            let extraH = (s[1] - 3) % 2 == 0 ? 0 : 1, extraW = (s[2] - 3) % 2 == 0 ? 0 : 1
            return b.node(name, .pool2d(Pool2D(.max, kernel: [3, 3], stride: [2, 2], padding: Padding2D(top: 0, left: 0, bottom: extraH, right: extraW))), [x])
        }
        func fire(_ x: ValueID, _ name: String, squeeze: Int, expand: Int) -> ValueID {
            let s = b.relu(b.conv2d(x, "\(name).squeeze", out: squeeze, kernel: 1, bias: true), "\(name).squeeze_activation")
            let e1 = b.relu(b.conv2d(s, "\(name).expand1x1", out: expand, kernel: 1, bias: true), "\(name).expand1x1_activation")
            let e3 = b.relu(b.conv2d(s, "\(name).expand3x3", out: expand, kernel: 3, bias: true), "\(name).expand3x3_activation")
            return b.concat([e1, e3], "\(name).concat")
        }
        var x = b.relu(b.conv2d(b.input("image", inputShape), "features.0", out: 64, kernel: 3, stride: 2, padding: .zero, bias: true), "features.1")
        x = pool(x, "features.2")
        x = fire(fire(x, "features.3", squeeze: 16, expand: 64), "features.4", squeeze: 16, expand: 64)
        x = pool(x, "features.5")
        x = fire(fire(x, "features.6", squeeze: 32, expand: 128), "features.7", squeeze: 32, expand: 128)
        x = pool(x, "features.8")
        x = fire(x, "features.9", squeeze: 48, expand: 192)
        x = fire(x, "features.10", squeeze: 48, expand: 192)
        x = fire(x, "features.11", squeeze: 64, expand: 256)
        x = fire(x, "features.12", squeeze: 64, expand: 256)
        if dropout > 0 { x = b.dropout(x, "classifier.0", rate: dropout) }
        x = b.relu(b.conv2d(x, "classifier.1", out: classes, kernel: 1, bias: true), "classifier.2")
        x = b.globalAveragePool(x, "classifier.3")
        return try b.build(outputs: [x])
    }
}
