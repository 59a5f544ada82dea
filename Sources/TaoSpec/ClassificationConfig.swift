import Foundation

/// A validated classification experiment: the spec's values with TAO's defaults applied, checked
/// once here so that the rest of the program can trust them.
public struct ClassificationConfig: Sendable {
    public enum Optimizer: Sendable, Equatable {
        case sgd(lr: Float, momentum: Float, nesterov: Bool, decay: Float)
        case adam(lr: Float, beta1: Float, beta2: Float, epsilon: Float, decay: Float)
        case rmsprop(lr: Float, rho: Float, epsilon: Float, decay: Float)
    }
    public enum Schedule: Sendable, Equatable {
        case step(learningRate: Float, stepSize: Int, gamma: Float)
        case softAnneal(learningRate: Float, softStart: Float, annealingDivider: Float, annealingPoints: [Float])
        case cosine(learningRate: Float, minLRRatio: Float, softStart: Float)
    }
    public enum Regularization: Sendable, Equatable { case none, l1(Float, scope: Set<String>), l2(Float, scope: Set<String>) }
    public enum PreprocessMode: String, Sendable { case caffe, torch, tf }

    // model_config
    public var arch: String
    public var nLayers: Int
    public var inputShape: [Int]          // C, H, W
    public var useBatchNorm: Bool
    public var useBias: Bool
    public var usePooling: Bool
    public var allProjections: Bool
    public var freezeBN: Bool
    public var freezeBlocks: [Int]
    public var retainHead: Bool
    public var dropout: Float
    public var bnMomentum: Float
    public var bnEpsilon: Float
    /// TAO's `activation_type`, lowercased; empty when the spec leaves it to the architecture.
    public var activation: String
    public var activationParameters: [String: Float]
    public var bicubic: Bool
    // train_config
    public var trainPath: String
    public var valPath: String
    public var pretrainedModelPath: String?
    public var optimizer: Optimizer
    public var schedule: Schedule
    public var regularization: Regularization
    public var batchSize: Int
    public var epochs: Int
    public var workers: Int
    public var seed: UInt64
    public var randomCrop: Bool
    public var centerCrop: Bool
    public var colorAugmentation: Bool
    public var horizontalFlip: Bool
    public var labelSmoothing: Float
    public var mixupAlpha: Float
    public var preprocessMode: PreprocessMode
    public var imageMean: [String: Float]
    // eval_config
    public var evalPath: String?
    public var evalModelPath: String?
    public var evalBatchSize: Int
    public var topK: Int

    /// Architectures and the depths TAO's table offers for each.
    public static let architectures: [String: [Int]] = [
        "resnet": [10, 18, 34, 50, 101], "vgg": [16, 19], "googlenet": [0], "alexnet": [0], "mobilenet_v1": [0],
        "mobilenet_v2": [0], "squeezenet": [0], "darknet": [19, 53], "cspdarknet": [19, 53], "cspdarknet_tiny": [0],
        "efficientnet_b0": [0], "efficientnet_b1": [0],
    ]

    /// Parses and validates a spec file.
    public init(path: String) throws {
        try self.init(text: SpecText(contentsOf: path))
    }

    public init(text: SpecText) throws {
        let e = try text.decode(Tao_Classification_Experiment.self)
        let fail = text.error(at:_:)
        guard e.hasModelConfig else { throw fail(["model_config"], "missing: every classification spec needs a model_config block") }
        guard e.hasTrainConfig else { throw fail(["train_config"], "missing: every classification spec needs a train_config block") }
        let m = e.modelConfig, t = e.trainConfig

        arch = m.arch.lowercased()
        guard let depths = Self.architectures[arch] else {
            throw fail(["model_config", "arch"], "unknown architecture '\(m.arch)'; choose one of \(Self.architectures.keys.sorted().joined(separator: ", "))")
        }
        nLayers = Int(m.nLayers)
        if depths != [0] && !depths.contains(nLayers) {
            throw fail(["model_config", "n_layers"], "\(arch) comes with n_layers \(depths.map(String.init).joined(separator: ", ")); got \(nLayers)")
        }
        let sizes = m.inputImageSize.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard sizes.count == 3, let c = sizes[0], let h = sizes[1], let w = sizes[2] else {
            throw fail(["model_config", "input_image_size"], "expected \"C,H,W\" such as \"3,224,224\", got \"\(m.inputImageSize)\"")
        }
        guard c == 1 || c == 3 else { throw fail(["model_config", "input_image_size"], "channels must be 1 (grayscale) or 3 (RGB), got \(c)") }
        guard h >= 16, w >= 16, h <= 4096, w <= 4096 else { throw fail(["model_config", "input_image_size"], "height and width must be between 16 and 4096, got \(h)x\(w)") }
        inputShape = [c, h, w]
        useBatchNorm = m.useBatchNorm
        useBias = m.useBias
        usePooling = m.usePooling
        allProjections = m.allProjections
        freezeBN = m.freezeBn
        freezeBlocks = m.freezeBlocks.map(Int.init)
        retainHead = m.retainHead
        dropout = m.dropout
        guard (0..<1).contains(dropout) else { throw fail(["model_config", "dropout"], "must be in [0, 1), got \(dropout)") }
        bnMomentum = m.hasBatchNormConfig && m.batchNormConfig.momentum > 0 ? m.batchNormConfig.momentum : 0.9
        bnEpsilon = m.hasBatchNormConfig && m.batchNormConfig.epsilon > 0 ? m.batchNormConfig.epsilon : 1e-3
        guard bnMomentum < 1 else { throw fail(["model_config", "batch_norm_config", "momentum"], "must be below 1, got \(bnMomentum)") }
        activation = m.activation.activationType.lowercased()
        activationParameters = m.activation.activationParameters
        let activations = ["", "relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "swish", "hard_swish", "mish"]
        guard activations.contains(activation) else {
            throw fail(["model_config", "activation", "activation_type"], "unknown activation '\(activation)'; choose one of \(activations.dropFirst().joined(separator: ", "))")
        }
        bicubic = m.resizeInterpolationMethod == .bicubic
        guard m.byomModel.isEmpty else { throw fail(["model_config", "byom_model"], "BYOM models are not supported; use pretrained_model_path with an ONNX file instead") }

        trainPath = t.trainDatasetPath
        valPath = t.valDatasetPath
        guard !trainPath.isEmpty else { throw fail(["train_config", "train_dataset_path"], "missing: the folder of training images") }
        guard !valPath.isEmpty else { throw fail(["train_config", "val_dataset_path"], "missing: the folder of validation images") }
        pretrainedModelPath = t.pretrainedModelPath.isEmpty ? nil : t.pretrainedModelPath
        guard t.hasOptimizer, let optim = t.optimizer.optim else { throw fail(["train_config", "optimizer"], "missing: choose sgd, adam or rmsprop") }
        switch optim {
        case .sgd(let o):
            guard o.lr >= 0, o.momentum >= 0, o.momentum < 1 else { throw fail(["train_config", "optimizer", "sgd"], "lr must be ≥ 0 and momentum in [0, 1)") }
            optimizer = .sgd(lr: o.lr, momentum: o.momentum, nesterov: o.nesterov, decay: o.decay)
        case .adam(let o):
            optimizer = .adam(lr: o.lr, beta1: o.beta1 > 0 ? o.beta1 : 0.9, beta2: o.beta2 > 0 ? o.beta2 : 0.999,
                              epsilon: o.epsilon > 0 ? o.epsilon : 1e-7, decay: o.decay)
        case .rmsprop(let o):
            optimizer = .rmsprop(lr: o.lr, rho: o.rho > 0 ? o.rho : 0.9, epsilon: o.epsilon > 0 ? o.epsilon : 1e-7, decay: o.decay)
        }
        guard t.hasLrConfig, let lr = t.lrConfig.lrScheduler else { throw fail(["train_config", "lr_config"], "missing: choose step, soft_anneal or cosine") }
        switch lr {
        case .step(let s):
            guard s.learningRate > 0 else { throw fail(["train_config", "lr_config", "step", "learning_rate"], "must be positive") }
            guard s.stepSize > 0 else { throw fail(["train_config", "lr_config", "step", "step_size"], "must be positive") }
            schedule = .step(learningRate: s.learningRate, stepSize: Int(s.stepSize), gamma: s.gamma)
        case .softAnneal(let s):
            guard s.learningRate > 0 else { throw fail(["train_config", "lr_config", "soft_anneal", "learning_rate"], "must be positive") }
            guard (0..<1).contains(s.softStart), s.annealingPoints.allSatisfy({ (0...1).contains($0) }), s.annealingPoints == s.annealingPoints.sorted() else {
                throw fail(["train_config", "lr_config", "soft_anneal"], "soft_start must be in [0, 1) and annealing_points increasing fractions of training")
            }
            schedule = .softAnneal(learningRate: s.learningRate, softStart: s.softStart,
                                   annealingDivider: s.annealingDivider > 0 ? s.annealingDivider : 10, annealingPoints: s.annealingPoints)
        case .cosine(let s):
            guard s.learningRate > 0 else { throw fail(["train_config", "lr_config", "cosine", "learning_rate"], "must be positive") }
            guard (0...1).contains(s.minLrRatio), (0..<1).contains(s.softStart) else {
                throw fail(["train_config", "lr_config", "cosine"], "min_lr_ratio must be in [0, 1] and soft_start in [0, 1)")
            }
            schedule = .cosine(learningRate: s.learningRate, minLRRatio: s.minLrRatio, softStart: s.softStart)
        }
        if t.hasRegConfig && !t.regConfig.type.isEmpty {
            let r = t.regConfig
            let scope = Set(r.scope.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            for s in scope where !["Conv2D", "Dense", "DepthwiseConv2D"].contains(s) {
                throw fail(["train_config", "reg_config", "scope"], "unknown scope '\(s)'; use Conv2D, DepthwiseConv2D and/or Dense")
            }
            guard r.weightDecay >= 0 else { throw fail(["train_config", "reg_config", "weight_decay"], "must be ≥ 0") }
            switch r.type.uppercased() {
            case "L1": regularization = .l1(r.weightDecay, scope: scope.isEmpty ? ["Conv2D", "Dense"] : scope)
            case "L2": regularization = .l2(r.weightDecay, scope: scope.isEmpty ? ["Conv2D", "Dense"] : scope)
            case "NONE": regularization = .none
            default: throw fail(["train_config", "reg_config", "type"], "unknown regularizer '\(r.type)'; use L1, L2 or None")
            }
        } else {
            regularization = .none
        }
        batchSize = Int(t.batchSizePerGpu)
        guard batchSize >= 1 else { throw fail(["train_config", "batch_size_per_gpu"], "must be at least 1") }
        epochs = Int(t.nEpochs)
        guard epochs >= 1 else { throw fail(["train_config", "n_epochs"], "must be at least 1") }
        workers = max(1, Int(t.nWorkers))
        seed = UInt64(t.randomSeed)
        randomCrop = t.enableRandomCrop
        centerCrop = t.enableCenterCrop
        colorAugmentation = t.enableColorAugmentation
        horizontalFlip = !t.disableHorizontalFlip
        labelSmoothing = t.labelSmoothing
        guard (0..<1).contains(labelSmoothing) else { throw fail(["train_config", "label_smoothing"], "must be in [0, 1), got \(labelSmoothing)") }
        mixupAlpha = t.mixupAlpha
        guard mixupAlpha >= 0 else { throw fail(["train_config", "mixup_alpha"], "must be ≥ 0") }
        let mode = t.preprocessMode.isEmpty ? "caffe" : t.preprocessMode.lowercased()
        guard let pm = PreprocessMode(rawValue: mode) else { throw fail(["train_config", "preprocess_mode"], "unknown mode '\(t.preprocessMode)'; use caffe, torch or tf") }
        preprocessMode = pm
        imageMean = t.imageMean
        for k in imageMean.keys where !["r", "g", "b", "l"].contains(k) {
            throw fail(["train_config", "image_mean"], "unknown channel '\(k)'; use r, g, b (or l for grayscale)")
        }
        guard !t.hasVisualizer || !t.visualizer.enabled else { throw fail(["train_config", "visualizer"], "TensorBoard visualization is not supported; the results folder has plots instead") }

        let ev = e.evalConfig
        evalPath = ev.evalDatasetPath.isEmpty ? nil : ev.evalDatasetPath
        evalModelPath = ev.modelPath.isEmpty ? nil : ev.modelPath
        evalBatchSize = ev.batchSize > 0 ? Int(ev.batchSize) : batchSize
        topK = ev.topK > 0 ? Int(ev.topK) : 5
    }
}
