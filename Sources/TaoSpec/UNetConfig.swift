import Foundation

/// A validated UNet experiment (TAO's unet `Experiment`): the spec's values with TAO's checks,
/// read once here. The first step of semantic segmentation: the spec is read and checked; the task
/// that trains on it is to come.
public struct UNetConfig: Sendable {
    /// Where an image set comes from: an image folder (with its mask folder), or TAO's data_sources,
    /// text files listing one image (or mask) path a line.
    public struct Split: Sendable, Equatable {
        public enum Source: Sendable, Equatable { case folder(String), listFile(String) }
        public var images: [Source]
        public var masks: [Source]
    }
    /// A class of the data: its name, the class it trains as, and its pixel value in the masks.
    public struct TargetClass: Sendable, Equatable {
        public var name: String, mappingClass: String, labelID: Int, weight: Float
    }
    public enum Schedule: Sendable, Equatable {
        case constant
        case cosineDecay(alpha: Float, steps: Int)
        case exponentialDecay(rate: Float, steps: Int)
    }

    public var seed: UInt64
    // model_config
    public var arch: String
    public var numLayers: Int
    /// C, H, W of the network input.
    public var inputShape: [Int]
    public var useBatchNorm: Bool, allProjections: Bool, freezeBN: Bool
    public var freezeBlocks: [Int]
    /// The head's activation: "softmax" (TAO's default) or "sigmoid".
    public var activation: String
    public var pretrainedModel: String?, prunedModel: String?
    // dataset_config
    public var imageType: String
    public var train: Split, val: Split?, test: Split?
    public var augment: Bool
    public var hflip: Float, vflip: Float, cropAndResizeProbability: Float, cropAndResizeRatio: Float, brightnessDelta: Float
    public var targetClasses: [TargetClass]
    /// The classes the network predicts: each distinct mapping_class, in the order of the label_id of
    /// the class it names (TAO's train ids).
    public var classes: [String]
    /// Mask pixel value (label_id) → index in `classes`.
    public var trainID: [Int: Int]
    /// Each predicted class's class_weight (that of the class its mapping_class names).
    public var classWeights: [Float]
    /// TAO's `preprocess` for color images: "" (0 … 255 as read), div_by_255 / min_max_0_1 (0 … 1)
    /// or min_max_-1_1; grayscale images are always scaled to −1 … 1.
    public var preprocess: String
    /// TAO's `resize_method` (BILINEAR, NEAREST_NEIGHBOR, BICUBIC, AREA) and `resize_padding`.
    public var resizeMethod: String, resizePadding: Bool
    // training_config
    public var batchSize: Int, epochs: Int, checkpointInterval: Int
    public var loss: String
    public var learningRate: Float
    public var adam: (beta1: Float, beta2: Float, epsilon: Float)
    public var regularizer: (type: String, weight: Float)?
    public var schedule: Schedule
    /// What the run does differently from TAO for fields it accepts.
    public var notes: [String] = []

    public static let architectures: [String: [Int]] = ["vanilla_unet": [], "vanilla_unet_dynamic": [], "resnet": [10, 18, 34, 50],
                                                       "vgg": [16, 19], "efficientnet_b0": [], "onnx": []]
    public static let losses = ["cross_entropy", "dice", "cross_dice_sum"]

    public init(path: String) throws { try self.init(text: SpecText(contentsOf: path)) }

    public init(text: SpecText) throws {
        let e = try text.decode(Tao_Unet_Experiment.self)
        let fail = text.error(at:_:)
        var pending: [String] = []
        func note(_ path: [String], _ message: String) { pending.append(text.note(at: path, message)) }
        seed = UInt64(e.randomSeed)

        // model_config
        guard e.hasModelConfig else { throw fail(["model_config"], "missing: the model (arch, num_layers, model_input_width / height / channels)") }
        let m = e.modelConfig
        arch = m.arch.isEmpty ? "resnet" : m.arch.lowercased()
        guard let depths = Self.architectures[arch] else {
            throw fail(["model_config", "arch"], "'\(m.arch)' is not one of TAO's UNet models (\(Self.architectures.keys.sorted().joined(separator: ", ")))")
        }
        numLayers = Int(m.numLayers)
        guard depths.isEmpty || depths.contains(numLayers) else {
            throw fail(["model_config", "num_layers"], "\(arch) comes with num_layers \(depths.map(String.init).joined(separator: ", ")); got \(numLayers)")
        }
        let (w, h, c) = (Int(m.modelInputWidth), Int(m.modelInputHeight), Int(m.modelInputChannels))
        guard c == 1 || c == 3 else { throw fail(["model_config", "model_input_channels"], "1 (grayscale) or 3 (color), got \(c)") }
        for (name, v) in [("model_input_width", w), ("model_input_height", h)] where v < 16 || (arch != "vanilla_unet" && arch != "onnx" && v % 16 != 0) {
            throw fail(["model_config", name], "\(v): the encoder halves the input four times, so it must be a multiple of 16 (and at least 16)")
        }
        inputShape = [c, h, w]
        useBatchNorm = m.useBatchNorm; allProjections = m.allProjections; freezeBN = m.freezeBn
        freezeBlocks = try m.freezeBlocks.map { b in
            guard b == b.rounded(), b >= 0 else { throw fail(["model_config", "freeze_blocks"], "block numbers are whole and not negative, got \(b)") }
            return Int(b)
        }
        activation = m.activation.isEmpty ? "softmax" : m.activation.lowercased()
        guard ["softmax", "sigmoid"].contains(activation) else { throw fail(["model_config", "activation"], "softmax or sigmoid, got \"\(m.activation)\"") }
        guard !m.enableQat else { throw fail(["model_config", "enable_qat"], "quantization-aware training is not available; train in fp32 and export with --data_type int8 (post-training calibration)") }
        guard m.trainingPrecision.backendFloatx != .float16 else {
            throw fail(["model_config", "training_precision", "backend_floatx"], "FLOAT16 training is for GPUs; use FLOAT32 (bf16 mixed precision is a flag of its own)")
        }
        guard m.byomModel.isEmpty else { throw fail(["model_config", "byom_model"], "BYOM models are not available; start from a tao-swift checkpoint or an ONNX file") }
        pretrainedModel = m.pretrainedModelFile.isEmpty ? nil : m.pretrainedModelFile
        prunedModel = m.prunedModelPath.isEmpty ? nil : m.prunedModelPath

        // dataset_config
        guard e.hasDatasetConfig else { throw fail(["dataset_config"], "missing: the images, masks and data_class_config") }
        let d = e.datasetConfig
        imageType = d.inputImageType.isEmpty ? (c == 1 ? "grayscale" : "color") : d.inputImageType.lowercased()
        // A grayscale image feeds one channel, or all three of a 3-channel model (as tao_tf1's own
        // ISBI test spec has it); a color image needs three.
        guard imageType == "grayscale" || (imageType == "color" && c == 3) else {
            throw fail(["dataset_config", "input_image_type"], "\"\(d.inputImageType)\" does not go with model_input_channels \(c) (color: 3; grayscale: 1, or 3 repeated)")
        }
        func split(_ name: String, images: String, masks: String, sources: [Tao_Unet_DataSource], field: String, needsMasks: Bool) throws -> Split? {
            if !sources.isEmpty {
                guard images.isEmpty else { throw fail(["dataset_config", "\(name)_images_path"], "give \(name)_images_path or \(field), not both") }
                for s in sources where s.imagePath.isEmpty || (needsMasks && s.masksPath.isEmpty) {
                    throw fail(["dataset_config", field], "each data_source needs image_path\(needsMasks ? " and masks_path" : "")")
                }
                return Split(images: sources.map { .listFile($0.imagePath) }, masks: sources.filter { !$0.masksPath.isEmpty }.map { .listFile($0.masksPath) })
            }
            guard !images.isEmpty else { return nil }
            guard !needsMasks || !masks.isEmpty else { throw fail(["dataset_config", "\(name)_masks_path"], "missing: the masks of \(name)_images_path") }
            return Split(images: [.folder(images)], masks: masks.isEmpty ? [] : [.folder(masks)])
        }
        guard let t = try split("train", images: d.trainImagesPath, masks: d.trainMasksPath, sources: d.trainDataSources.dataSource, field: "train_data_sources", needsMasks: true) else {
            throw fail(["dataset_config"], "missing: the training images and masks (train_images_path and train_masks_path, or train_data_sources)")
        }
        train = t
        val = try split("val", images: d.valImagesPath, masks: d.valMasksPath, sources: d.valDataSources.dataSource, field: "val_data_sources", needsMasks: true)
        test = try split("test", images: d.testImagesPath, masks: d.testMasksPath, sources: d.testDataSources.dataSource, field: "test_data_sources", needsMasks: false)
        augment = d.augment
        preprocess = d.preprocess
        guard ["", "div_by_255", "min_max_0_1", "min_max_-1_1"].contains(preprocess) else {
            throw fail(["dataset_config", "preprocess"], "\"\(d.preprocess)\" is not one of div_by_255, min_max_0_1, min_max_-1_1")
        }
        resizeMethod = d.resizeMethod.isEmpty ? "BILINEAR" : d.resizeMethod.uppercased()
        guard ["BILINEAR", "NEAREST_NEIGHBOR", "BICUBIC", "AREA"].contains(resizeMethod) else {
            throw fail(["dataset_config", "resize_method"], "\"\(d.resizeMethod)\" is not one of BILINEAR, NEAREST_NEIGHBOR, BICUBIC, AREA")
        }
        resizePadding = d.resizePadding
        if d.filterData { note(["dataset_config", "filter_data"], "every image is used; a mask with a pixel value no class names is an error naming the file") }
        let a = d.augmentationConfig
        (hflip, vflip) = (a.spatialAugmentation.hflipProbability, a.spatialAugmentation.vflipProbability)
        (cropAndResizeProbability, cropAndResizeRatio) = (a.spatialAugmentation.cropAndResizeProb, a.spatialAugmentation.cropAndResizeRatio)
        brightnessDelta = a.brightnessAugmentation.delta
        for (name, v) in [("hflip_probability", hflip), ("vflip_probability", vflip), ("crop_and_resize_prob", cropAndResizeProbability)] where !(0...1).contains(v) {
            throw fail(["dataset_config", "augmentation_config", "spatial_augmentation", name], "a probability in [0, 1], got \(v)")
        }

        // data_class_config (in dataset_config, as TAO's examples have it, or at the top level)
        let classPath = d.hasDataClassConfig ? ["dataset_config", "data_class_config"] : ["data_class_config"]
        let targets = d.hasDataClassConfig ? d.dataClassConfig.targetClasses : e.dataClassConfig.targetClasses
        guard !targets.isEmpty else { throw fail(classPath, "missing: the classes (target_classes with name, mapping_class and label_id)") }
        var seen: [Int: String] = [:]
        targetClasses = try targets.map { tc in
            guard !tc.name.isEmpty else { throw fail(classPath + ["target_classes"], "a target class without a name") }
            guard (0...255).contains(tc.labelID) else { throw fail(classPath + ["target_classes"], "'\(tc.name)': label_id \(tc.labelID) is not a mask pixel value (0 … 255)") }
            if let other = seen[Int(tc.labelID)] { throw fail(classPath + ["target_classes"], "'\(tc.name)' and '\(other)' both have label_id \(tc.labelID)") }
            seen[Int(tc.labelID)] = tc.name
            return TargetClass(name: tc.name, mappingClass: tc.mappingClass.isEmpty ? tc.name : tc.mappingClass, labelID: Int(tc.labelID),
                               weight: tc.classWeight == 0 ? 1 : tc.classWeight)
        }
        // TAO's build_target_class_list: a class trains as the label_id of the class its mapping_class
        // names; those ids, sorted, are the train ids 0, 1, ….
        var idOfName: [String: Int] = [:]
        for t in targetClasses where idOfName[t.name] == nil { idOfName[t.name] = t.labelID }
        var trainLabel: [Int: Int] = [:]   // label_id → the label_id it trains as
        var nameOfLabel: [Int: String] = [:]
        for t in targetClasses {
            guard let id = idOfName[t.mappingClass] else {
                throw fail(classPath + ["target_classes"], "'\(t.name)': mapping_class '\(t.mappingClass)' is not the name of a target class")
            }
            trainLabel[t.labelID] = id
            nameOfLabel[id] = t.mappingClass
        }
        let trainIDs = Set(trainLabel.values).sorted()
        classes = trainIDs.map { nameOfLabel[$0]! }
        let index = Dictionary(uniqueKeysWithValues: trainIDs.enumerated().map { ($1, $0) })
        trainID = trainLabel.mapValues { index[$0]! }
        let declared = targetClasses
        classWeights = trainIDs.map { id in declared.first { $0.labelID == id }?.weight ?? 1 }
        guard classes.count >= 2 || activation == "sigmoid" else {
            throw fail(classPath, "one class (\(classes.joined())): a softmax head needs two or more (add the background)")
        }

        // training_config
        let tc = e.trainingConfig
        batchSize = Int(tc.batchSize)
        guard batchSize >= 1 else { throw fail(["training_config", "batch_size"], "at least 1, got \(batchSize)") }
        epochs = Int(tc.epochs != 0 ? tc.epochs : tc.numEpochs)
        guard epochs >= 1 else { throw fail(["training_config", "epochs"], "missing: how many epochs to train") }
        checkpointInterval = max(1, Int(tc.checkpointInterval))
        loss = tc.loss.isEmpty ? "cross_entropy" : tc.loss.lowercased()
        guard Self.losses.contains(loss) else { throw fail(["training_config", "loss"], "\"\(tc.loss)\" is not one of \(Self.losses.joined(separator: ", "))") }
        learningRate = tc.learningRate
        guard learningRate > 0 else { throw fail(["training_config", "learning_rate"], "missing or not positive: \(learningRate)") }
        let o = tc.optimizer.adam
        adam = (o.beta1 == 0 ? 0.9 : o.beta1, o.beta2 == 0 ? 0.999 : o.beta2, o.epsilon == 0 ? 1e-7 : o.epsilon)
        switch tc.regularizer.type {
        case .l1: regularizer = ("L1", tc.regularizer.weight)
        case .l2: regularizer = ("L2", tc.regularizer.weight)
        default: regularizer = nil
        }
        switch tc.lrScheduler.lrScheduler {
        case .cosineDecay(let cd)?: schedule = .cosineDecay(alpha: cd.alpha, steps: Int(cd.decaySteps))
        case .exponentialDecay(let ed)?: schedule = .exponentialDecay(rate: ed.decayRate, steps: Int(ed.decaySteps))
        case nil: schedule = .constant
        }
        guard !tc.useAmp else { throw fail(["training_config", "use_amp"], "fp16 AMP is for GPUs; leave it out") }
        if tc.maxSteps != 0 { note(["training_config", "max_steps"], "the run is bounded by epochs; max_steps is not read") }
        if tc.useXla || tc.useTrt { note(["training_config", tc.useXla ? "use_xla" : "use_trt"], "XLA and TensorRT are TensorFlow's and NVIDIA's; not used") }
        if tc.weightsMonitor { note(["training_config", "weights_monitor"], "weight histograms are not written") }
        notes = pending
    }
}
