// DetectNet_v2 — NVIDIA's grid detector behind PeopleNet, TrafficCamNet, DashCamNet and FaceDetect
// (TAO Toolkit, nvidia_tao_tf1/cv/detectnet_v2/model): a stride-16 backbone and two 1×1
// convolutions per grid cell, a coverage map per class (sigmoid) and four box distances per class.
import TaoGraph

/// What DetectNet_v2's graph is built from.
public struct DetectNetV2ModelConfig: Sendable {
    public var backbone: ResNetConfig
    public var classes: Int
    public init(backbone: ResNetConfig, classes: Int) { self.backbone = backbone; self.classes = classes }
}

public enum DetectNetV2 {
    /// Output names, as TAO exports them (`output_cov/Sigmoid`, `output_bbox/BiasAdd`).
    public static let coverageOutput = "output_cov", boxOutput = "output_bbox"

    /// The graph: input "image" [C, H, W] (H and W multiples of 16), outputs coverage [classes, H/16, W/16]
    /// in (0, 1) and boxes [4·classes, H/16, W/16] (per class: distances to the left, top, right and
    /// bottom edges, in units of the objective's scale).
    public static func build(_ cfg: DetectNetV2ModelConfig) throws -> Graph {
        let s = cfg.backbone.inputShape
        guard s[1] % 16 == 0, s[2] % 16 == 0 else {
            throw ModelError.unsupported("DetectNet_v2 input \(s[1])×\(s[2]): height and width must be multiples of 16")
        }
        guard cfg.classes >= 1 else { throw ModelError.unsupported("DetectNet_v2 needs at least one class") }
        var b = GraphBuilder()
        let features = try ResNet.detectionBackbone(&b, b.input("image", s), cfg.backbone)
        guard let top = features.last, top.stride == 16 else {
            throw ModelError.unsupported("DetectNet_v2 needs a stride-16 backbone (use_pooling: false); this one ends at stride \(features.last?.stride ?? 0)")
        }
        let cov = b.activation(b.conv2d(top.value, coverageOutput, out: cfg.classes, kernel: 1, padding: .zero, bias: true), .sigmoid, "\(coverageOutput).sigmoid")
        let bbox = b.conv2d(top.value, boxOutput, out: 4 * cfg.classes, kernel: 1, padding: .zero, bias: true)
        return try b.build(outputs: [cov, bbox])
    }

    /// Parameter names of the heads: new when the backbone comes from a classifier; never pruned.
    public static let headLayers = [coverageOutput, boxOutput]
}
