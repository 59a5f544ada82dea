import TaoGraph

/// Why a model cannot be built.
public enum ModelError: Error, CustomStringConvertible {
    case unsupported(String)
    public var description: String {
        switch self { case .unsupported(let m): "unsupported model: \(m)" }
    }
}

/// Named architectures, as the CLI and benchmarks refer to them: ResNet, VGG and AlexNet in
/// torchvision's recipes, for like-for-like comparisons with PyTorch; the others as TAO's templates
/// build them (MobileNets pad as torchvision does, and TAO's GoogLeNet, with its batch norms and 2×2
/// pools, is not torchvision's).
public enum Zoo {
    public static let names = ["resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2", "mobilenet_v1",
                               "vgg16", "vgg19", "alexnet", "squeezenet", "googlenet", "darknet19", "darknet53",
                               "cspdarknet19", "cspdarknet53", "cspdarknet_tiny", "efficientnet_b0", "efficientnet_b1"]

    public static func build(_ name: String, classes: Int, inputShape: Shape) throws -> Graph {
        switch name {
        case "resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152":
            return try ResNet.build(ResNetConfig(depth: Int(name.dropFirst(6))!, classes: classes, inputShape: inputShape))
        case "mobilenet_v2":
            return try MobileNetV2.build(MobileNetV2Config(classes: classes, inputShape: inputShape))
        case "mobilenet_v1":
            return try MobileNetV1.build(classes: classes, inputShape: inputShape)
        case "vgg16", "vgg19":
            return try VGG.build(VGGConfig(depth: Int(name.dropFirst(3))!, classes: classes, inputShape: inputShape))
        case "alexnet":
            return try AlexNet.build(classes: classes, inputShape: inputShape)
        case "squeezenet":
            return try SqueezeNet.build(classes: classes, inputShape: inputShape)
        case "googlenet":
            return try GoogLeNet.build(GoogLeNetConfig(classes: classes, inputShape: inputShape))
        case "darknet19", "darknet53":
            return try DarkNet.build(DarkNetConfig(.darknet, depth: Int(name.dropFirst(7))!, classes: classes, inputShape: inputShape))
        case "cspdarknet19", "cspdarknet53":
            return try DarkNet.build(DarkNetConfig(.cspDarknet, depth: Int(name.dropFirst(10))!, classes: classes, inputShape: inputShape))
        case "cspdarknet_tiny":
            return try DarkNet.build(DarkNetConfig(.cspDarknetTiny, classes: classes, inputShape: inputShape))
        case "efficientnet_b0", "efficientnet_b1":
            return try EfficientNet.build(EfficientNetConfig(variant: name.hasSuffix("b1") ? 1 : 0, classes: classes, inputShape: inputShape))
        default:
            throw ModelError.unsupported("'\(name)' (available: \(names.joined(separator: ", ")))")
        }
    }
}
