// AlexNet — Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
// Networks" (NeurIPS 2012). Two templates:
// - TAO's (nvidia_tao_tf1/core/templates/alexnet.py with TAO classification's head), what the tasks
//   train: conv1 96 11×11/4, 3×3/2 max pool, conv2 256 5×5, max pool, conv3 384, conv4 384 and
//   conv5 256 3×3, all with bias, ReLU and Keras 'same' padding; then global average pooling and one
//   dense layer (about 4 M parameters);
// - torchvision's single tower (arXiv:1404.5997) with its 4096-wide dense layers, for the benchmarks.
import TaoGraph

public enum AlexNet {
    public static func build(classes: Int = 1000, inputShape: Shape = [3, 224, 224], dropout: Float = 0.5,
                             template: Template = .torchvision) throws -> Graph {
        template == .tao ? try tao(classes: classes, inputShape: inputShape, dropout: dropout)
                         : try torchvision(classes: classes, inputShape: inputShape, dropout: dropout)
    }

    /// TAO's template; layers named conv1 … conv5 (with `.conv` and `.act`), as `freeze_blocks` counts them.
    static func tao(classes: Int, inputShape: Shape, dropout: Float) throws -> Graph {
        var b = GraphBuilder()
        let style = ConvStyle(activation: .relu, batchNorm: false, bias: true)
        var x = b.input("image", inputShape)
        for (i, (out, kernel, stride)) in [(96, 11, 4), (256, 5, 1), (384, 3, 1), (384, 3, 1), (256, 3, 1)].enumerated() {
            x = b.convUnit(x, "conv\(i + 1)", out: out, kernel: kernel, stride: stride, style)
            if i < 2 { x = b.maxPoolSame(x, "pool\(i + 1)", kernel: 3, stride: 2) }
        }
        x = b.classifierHead(x, classes: classes, dropout: dropout)
        return try b.build(outputs: [x])
    }

    static func torchvision(classes: Int, inputShape: Shape, dropout: Float) throws -> Graph {
        var b = GraphBuilder()
        var x = b.input("image", inputShape)
        x = b.maxPool(b.relu(b.conv2d(x, "features.0", out: 64, kernel: 11, stride: 4, padding: Padding2D(2), bias: true), "features.1"), "features.2", kernel: 3, stride: 2)
        x = b.maxPool(b.relu(b.conv2d(x, "features.3", out: 192, kernel: 5, padding: Padding2D(2), bias: true), "features.4"), "features.5", kernel: 3, stride: 2)
        x = b.relu(b.conv2d(x, "features.6", out: 384, kernel: 3, bias: true), "features.7")
        x = b.relu(b.conv2d(x, "features.8", out: 256, kernel: 3, bias: true), "features.9")
        x = b.relu(b.conv2d(x, "features.10", out: 256, kernel: 3, bias: true), "features.11")
        x = b.maxPool(x, "features.12", kernel: 3, stride: 2)
        x = b.flatten(x, "flatten")
        if dropout > 0 { x = b.dropout(x, "classifier.0", rate: dropout) }
        x = b.relu(b.dense(x, "classifier.1", out: 4096), "classifier.2")
        if dropout > 0 { x = b.dropout(x, "classifier.3", rate: dropout) }
        x = b.relu(b.dense(x, "classifier.4", out: 4096), "classifier.5")
        x = b.dense(x, "classifier.6", out: classes)
        return try b.build(outputs: [x])
    }
}
