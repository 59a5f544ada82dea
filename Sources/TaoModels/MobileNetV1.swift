// MobileNet (v1) — Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
// Vision Applications" (2017), arXiv:1704.04861. Layout as TAO's template builds it (width
// multiplier 1; every 3×3 convolution padded by one pixel on each side, TAO's explicit
// ZeroPadding2D((1, 1)) before a 'valid' convolution, where Keras's own MobileNet pads stride-2
// convolutions only at the bottom and right). The classifier uses ReLU6; TAO's detectors build the
// template with its default ReLU and stop at stride 16 (without blocks 12 and 13).
import TaoGraph

public enum MobileNetV1 {
    public static func build(classes: Int = 1000, inputShape: Shape = [3, 224, 224], dropout: Float = 1e-3) throws -> Graph {
        var b = GraphBuilder()
        var x = backbone(&b, b.input("image", inputShape), stride: 32, activation: .relu6).last!.value
        x = b.globalAveragePool(x, "global_average_pooling")
        if dropout > 0 { x = b.dropout(x, "dropout", rate: dropout) }
        x = b.dense(x, "predictions", out: classes)
        return try b.build(outputs: [x])
    }

    /// The convolutions without a head, to total stride 16 or 32. Returns the depthwise units' outputs
    /// TAO's YOLO reads (`conv_dw_4_relu` at stride 8, `conv_dw_6_relu` at 16), then the last map ("last").
    public static func backbone(_ b: inout GraphBuilder, _ image: ValueID, stride total: Int, activation: Activation) -> [FeatureMap] {
        func convBN(_ x: ValueID, _ name: String, out: Int, kernel: Int, stride: Int, groups: Int = 1) -> ValueID {
            let pad = kernel == 1 ? Padding2D.zero : Padding2D(1)
            let c = b.conv2d(x, name, out: out, kernel: kernel, stride: stride, padding: pad, groups: groups)
            return b.activation(b.batchNorm(c, "\(name)_bn", epsilon: 1e-3, momentum: 0.99), activation, "\(name)_relu")
        }
        func feature(_ name: String, _ x: ValueID) -> FeatureMap {
            FeatureMap(name: name, value: x, stride: b.shape(image)[2] / b.shape(x)[2], channels: b.shape(x)[0])
        }
        var x = convBN(image, "conv1", out: 32, kernel: 3, stride: 2)
        var blocks: [(Int, Int)] = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1)]
        if total == 32 { blocks += [(1024, 2), (1024, 1)] }
        var features: [FeatureMap] = []
        for (i, (out, stride)) in blocks.enumerated() {
            x = convBN(x, "conv_dw_\(i + 1)", out: b.shape(x)[0], kernel: 3, stride: stride, groups: b.shape(x)[0])
            if i + 1 == 4 || i + 1 == 6 { features.append(feature("conv_dw_\(i + 1)_relu", x)) }
            x = convBN(x, "conv_pw_\(i + 1)", out: out, kernel: 1, stride: 1)
        }
        return features + [feature("last", x)]
    }
}
