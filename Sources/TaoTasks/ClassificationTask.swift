import Foundation
import TaoData
import TaoGraph
import TaoModels
import TaoRuntime
import TaoSpec
import TaoTrain

/// `tao classification train | evaluate | inference`, wired from a validated spec.
public struct ClassificationTask {
    public let config: ClassificationConfig
    public let specPath: String

    public init(specPath: String) throws {
        config = try ClassificationConfig(path: specPath)
        self.specPath = specPath
    }

    /// e.g. "resnet18", the prefix of checkpoint names.
    public var modelName: String { config.arch + (config.nLayers > 0 ? "\(config.nLayers)" : "") }

    public static func buildModel(_ c: ClassificationConfig, classes: Int) throws -> Graph {
        switch c.arch {
        case "resnet":
            var r = ResNetConfig(depth: c.nLayers, classes: classes, inputShape: Shape(c.inputShape), stemMaxPool: c.usePooling, dropout: c.dropout)
            r.template = .tao
            r.allProjections = c.allProjections; r.useBias = c.useBias; r.useBatchNorm = c.useBatchNorm
            r.bnEpsilon = c.bnEpsilon; r.bnMomentum = c.bnMomentum
            r.activation = activation(c, default: .relu)
            return try ResNet.build(r)
        case "googlenet":
            return try GoogLeNet.build(GoogLeNetConfig(classes: classes, inputShape: Shape(c.inputShape),
                                                       style: style(c, default: .relu), dropout: c.dropout > 0 ? c.dropout : 0.4))
        case "darknet", "cspdarknet", "cspdarknet_tiny":
            let variant: DarkNetConfig.Variant = c.arch == "darknet" ? .darknet : c.arch == "cspdarknet" ? .cspDarknet : .cspDarknetTiny
            var d = DarkNetConfig(variant, depth: c.nLayers, classes: classes, inputShape: Shape(c.inputShape),
                                  style: style(c, default: .leakyRelu(alpha: 0.1)))
            d.dropout = c.dropout
            return try DarkNet.build(d)
        case "efficientnet_b0", "efficientnet_b1":
            return try EfficientNet.build(EfficientNetConfig(variant: c.arch == "efficientnet_b1" ? 1 : 0, classes: classes, inputShape: Shape(c.inputShape),
                                                             style: style(c, default: .swish), dropout: c.dropout > 0 ? c.dropout : 0.2))
        case "mobilenet_v2":
            return try MobileNetV2.build(MobileNetV2Config(classes: classes, inputShape: Shape(c.inputShape), dropout: c.dropout))
        case "mobilenet_v1":
            return try MobileNetV1.build(classes: classes, inputShape: Shape(c.inputShape), dropout: c.dropout)
        case "vgg":
            var v = VGGConfig(depth: c.nLayers, classes: classes, inputShape: Shape(c.inputShape), batchNorm: c.useBatchNorm, dropout: c.dropout, template: .tao)
            v.usePooling = c.usePooling
            v.style = style(c, default: .relu)
            return try VGG.build(v)
        case "alexnet":
            return try AlexNet.build(classes: classes, inputShape: Shape(c.inputShape), dropout: c.dropout, template: .tao)
        case "squeezenet":
            return try SqueezeNet.build(classes: classes, inputShape: Shape(c.inputShape), dropout: c.dropout)
        default:
            throw TaskError("model_config.arch '\(c.arch)' is not available in tao-swift yet; see `tao classification validate` for the list")
        }
    }

    /// The spec's activation (TAO's `activation_type` with `alpha` from `activation_parameters`), or the architecture's own.
    static func activation(_ c: ClassificationConfig, default d: Activation) -> Activation {
        let alpha = c.activationParameters["alpha"]
        switch c.activation {
        case "relu": return .relu
        case "relu6": return .relu6
        case "leaky_relu": return .leakyRelu(alpha: alpha ?? 0.1)
        case "elu": return .elu(alpha: alpha ?? 1)
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "swish": return .swish
        case "hard_swish": return .hardSwish
        case "mish": return .mish
        default: return d
        }
    }

    static func style(_ c: ClassificationConfig, default d: Activation) -> ConvStyle {
        var s = ConvStyle(activation: activation(c, default: d), batchNorm: c.useBatchNorm, bias: c.useBias)
        s.bnEpsilon = c.bnEpsilon; s.bnMomentum = c.bnMomentum
        return s
    }

    func preprocessing(training: Bool) -> Preprocessing {
        let c = config
        var p = Preprocessing(channels: c.inputShape[0], height: c.inputShape[1], width: c.inputShape[2],
                              mode: Preprocessing.Mode(rawValue: c.preprocessMode.rawValue)!, mean: c.imageMean)
        p.bicubic = c.bicubic
        if training {
            p.randomCrop = c.randomCrop; p.horizontalFlip = c.horizontalFlip; p.colorAugmentation = c.colorAugmentation
        } else {
            p.centerCrop = c.centerCrop
        }
        return p
    }

    /// Names of parameters and batch-norm nodes that `freeze_blocks` and `freeze_bn` hold still.
    public func frozen(_ g: Graph) -> (params: Set<String>, batchNorms: Set<String>) {
        var prefixes: [String] = []
        for b in config.freezeBlocks {
            if config.arch == "resnet" { prefixes += b == 0 ? ["conv1.", "bn1."] : ["layer\(b)."] }
            else if config.arch == "alexnet" { prefixes.append("conv\(b).") }
            else if ["vgg", "googlenet", "darknet", "cspdarknet", "cspdarknet_tiny", "efficientnet_b0", "efficientnet_b1"].contains(config.arch) {
                prefixes.append("block\(b).")
            }
            else { prefixes.append("features.\(b).") }
        }
        return frozenLayers(g, prefixes: prefixes, freezeBN: config.freezeBN)
    }

    public func makeOptimizer() -> (any Optimizer, decay: Float) {
        switch config.optimizer {
        case let .sgd(_, momentum, nesterov, decay): (SGD(momentum: momentum, nesterov: nesterov), decay)
        case let .adam(_, b1, b2, eps, decay): (Adam(beta1: b1, beta2: b2, epsilon: eps), decay)
        case let .rmsprop(_, rho, eps, decay): (RMSprop(rho: rho, epsilon: eps), decay)
        }
    }

    var schedule: LearningRateSchedule {
        switch config.schedule {
        case let .step(lr, size, gamma): .step(lr: lr, stepSize: size, gamma: gamma)
        case let .softAnneal(lr, start, divider, points): .softAnneal(lr: lr, softStart: start, divider: divider, points: points)
        case let .cosine(lr, ratio, start): .cosine(lr: lr, minRatio: ratio, softStart: start)
        }
    }

    var regularizer: Regularizer? {
        func roles(_ scope: Set<String>) -> Set<ParameterRole> {
            var r = Set<ParameterRole>()
            if scope.contains("Conv2D") || scope.contains("DepthwiseConv2D") { r.insert(.convWeight) }
            if scope.contains("Dense") { r.insert(.denseWeight) }
            return r
        }
        switch config.regularization {
        case .none: return nil
        case let .l1(w, scope): return Regularizer(.l1, weight: w, scope: roles(scope))
        case let .l2(w, scope): return Regularizer(.l2, weight: w, scope: roles(scope))
        }
    }

    /// The parameters of the classifier head: those of the last node with parameters before the output.
    /// The graph with its classifier (the last dense layer) resized to `classes` outputs.
    static func replacingHead(_ g: Graph, classes: Int, source: String) throws -> Graph {
        guard let i = g.nodes.lastIndex(where: { if case .dense = $0.op { return true }; return false }),
              case .dense(var d) = g.nodes[i].op else { throw TaskError("\(source): no dense classifier layer to resize for \(classes) classes") }
        d.outFeatures = classes
        var nodes = g.nodes, params = g.parameters
        nodes[i].op = .dense(d)
        for v in g.nodes[i].inputs.dropFirst() {
            let k = v.index - g.inputs.count
            var dims = params[k].shape.dims
            dims[0] = classes
            params[k].shape = Shape(dims)
        }
        do {
            return try Graph(inputs: Array(zip(g.inputNames, g.inputs.map { g.shape(of: $0) })), parameters: params, nodes: nodes, outputs: g.outputs)
        } catch { throw TaskError("\(source): resizing the classifier to \(classes) classes breaks the graph: \(error)") }
    }

    static func headParameters(_ g: Graph) -> [String] {
        var v = g.outputs[0]
        while case .node(let i) = g.source(of: v) {
            let n = g.nodes[i]
            let params = n.inputs.compactMap { input -> String? in
                if case .parameter(let k) = g.source(of: input) { return g.parameters[k].name }
                return nil
            }
            if !params.isEmpty { return params }
            guard let first = n.inputs.first else { break }
            v = first
        }
        return []
    }

    /// Mixes each sample with the batch reversed: x ← λx + (1−λ)x', targets likewise. Returns the
    /// soft targets and each mixed image's dominant label.
    func mixup(_ x: UnsafeMutablePointer<Float>, labels: [Int], classes: Int, lambda: Float, perSample: Int) -> (soft: [Float], dominant: [Int]) {
        let n = labels.count
        let original = Array(UnsafeBufferPointer(start: x, count: n * perSample))
        var soft = [Float](repeating: 0, count: n * classes)
        for i in 0..<n {
            let j = n - 1 - i
            for k in 0..<perSample { x[i * perSample + k] = lambda * original[i * perSample + k] + (1 - lambda) * original[j * perSample + k] }
            soft[i * classes + labels[i]] += lambda
            soft[i * classes + labels[j]] += 1 - lambda
        }
        return (soft, lambda >= 0.5 ? labels : labels.reversed())
    }
}

/// Beta(α, α) from two Gamma(α) draws (Marsaglia–Tsang, boosted for α < 1).
func sampleBeta(_ a: Double, rng: inout SplitMix64) -> Double {
    func gamma(_ k: Double) -> Double {
        if k < 1 { return gamma(k + 1) * pow(max(rng.nextDouble(), 1e-12), 1 / k) }
        let d = k - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            let x = Double(rng.nextNormal()), v0 = 1 + c * x
            guard v0 > 0 else { continue }
            let v = v0 * v0 * v0, u = rng.nextDouble()
            if log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }
    let x = gamma(a), y = gamma(a)
    return x / (x + y)
}
