// SqueezeNet — Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
// <0.5MB model size" (2016), arXiv:1602.07360. Built as TAO's template builds it
// (nvidia_tao_tf1/core/templates/squeezenet.py with TAO classification's dense head): a 7×7/2
// convolution of 96 filters, fire modules 2–9 with max pooling after conv1, fire4 and fire8, every
// convolution and pooling padded as Keras's 'same', Keras's Glorot-uniform weights, and global
// average pooling into a dense classifier.
import TaoGraph

public enum SqueezeNet {
    /// TAO's fire modules: (block id, squeeze filters, expand filters).
    static let fires = [(2, 16, 64), (3, 16, 64), (4, 32, 128), (5, 32, 128), (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256)]

    /// `dropout` > 0 adds dropout before the classifier (TAO's template has none in this place).
    public static func build(classes: Int = 1000, inputShape: Shape = [3, 224, 224], dropout: Float = 0) throws -> Graph {
        var b = GraphBuilder()
        b.weightInitializer = .glorotUniform   // the dense classifier too, as Keras's default
        var x = backbone(&b, b.input("image", inputShape)).last!.value
        x = b.flatten(b.globalAveragePool(x, "avg_pool"), "flatten")
        if dropout > 0 { x = b.dropout(x, "dropout", rate: dropout) }
        x = b.dense(x, "predictions", out: classes)
        return try b.build(outputs: [x])
    }

    /// conv1 and the fire modules (stride 16), with Keras's Glorot-uniform weights. Returns `fire8`
    /// (stride 8, before pool8; TAO's YOLO reads it) and the last map, fire9 ("last").
    public static func backbone(_ b: inout GraphBuilder, _ input: ValueID) -> [FeatureMap] {
        let initializer = b.weightInitializer
        b.weightInitializer = .glorotUniform
        defer { b.weightInitializer = initializer }
        func pool(_ x: ValueID, _ name: String) -> ValueID {
            b.maxPoolSame(x, name, kernel: 3, stride: 2)
        }
        func fire(_ x: ValueID, _ id: Int, squeeze: Int, expand: Int) -> ValueID {
            let s = b.relu(b.conv2d(x, "fire\(id).squeeze_conv", out: squeeze, kernel: 1, bias: true), "fire\(id).squeeze")
            let e1 = b.relu(b.conv2d(s, "fire\(id).expand_conv1x1", out: expand, kernel: 1, bias: true), "fire\(id).expand_1x1")
            let e3 = b.relu(b.conv2d(s, "fire\(id).expand_conv3x3", out: expand, kernel: 3, bias: true), "fire\(id).expand_3x3")
            return b.concat([e1, e3], "fire\(id)")
        }
        func feature(_ name: String, _ x: ValueID) -> FeatureMap {
            FeatureMap(name: name, value: x, stride: b.shape(input)[2] / b.shape(x)[2], channels: b.shape(x)[0])
        }
        var x = b.relu(b.conv2d(input, "conv1", out: 96, kernel: 7, stride: 2, padding: b.samePadding(input, kernel: 7, stride: 2), bias: true), "conv1_relu")
        x = pool(x, "pool1")
        var features: [FeatureMap] = []
        for (id, squeeze, expand) in fires {
            x = fire(x, id, squeeze: squeeze, expand: expand)
            if id == 8 { features.append(feature("fire8", x)) }
            if id == 4 || id == 8 { x = pool(x, "pool\(id)") }
        }
        return features + [feature("last", x)]
    }
}
