import Foundation

/// A validated YOLOv3, YOLOv4 or YOLOv4-tiny experiment (TAO's yolo_v3 / yolo_v4 `Experiment`):
/// the spec's values with TAO's checks and defaults, every field tao-swift does not act on refused
/// by name, checked once here.
public struct YOLOConfig: Sendable {
    /// The three commands, which read the same spec but for their model message.
    public enum Flavor: String, Sendable, CaseIterable {
        case v3 = "yolo_v3", v4 = "yolo_v4", v4Tiny = "yolo_v4_tiny"
        /// How many heads (anchor groups) the model has: big, mid (and small).
        public var heads: Int { self == .v4Tiny ? 2 : 3 }
        var configField: String { self == .v3 ? "yolov3_config" : "yolov4_config" }
    }
    /// Where frames come from: a KITTI label folder with its images, or TFRecords from dataset_convert.
    public enum Labels: Sendable, Equatable { case kitti(String), tfrecords(String) }
    public struct DataSource: Sendable, Equatable { public var labels: Labels; public var images: String }
    public enum Optimizer: Sendable, Equatable {
        case adam(beta1: Float, beta2: Float, epsilon: Float)
        case sgd(momentum: Float, nesterov: Bool)
        case rmsprop(rho: Float, momentum: Float, epsilon: Float)
    }
    public enum Schedule: Sendable, Equatable {
        case softStartAnnealing(min: Float, max: Float, softStart: Float, annealing: Float)
        case softStartCosine(min: Float, max: Float, softStart: Float)
    }

    public var flavor: Flavor
    public var seed: UInt64
    // dataset_config
    public var sources: [DataSource]
    public var validationSources: [DataSource]
    public var validationFold: Int?
    public var classMapping: [String: String]
    /// TAO's class order: the sorted target classes.
    public var classes: [String]
    public var includeDifficult: Bool
    public var imageExtension: String
    // augmentation_config
    public var inputShape: [Int]          // C, H, W
    public var hue: Float, saturation: Float, exposure: Float
    public var vflip: Float, hflip: Float, jitter: Float
    public var randomizeInputShapePeriod: Int
    /// `training_config.model_ema`: validate and save a moving average of the weights.
    public var modelEMA = false
    public var mosaicProbability: Float, mosaicMinRatio: Float
    /// The mean subtracted from each input channel (B, G, R for colour; one value for grayscale), 0…255.
    public var imageMean: [Float]
    // yolov3_config / yolov4_config
    /// Anchor (width, height) pairs in input pixels, per head: big (stride 32), mid (16), small (8).
    public var anchors: [[AnchorShapes.Shape]]
    public var arch: String
    public var nlayers: Int
    public var archConvBlocks: Int
    public var neutralBoxIoU: Float
    public var boxMatchingIoU: Float
    public var locWeight: Float, negativeObjectWeight: Float, classWeight: Float
    public var freezeBlocks: [Int]
    public var freezeBN: Bool
    public var forceReLU: Bool
    /// The backbone's activation (YOLOv4's `activation`; empty for the architecture's own).
    public var activation: String
    public var focalAlpha: Float, focalGamma: Float
    public var labelSmoothing: Float
    /// Per head, big first: YOLOv4's `*_grid_xy_extend` (0 for YOLOv3).
    public var gridXYExtend: [Float]
    /// Per class (in `classes` order): class_weighting_config's weights, 1 when unset.
    public var classWeights: [Float]
    /// class_weighting_config.enable_auto (YOLOv4): weights re-derived from each class's loss per
    /// matched anchor as training goes (TAO's AutoClassWeighting callback).
    public var autoClassWeighting = false
    // training_config
    public var batchSize: Int
    public var epochs: Int
    public var schedule: Schedule
    public var optimizer: Optimizer
    public var regularizer: (kind: String, weight: Float)?
    public var checkpointInterval: Int
    public var pretrainedModel: String?
    public var prunedModel: String?
    // eval_config
    public var apMode: String   // "sample" | "integrate"
    public var evalBatchSize: Int
    public var matchingIoU: Float
    // nms_config
    public var confidenceThreshold: Float, nmsIoU: Float, topK: Int
    /// What the run does differently from TAO for fields it accepts (logged by every command).
    public var notes: [String] = []

    /// The backbones each flavour builds in tao-swift, with their depths (empty: no depth).
    public static func architectures(_ f: Flavor) -> [String: [Int]] {
        if f == .v4Tiny { return ["cspdarknet_tiny": []] }
        var a: [String: [Int]] = ["resnet": [10, 18, 34, 50, 101], "vgg": [16, 19], "darknet": [19, 53], "mobilenet_v1": [], "mobilenet_v2": [],
                                  "squeezenet": [], "googlenet": [], "efficientnet_b0": []]
        if f == .v4 { a["cspdarknet"] = [19, 53] }
        return a
    }

    /// The blocks `freeze_blocks` can name on a backbone (TAO's templates' `trainable=not(i in freeze_blocks)`
    /// indices, as far as the detectors build them).
    public static func freezableBlocks(_ arch: String) -> ClosedRange<Int> {
        switch arch {
        case "resnet": 0...4
        case "vgg": 1...5
        case "mobilenet_v1": 0...11
        case "mobilenet_v2": 0...13
        case "googlenet": 0...9
        case "efficientnet_b0": 0...7
        case "squeezenet": 0...9
        default: 0...5
        }
    }

    public init(path: String, flavor: Flavor) throws { try self.init(text: SpecText(contentsOf: path), flavor: flavor) }

    public init(text: SpecText, flavor: Flavor) throws {
        self.flavor = flavor
        let e = try text.decode(Tao_Yolo_Experiment.self)
        let fail = text.error(at:_:)
        var pending: [String] = []
        func note(_ path: [String], _ message: String) { pending.append(text.note(at: path, message)) }
        seed = UInt64(e.randomSeed)

        // dataset_config
        guard e.hasDatasetConfig else { throw fail(["dataset_config"], "missing: the labelled images to train on (data_sources { label_directory_path image_directory_path })") }
        let d = e.datasetConfig
        func source(_ s: Tao_Yolo_YOLOv3DataSource, _ field: String) throws -> DataSource {
            let root = s.rootPath
            func full(_ p: String) -> String { root.isEmpty || p.hasPrefix("/") ? p : (root as NSString).appendingPathComponent(p) }
            guard !s.imageDirectoryPath.isEmpty else { throw fail(["dataset_config", field, "image_directory_path"], "missing: the folder of the images") }
            switch s.labelsFormat {
            case .labelDirectoryPath(let p)?: return DataSource(labels: .kitti(full(p)), images: full(s.imageDirectoryPath))
            case .tfrecordsPath(let p)?: return DataSource(labels: .tfrecords(full(p)), images: full(s.imageDirectoryPath))
            case nil: throw fail(["dataset_config", field], "missing: label_directory_path (KITTI label files) or tfrecords_path (written by dataset_convert)")
            }
        }
        guard !d.dataSources.isEmpty else { throw fail(["dataset_config", "data_sources"], "missing: at least one data source (label_directory_path, image_directory_path)") }
        sources = try d.dataSources.map { try source($0, "data_sources") }
        validationSources = try d.validationDataSources.map { try source($0, "validation_data_sources") }
        func sameKind(_ s: [DataSource]) -> Bool { Set(s.map { if case .kitti = $0.labels { 0 } else { 1 } }).count <= 1 }
        guard sameKind(sources) else { throw fail(["dataset_config", "data_sources"], "all training sources must have the same label format (all label_directory_path or all tfrecords_path)") }
        guard sameKind(validationSources) else { throw fail(["dataset_config", "validation_data_sources"], "all validation sources must have the same label format") }
        if validationSources.isEmpty {
            guard case .tfrecords = sources[0].labels else {
                throw fail(["dataset_config", "validation_data_sources"], "missing: with KITTI label folders, name the validation images and labels (validation_fold needs TFRecords)")
            }
            validationFold = Int(d.validationFold)
        } else { validationFold = nil }
        let ext = d.imageExtension
        imageExtension = ext.isEmpty ? ".png" : (ext.hasPrefix(".") ? ext : "." + ext)
        if case .tfrecords = sources[0].labels, ext.isEmpty {
            throw fail(["dataset_config", "image_extension"], "missing: TFRecord frames name their images by id, so give the images' extension (e.g. \"png\")")
        }
        guard !d.targetClassMapping.isEmpty else { throw fail(["dataset_config", "target_class_mapping"], "missing: map the label names to the classes to detect") }
        classMapping = Dictionary(d.targetClassMapping.map { ($0.key.lowercased(), $0.value.lowercased()) }, uniquingKeysWith: { a, _ in a })
        classes = Array(Set(classMapping.values)).sorted()
        includeDifficult = d.includeDifficultInTraining
        guard d.type.isEmpty || d.type.lowercased() == "kitti" else { throw fail(["dataset_config", "type"], "only \"kitti\" labels are read by tao-swift, got \"\(d.type)\"") }
        guard !d.isMonochrome else { throw fail(["dataset_config", "is_monochrome"], "not available in tao-swift: set augmentation_config.output_channel: 1 for grayscale input") }

        // augmentation_config
        guard e.hasAugmentationConfig else { throw fail(["augmentation_config"], "missing: the network's input size (output_width, output_height, output_channel)") }
        let a = e.augmentationConfig
        let (w, h) = (Int(a.outputWidth), Int(a.outputHeight))
        for (name, v) in [("output_width", w), ("output_height", h)] where v < 32 || v % 32 != 0 {
            throw fail(["augmentation_config", name], "must be a multiple of 32 of at least 32 (YOLO's coarsest head has stride 32), got \(v)")
        }
        let channels = a.outputChannel == 0 ? 3 : Int(a.outputChannel)
        guard channels == 1 || channels == 3 else { throw fail(["augmentation_config", "output_channel"], "1 (grayscale) or 3 (colour), got \(channels)") }
        inputShape = [channels, h, w]
        guard a.outputDepth == 0 || a.outputDepth == 8 else { throw fail(["augmentation_config", "output_depth"], "only 8-bit images are read by tao-swift, got \(a.outputDepth)") }
        hue = a.hue; saturation = a.saturation; exposure = a.exposure
        guard (0...1).contains(hue) else { throw fail(["augmentation_config", "hue"], "must be within [0, 1], got \(hue)") }
        // TAO asserts saturation and exposure ≥ 1; a spec that leaves them out (0) means no change.
        if saturation == 0 { saturation = 1 }
        if exposure == 0 { exposure = 1 }
        guard saturation >= 1 else { throw fail(["augmentation_config", "saturation"], "must be at least 1.0, got \(saturation)") }
        guard exposure >= 1 else { throw fail(["augmentation_config", "exposure"], "must be at least 1.0, got \(exposure)") }
        vflip = a.verticalFlip; hflip = a.horizontalFlip; jitter = a.jitter
        for (name, v) in [("vertical_flip", vflip), ("horizontal_flip", hflip), ("jitter", jitter)] where !(0...1).contains(v) {
            throw fail(["augmentation_config", name], "must be within [0, 1], got \(v)")
        }
        randomizeInputShapePeriod = Int(a.randomizeInputShapePeriod)
        guard randomizeInputShapePeriod >= 0 else { throw fail(["augmentation_config", "randomize_input_shape_period"], "must not be negative") }
        mosaicProbability = a.mosaicProb; mosaicMinRatio = a.mosaicMinRatio
        if flavor == .v3, mosaicProbability != 0 || mosaicMinRatio != 0 {
            throw fail(["augmentation_config", mosaicProbability != 0 ? "mosaic_prob" : "mosaic_min_ratio"], "YOLOv3's augmentation has no mosaic (it is YOLOv4's)")
        }
        guard (0...1).contains(mosaicProbability) else { throw fail(["augmentation_config", "mosaic_prob"], "must be within [0, 1], got \(mosaicProbability)") }
        if mosaicProbability > 0, !(mosaicMinRatio > 0 && mosaicMinRatio < 0.5) {
            throw fail(["augmentation_config", "mosaic_min_ratio"], "must be in (0, 0.5) with mosaic_prob > 0, got \(mosaicMinRatio)")
        }
        let m = a.imageMean
        if m.isEmpty {
            imageMean = channels == 3 ? [103.939, 116.779, 123.68] : [117.3786]
        } else if channels == 3 {
            guard let b = m["b"], let g = m["g"], let r = m["r"] else { throw fail(["augmentation_config", "image_mean"], "'r', 'g' and 'b' must all be given for 3-channel input") }
            imageMean = [b, g, r]
        } else {
            guard let l = m["l"] else { throw fail(["augmentation_config", "image_mean"], "'l' must be given for 1-channel input") }
            imageMean = [l]
        }

        // yolov3_config / yolov4_config
        let field = flavor.configField
        let other = flavor == .v3 ? "yolov4_config" : "yolov3_config"
        if flavor == .v3 ? e.hasYolov4Config : e.hasYolov3Config {
            throw fail([other], "this is a \(flavor == .v3 ? "YOLOv4" : "YOLOv3") spec: run it with tao \(flavor == .v3 ? "yolo_v4" : "yolo_v3"), or write \(field)")
        }
        guard flavor == .v3 ? e.hasYolov3Config : e.hasYolov4Config else { throw fail([field], "missing: the model (arch, nlayers, anchor shapes)") }
        struct Model {
            var big = "", mid = "", small = "", neutral: Float = 0, matching: Float = 0, arch = "", nlayers = 0, blocks = 0
            var loc: Float = 0, neg: Float = 0, cls: Float = 0, freeze: [Float] = [], freezeBN = false, forceReLU = false
            var activation = "", alpha: Float = 0, gamma: Float = 0, smoothing: Float = 0, extend: [Float] = [0, 0, 0]
        }
        var y = Model()
        if flavor == .v3 {
            let c = e.yolov3Config
            y = Model(big: c.bigAnchorShape, mid: c.midAnchorShape, small: c.smallAnchorShape, neutral: c.matchingNeutralBoxIou, arch: c.arch,
                      nlayers: Int(c.nlayers), blocks: Int(c.archConvBlocks), loc: c.lossLocWeight, neg: c.lossNegObjWeights, cls: c.lossClassWeights,
                      freeze: c.freezeBlocks, freezeBN: c.freezeBn, forceReLU: c.forceRelu)
        } else {
            let c = e.yolov4Config
            y = Model(big: c.bigAnchorShape, mid: c.midAnchorShape, small: c.smallAnchorShape, neutral: c.matchingNeutralBoxIou, matching: c.boxMatchingIou,
                      arch: c.arch, nlayers: Int(c.nlayers), blocks: Int(c.archConvBlocks), loc: c.lossLocWeight, neg: c.lossNegObjWeights,
                      cls: c.lossClassWeights, freeze: c.freezeBlocks, freezeBN: c.freezeBn, forceReLU: c.forceRelu, activation: c.activation,
                      alpha: c.focalLossAlpha, gamma: c.focalLossGamma, smoothing: c.labelSmoothing,
                      extend: [c.bigGridXyExtend, c.midGridXyExtend, c.smallGridXyExtend])
        }
        var groups: [[AnchorShapes.Shape]] = []
        for (i, name) in ["big_anchor_shape", "mid_anchor_shape", "small_anchor_shape"].enumerated() {
            let s = [y.big, y.mid, y.small][i]
            if i >= flavor.heads {
                guard s.isEmpty else { throw fail([field, name], "YOLOv4-tiny has two heads (big and mid); leave small_anchor_shape out") }
                guard y.extend[i] == 0 else { throw fail([field, "small_grid_xy_extend"], "YOLOv4-tiny has two heads (big and mid); leave small_grid_xy_extend out") }
                continue
            }
            guard !s.isEmpty else { throw fail([field, name], "missing: the \(name.prefix(while: { $0 != "_" })) anchors, e.g. \"[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]\" (tao \(flavor.rawValue) kmeans prints them)") }
            groups.append(try AnchorShapes.parse(s, field: "\(field).\(name)", file: text.file, line: text.line(of: [field, name])))
        }
        anchors = groups
        arch = y.arch.lowercased()
        let archs = Self.architectures(flavor)
        guard let depths = archs[arch] else {
            throw fail([field, "arch"], arch.isEmpty ? "missing: the backbone (\(archs.keys.sorted().joined(separator: ", ")))"
                       : "\(flavor == .v4Tiny ? "YOLOv4-tiny" : flavor == .v3 ? "YOLOv3" : "YOLOv4") on '\(y.arch)' is not available in tao-swift yet; choose \(archs.keys.sorted().joined(separator: ", "))")
        }
        nlayers = y.nlayers
        guard depths.isEmpty || depths.contains(nlayers) else {
            throw fail([field, "nlayers"], "\(arch) comes with nlayers \(depths.map(String.init).joined(separator: ", ")); got \(nlayers)")
        }
        archConvBlocks = y.blocks
        guard (0...2).contains(archConvBlocks) else { throw fail([field, "arch_conv_blocks"], "0, 1 or 2, got \(archConvBlocks)") }
        if flavor != .v3, archConvBlocks != 0 { note([field, "arch_conv_blocks"], "YOLOv4's head has a fixed depth; arch_conv_blocks is YOLOv3's and is ignored, as TAO ignores it") }
        neutralBoxIoU = y.neutral; boxMatchingIoU = y.matching
        guard (0...1).contains(neutralBoxIoU) else { throw fail([field, "matching_neutral_box_iou"], "an IoU in [0, 1], got \(neutralBoxIoU)") }
        guard (0...1).contains(boxMatchingIoU) else { throw fail([field, "box_matching_iou"], "an IoU in [0, 1], got \(boxMatchingIoU)") }
        locWeight = y.loc; negativeObjectWeight = y.neg; classWeight = y.cls
        let archName = arch, freezable = Self.freezableBlocks(arch)
        freezeBlocks = try y.freeze.map { b in
            guard b == b.rounded(), freezable.contains(Int(b)) else {
                throw fail([field, "freeze_blocks"], "\(archName)'s block numbers are \(freezable.lowerBound) … \(freezable.upperBound), got \(b)")
            }
            return Int(b)
        }
        if arch == "squeezenet" && !freezeBlocks.isEmpty {
            note([field, "freeze_blocks"], "TAO's detectors build SqueezeNet without freeze_blocks; tao-swift freezes the fire modules named (0: conv1, N: fireN+1)")
        }
        freezeBN = y.freezeBN; forceReLU = y.forceReLU
        activation = y.activation.lowercased()
        guard ["", "leaky_relu", "relu", "mish"].contains(activation) else {
            throw fail([field, "activation"], "leaky_relu, relu or mish, got \"\(y.activation)\"")
        }
        focalAlpha = y.alpha; focalGamma = y.gamma; labelSmoothing = y.smoothing
        guard (0..<1).contains(labelSmoothing) else { throw fail([field, "label_smoothing"], "must be in [0, 1), got \(labelSmoothing)") }
        gridXYExtend = Array(y.extend.prefix(flavor.heads))
        for (i, v) in gridXYExtend.enumerated() where v < 0 {
            throw fail([field, ["big_grid_xy_extend", "mid_grid_xy_extend", "small_grid_xy_extend"][i]], "must not be negative, got \(v)")
        }
        let weighting = e.classWeightingConfig, targets = classes
        classWeights = targets.map { c in weighting.classWeighting.first { $0.key.lowercased() == c }?.value ?? 1 }
        if let bad = weighting.classWeighting.keys.first(where: { !targets.contains($0.lowercased()) }) {
            throw fail(["class_weighting_config", "class_weighting"], "'\(bad)' is not a target class (\(targets.joined(separator: ", ")))")
        }
        autoClassWeighting = weighting.enableAuto
        guard !autoClassWeighting || flavor != .v3 else { throw fail(["class_weighting_config", "enable_auto"], "automatic class weighting is YOLOv4's (TAO's YOLOv3 has none)") }

        // training_config
        guard e.hasTrainingConfig else { throw fail(["training_config"], "missing: batch_size_per_gpu, num_epochs, learning_rate, optimizer") }
        let t = e.trainingConfig
        batchSize = Int(t.batchSizePerGpu)
        guard batchSize >= 1 else { throw fail(["training_config", "batch_size_per_gpu"], "must be at least 1") }
        epochs = Int(t.numEpochs)
        guard epochs >= 1 else { throw fail(["training_config", "num_epochs"], "must be at least 1") }
        switch t.learningRate.learningRate {
        case .softStartAnnealingSchedule(let l):
            guard l.maxLearningRate > 0, l.minLearningRate > 0, l.minLearningRate <= l.maxLearningRate else {
                throw fail(["training_config", "learning_rate", "soft_start_annealing_schedule"], "needs 0 < min_learning_rate ≤ max_learning_rate")
            }
            guard (0...1).contains(l.softStart), (0...1).contains(l.annealing), l.softStart < l.annealing else {
                throw fail(["training_config", "learning_rate", "soft_start_annealing_schedule"], "soft_start and annealing are fractions of training with soft_start < annealing")
            }
            schedule = .softStartAnnealing(min: l.minLearningRate, max: l.maxLearningRate, softStart: l.softStart, annealing: l.annealing)
        case .softStartCosineAnnealingSchedule(let l):
            guard l.maxLearningRate > 0, l.minLearningRate >= 0, l.minLearningRate <= l.maxLearningRate else {
                throw fail(["training_config", "learning_rate", "soft_start_cosine_annealing_schedule"], "needs 0 ≤ min_learning_rate ≤ max_learning_rate, max_learning_rate > 0")
            }
            guard (0..<1).contains(l.softStart) else { throw fail(["training_config", "learning_rate", "soft_start_cosine_annealing_schedule", "soft_start"], "a fraction of training in [0, 1), got \(l.softStart)") }
            schedule = .softStartCosine(min: l.minLearningRate, max: l.maxLearningRate, softStart: l.softStart)
        case nil:
            throw fail(["training_config", "learning_rate"], "missing: soft_start_cosine_annealing_schedule { min_learning_rate max_learning_rate soft_start } or soft_start_annealing_schedule")
        }
        switch t.optimizer.optimizer {
        case .adam(let o):
            guard !o.amsgrad else { throw fail(["training_config", "optimizer", "adam", "amsgrad"], "AMSGrad is not available in tao-swift; set amsgrad: false") }
            optimizer = .adam(beta1: o.beta1 == 0 ? 0.9 : o.beta1, beta2: o.beta2 == 0 ? 0.999 : o.beta2, epsilon: o.epsilon == 0 ? 1e-7 : o.epsilon)
        case .sgd(let o): optimizer = .sgd(momentum: o.momentum, nesterov: o.nesterov)
        case .rmsprop(let o):
            guard !o.centered else { throw fail(["training_config", "optimizer", "rmsprop", "centered"], "centered RMSprop is not available in tao-swift; set centered: false") }
            optimizer = .rmsprop(rho: o.rho == 0 ? 0.9 : o.rho, momentum: o.momentum, epsilon: o.epsilon == 0 ? 1e-7 : o.epsilon)
        case nil: throw fail(["training_config", "optimizer"], "missing: adam { … }, sgd { … } or rmsprop { … }")
        }
        switch t.regularizer.type {
        case .noReg: regularizer = nil
        case .l1: regularizer = ("L1", t.regularizer.weight)
        case .l2: regularizer = ("L2", t.regularizer.weight)
        case .UNRECOGNIZED(let v): throw fail(["training_config", "regularizer", "type"], "unknown regularizer \(v)")
        }
        checkpointInterval = max(1, Int(t.checkpointInterval))
        switch t.loadModel {
        case .pretrainModelPath(let p)?: pretrainedModel = p; prunedModel = nil
        case .prunedModelPath(let p)?: prunedModel = p; pretrainedModel = nil
        case .resumeModelPath?:
            throw fail(["training_config", "resume_model_path"], "run train again on the same results folder to resume (or --init_epoch N); leave resume_model_path out")
        case nil: pretrainedModel = nil; prunedModel = nil
        }
        guard !t.enableQat else { throw fail(["training_config", "enable_qat"], "quantization-aware training is not available; train in fp32 and export with --data_type int8 (post-training calibration)") }
        guard !t.costScaling.enabled else { throw fail(["training_config", "cost_scaling"], "cost scaling is for FLOAT16 training, which the CPU does not do; leave it out") }
        guard !t.hasEarlyStopping else { throw fail(["training_config", "early_stopping"], "early stopping is not available in tao-swift yet; leave it out") }
        modelEMA = t.modelEma
        if t.visualizer.enabled { note(["training_config", "visualizer"], "TensorBoard images are written by every run; the visualizer's settings are not read") }

        // eval_config, nms_config
        let ev = e.evalConfig
        apMode = ev.averagePrecisionMode == .integrate ? "integrate" : "sample"
        evalBatchSize = max(1, Int(ev.batchSize))
        matchingIoU = ev.matchingIouThreshold == 0 ? 0.5 : ev.matchingIouThreshold
        guard matchingIoU > 0, matchingIoU <= 1 else { throw fail(["eval_config", "matching_iou_threshold"], "an IoU in (0, 1], got \(matchingIoU)") }
        guard e.hasNmsConfig else { throw fail(["nms_config"], "missing: confidence_threshold, clustering_iou_threshold, top_k") }
        let n = e.nmsConfig
        confidenceThreshold = n.confidenceThreshold
        nmsIoU = n.clusteringIouThreshold
        topK = n.topK == 0 ? 200 : Int(n.topK)
        guard (0..<1).contains(confidenceThreshold) else { throw fail(["nms_config", "confidence_threshold"], "must be in [0, 1), got \(confidenceThreshold)") }
        guard nmsIoU > 0, nmsIoU <= 1 else { throw fail(["nms_config", "clustering_iou_threshold"], "an IoU in (0, 1], got \(nmsIoU)") }
        notes = pending
    }
}
