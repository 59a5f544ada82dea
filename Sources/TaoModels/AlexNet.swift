// AlexNet — Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
// Networks" (NeurIPS 2012); the single-tower variant of arXiv:1404.5997, as torchvision builds it.
import TaoGraph

public enum AlexNet {
    public static func build(classes: Int = 1000, inputShape: Shape = [3, 224, 224], dropout: Float = 0.5) throws -> Graph {
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
