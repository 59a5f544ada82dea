import Foundation

/// A validated DetectNet_v2 experiment (TAO's `Experiment` spec): the spec's values with TAO's
/// defaults applied and every field tao-swift does not act on refused by name, checked once here.
public struct DetectNetV2Config: Sendable {
    /// A training data source: TFRecords (a path whose last component may hold `*`) and the folder
    /// their `frame/id`s are relative to.
    public struct DataSource: Sendable, Equatable { public var tfrecords: String; public var images: String }
    public enum Validation: Sendable, Equatable { case fold(Int), source(DataSource) }
    public struct TargetClass: Sendable {
        public var name: String
        public var classWeight: Float, foregroundWeight: Float, coverageWeight: Float, boxWeight: Float
        // Rasterizer (bbox_rasterizer_config.target_class_config)
        public var covCenterX: Float, covCenterY: Float, covRadiusX: Float, covRadiusY: Float, minRadius: Float
        // Post-processing (postprocessing_config.target_class_config.clustering_config)
        public var coverageThreshold: Float, minimumBoxHeight: Int, nms: Bool
        public var dbscanEps: Float, dbscanMinSamples: Int, dbscanConfidence: Float
        public var nmsIoU: Float, nmsConfidence: Float
        // Evaluation
        public var minimumOverlap: Float
        public var evaluationBox: (minHeight: Int, maxHeight: Int, minWidth: Int, maxWidth: Int)?
    }

    public var seed: UInt64
    // dataset_config
    public var sources: [DataSource]
    public var imageExtension: String
    public var classMapping: [String: String]
    public var validation: Validation?
    // augmentation_config
    public var inputShape: [Int]          // C, H, W
    public var minBoxWidth: Float, minBoxHeight: Float
    public var crop: (left: Int, top: Int, right: Int, bottom: Int)?
    public var hflip: Float, vflip: Float, zoomMin: Float, zoomMax: Float, translateX: Float, translateY: Float
    public var rotateMax: Float, rotateProbability: Float
    public var colorShift: Float, hueRotation: Float, saturationShift: Float, contrastScale: Float, contrastCenter: Float
    // model_config
    public var arch: String
    public var numLayers: Int
    public var usePooling: Bool, useBatchNorm: Bool, allProjections: Bool, freezeBN: Bool
    public var freezeBlocks: [Int]
    public var dropout: Float
    public var pretrainedModel: String?
    public var boxScale: Float, boxOffset: Float
    // cost_function_config, bbox_rasterizer_config, postprocessing_config, evaluation_config, per class
    public var classes: [TargetClass]
    public var deadzone: Float
    public var autoWeighting: Bool
    // training_config
    public var batchSize: Int
    public var epochs: Int
    public var learningRate: (min: Float, max: Float, softStart: Float, annealing: Float)
    public var regularizer: (kind: String, weight: Float)?
    public var adam: (beta1: Float, beta2: Float, epsilon: Float)
    public var checkpointInterval: Int
    // evaluation_config
    public var validationPeriod: Int
    public var firstValidationEpoch: Int
    public var apMode: String   // "sample" | "integrate"
    /// What the run does differently from TAO for fields it accepts (logged by every command).
    public var notes: [String] = []

    /// Architectures of TAO's DetectNet_v2 table that tao-swift builds.
    public static let architectures: [String: [Int]] = ["resnet": [10, 18, 34, 50, 101]]

    public init(path: String) throws { try self.init(text: SpecText(contentsOf: path)) }

    public init(text: SpecText) throws {
        let e = try text.decode(Tao_DetectnetV2_Experiment.self)
        let fail = text.error(at:_:)
        seed = UInt64(e.randomSeed)

        // dataset_config
        guard e.hasDatasetConfig else { throw fail(["dataset_config"], "missing: the TFRecords to train on (dataset_config { data_sources { … } })") }
        let d = e.datasetConfig
        guard !d.dataSources.isEmpty else { throw fail(["dataset_config", "data_sources"], "missing: at least one data source (tfrecords_path, image_directory_path)") }
        sources = try d.dataSources.map { s in
            guard !s.tfrecordsPath.isEmpty else { throw fail(["dataset_config", "data_sources", "tfrecords_path"], "missing: the TFRecords written by dataset_convert") }
            guard !s.imageDirectoryPath.isEmpty else { throw fail(["dataset_config", "data_sources", "image_directory_path"], "missing: the folder the images' frame ids are relative to") }
            return DataSource(tfrecords: s.tfrecordsPath, images: s.imageDirectoryPath)
        }
        let ext = d.imageExtension.isEmpty ? "png" : d.imageExtension
        imageExtension = ext.hasPrefix(".") ? ext : "." + ext
        guard !d.targetClassMapping.isEmpty else { throw fail(["dataset_config", "target_class_mapping"], "missing: map the label names to the classes to detect") }
        classMapping = Dictionary(d.targetClassMapping.map { ($0.key.lowercased(), $0.value.lowercased()) }, uniquingKeysWith: { a, _ in a })
        switch d.datasetSplitType {
        case .validationFold(let f): validation = .fold(Int(f))
        case .validationDataSource(let s):
            guard !s.tfrecordsPath.isEmpty, !s.imageDirectoryPath.isEmpty else {
                throw fail(["dataset_config", "validation_data_source"], "needs tfrecords_path and image_directory_path")
            }
            validation = .source(DataSource(tfrecords: s.tfrecordsPath, images: s.imageDirectoryPath))
        case nil: validation = nil
        }
        guard d.dataloaderMode == .multisource, d.samplingMode == .userDefined else {
            throw fail(["dataset_config", d.dataloaderMode != .multisource ? "dataloader_mode" : "sampling_mode"], "not available in tao-swift: leave it out (sources are sampled in proportion to their sizes)")
        }

        // augmentation_config
        guard e.hasAugmentationConfig, e.augmentationConfig.hasPreprocessing else {
            throw fail(["augmentation_config", "preprocessing"], "missing: the network's input size (output_image_width, output_image_height)")
        }
        let a = e.augmentationConfig, p = a.preprocessing
        let (w, h) = (Int(p.outputImageWidth), Int(p.outputImageHeight))
        guard w >= 16, h >= 16, w % 16 == 0, h % 16 == 0 else {
            throw fail(["augmentation_config", "preprocessing", w % 16 != 0 || w < 16 ? "output_image_width" : "output_image_height"],
                       "width and height must be multiples of 16 (DetectNet_v2's grid has stride 16), got \(w)×\(h)")
        }
        let channels = p.outputImageChannel == 0 ? 3 : Int(p.outputImageChannel)
        guard channels == 1 || channels == 3 else { throw fail(["augmentation_config", "preprocessing", "output_image_channel"], "1 (grayscale) or 3 (RGB), got \(channels)") }
        inputShape = [channels, h, w]
        guard p.outputImageMin == 0, p.outputImageMax == 0, !p.enableAutoResize else {
            throw fail(["augmentation_config", "preprocessing", p.enableAutoResize ? "enable_auto_resize" : "output_image_min"], "not available in tao-swift: images are resized to output_image_width × output_image_height")
        }
        guard p.scaleWidth == 0 || p.scaleWidth == 1, p.scaleHeight == 0 || p.scaleHeight == 1 else {
            throw fail(["augmentation_config", "preprocessing", "scale_width"], "not available in tao-swift: leave scale_width and scale_height out")
        }
        minBoxWidth = p.minBboxWidth; minBoxHeight = p.minBboxHeight
        let anyCrop = p.cropLeft + p.cropTop + p.cropRight + p.cropBottom > 0
        if anyCrop {
            guard p.cropRight > p.cropLeft, p.cropBottom > p.cropTop else {
                throw fail(["augmentation_config", "preprocessing", "crop_right"], "the crop must have crop_right > crop_left and crop_bottom > crop_top")
            }
            crop = (Int(p.cropLeft), Int(p.cropTop), Int(p.cropRight), Int(p.cropBottom))
        } else { crop = nil }
        let s = a.spatialAugmentation, c = a.colorAugmentation
        hflip = s.hflipProbability; vflip = s.vflipProbability
        zoomMin = s.zoomMin == 0 ? 1 : s.zoomMin; zoomMax = s.zoomMax == 0 ? 1 : s.zoomMax
        guard zoomMin <= zoomMax else { throw fail(["augmentation_config", "spatial_augmentation", "zoom_min"], "zoom_min (\(zoomMin)) is above zoom_max (\(zoomMax))") }
        translateX = s.translateMaxX; translateY = s.translateMaxY
        rotateMax = s.rotateRadMax; rotateProbability = s.rotateProbability
        for (name, v) in [("hflip_probability", hflip), ("vflip_probability", vflip), ("rotate_probability", rotateProbability)] where !(0...1).contains(v) {
            throw fail(["augmentation_config", "spatial_augmentation", name], "a probability in [0, 1], got \(v)")
        }
        colorShift = c.colorShiftStddev; hueRotation = c.hueRotationMax; saturationShift = c.saturationShiftMax
        contrastScale = c.contrastScaleMax; contrastCenter = c.contrastCenter == 0 ? 0.5 : c.contrastCenter

        // model_config
        guard e.hasModelConfig else { throw fail(["model_config"], "missing: the backbone (arch, num_layers) and objective_set") }
        let m = e.modelConfig
        arch = m.arch.lowercased().isEmpty ? "resnet" : m.arch.lowercased()
        guard let depths = Self.architectures[arch] else {
            throw fail(["model_config", "arch"], "DetectNet_v2 on '\(m.arch)' is not available in tao-swift yet; choose \(Self.architectures.keys.sorted().joined(separator: ", "))")
        }
        numLayers = Int(m.numLayers)
        guard depths.contains(numLayers) else { throw fail(["model_config", "num_layers"], "\(arch) comes with num_layers \(depths.map(String.init).joined(separator: ", ")); got \(numLayers)") }
        usePooling = m.usePooling; useBatchNorm = m.useBatchNorm; allProjections = m.allProjections; freezeBN = m.freezeBn
        guard !usePooling else { throw fail(["model_config", "use_pooling"], "DetectNet_v2 needs a stride-16 backbone: set use_pooling: false (strided convolutions)") }
        freezeBlocks = try m.freezeBlocks.map { b in
            guard b == b.rounded(), b >= 0, b <= 4 else { throw fail(["model_config", "freeze_blocks"], "block numbers 0 … 4, got \(b)") }
            return Int(b)
        }
        dropout = m.dropoutRate
        guard (0..<1).contains(dropout) else { throw fail(["model_config", "dropout_rate"], "must be in [0, 1), got \(dropout)") }
        pretrainedModel = m.pretrainedModelFile.isEmpty ? nil : m.pretrainedModelFile
        guard m.trainingPrecision.backendFloatx == .float32 else {
            throw fail(["model_config", "training_precision", "backend_floatx"], "FLOAT16 is not available on the CPU; use FLOAT32 (or leave training_precision out)")
        }
        guard !m.loadGraph || pretrainedModel != nil else { throw fail(["model_config", "load_graph"], "load_graph needs pretrained_model_file") }
        guard m.activation.activationType.isEmpty || m.activation.activationType.lowercased() == "relu" else {
            throw fail(["model_config", "activation", "activation_type"], "DetectNet_v2's ResNet uses ReLU in tao-swift; leave activation out")
        }
        boxScale = m.objectiveSet.bbox.scale == 0 ? 35 : m.objectiveSet.bbox.scale
        boxOffset = m.objectiveSet.hasBbox ? m.objectiveSet.bbox.offset : 0.5
        for (name, input) in [("bbox", m.objectiveSet.bbox.input), ("cov", m.objectiveSet.cov.input)] where !input.isEmpty {
            throw fail(["model_config", "objective_set", name, "input"], "heads on an inner layer ('\(input)') are not available in tao-swift; leave input out")
        }

        // cost_function_config: the classes, in the network's order.
        let cost = e.costFunctionConfig
        guard !cost.targetClasses.isEmpty else { throw fail(["cost_function_config", "target_classes"], "missing: the classes to detect, with their weights") }
        let targets = Set(classMapping.values)
        let rasterizer = e.bboxRasterizerConfig.targetClassConfig
        let post = e.postprocessingConfig.targetClassConfig
        let ev = e.evaluationConfig
        classes = try cost.targetClasses.map { t in
            let name = t.name.lowercased()
            guard targets.contains(name) else {
                throw fail(["cost_function_config", "target_classes", "name"], "'\(t.name)' is no target of dataset_config.target_class_mapping (\(targets.sorted().joined(separator: ", ")))")
            }
            var cov: Float = 1, box: Float = 10
            for o in t.objectives {
                switch o.name.lowercased() {
                case "cov": cov = o.initialWeight
                case "bbox": box = o.initialWeight
                default: throw fail(["cost_function_config", "target_classes", "objectives", "name"], "unknown objective '\(o.name)'; DetectNet_v2 has cov and bbox")
                }
            }
            guard let r = rasterizer.first(where: { $0.key.lowercased() == name })?.value else {
                throw fail(["bbox_rasterizer_config", "target_class_config"], "missing: how to draw the class '\(t.name)' (cov_center_x, cov_radius_x, …)")
            }
            guard let pc = post.first(where: { $0.key.lowercased() == name })?.value else {
                throw fail(["postprocessing_config", "target_class_config"], "missing: how to cluster the class '\(t.name)' (clustering_config)")
            }
            let cl = pc.clusteringConfig
            guard cl.clusteringAlgorithm != .hybrid else { throw fail(["postprocessing_config", "target_class_config", "clustering_config", "clustering_algorithm"], "HYBRID is not available in tao-swift; use DBSCAN or NMS") }
            guard pc.confidenceConfig.confidenceModelFilename.isEmpty else {
                throw fail(["postprocessing_config", "target_class_config", "confidence_config", "confidence_model_filename"], "a confidence model is not available in tao-swift; leave it out (the summed coverage is the confidence)")
            }
            guard (0..<1).contains(cl.dbscanEps) || cl.clusteringAlgorithm == .nms else {
                throw fail(["postprocessing_config", "target_class_config", "clustering_config", "dbscan_eps"], "a distance 1 − IoU in [0, 1), got \(cl.dbscanEps)")
            }
            let box4 = ev.evaluationBoxConfig.first(where: { $0.key.lowercased() == name })?.value
            let overlap = ev.minimumDetectionGroundTruthOverlap.first(where: { $0.key.lowercased() == name })?.value ?? 0.5
            return TargetClass(name: name, classWeight: t.classWeight, foregroundWeight: t.coverageForegroundWeight, coverageWeight: cov, boxWeight: box,
                               covCenterX: r.covCenterX, covCenterY: r.covCenterY, covRadiusX: r.covRadiusX, covRadiusY: r.covRadiusY, minRadius: r.bboxMinRadius,
                               coverageThreshold: cl.coverageThreshold, minimumBoxHeight: Int(cl.minimumBoundingBoxHeight), nms: cl.clusteringAlgorithm == .nms,
                               dbscanEps: cl.dbscanEps, dbscanMinSamples: max(Int(cl.dbscanMinSamples), 1), dbscanConfidence: cl.dbscanConfidenceThreshold,
                               nmsIoU: cl.nmsIouThreshold, nmsConfidence: cl.nmsConfidenceThreshold, minimumOverlap: overlap,
                               evaluationBox: box4.map { (Int($0.minimumHeight), Int($0.maximumHeight), Int($0.minimumWidth), Int($0.maximumWidth)) })
        }
        if Set(classes.map(\.name)).count != classes.count { throw fail(["cost_function_config", "target_classes"], "a class is listed twice") }
        deadzone = e.bboxRasterizerConfig.deadzoneRadius
        autoWeighting = cost.enableAutoweighting
        if autoWeighting { notes.append("\(text.file):\(text.line(of: ["cost_function_config", "enable_autoweighting"]) ?? 0): enable_autoweighting is not available in tao-swift yet: the objectives keep their initial weights") }

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
            learningRate = (l.minLearningRate, l.maxLearningRate, l.softStart, l.annealing)
        case .earlyStoppingAnnealingSchedule:
            throw fail(["training_config", "learning_rate", "early_stopping_annealing_schedule"], "not available in tao-swift; use soft_start_annealing_schedule")
        case nil:
            throw fail(["training_config", "learning_rate"], "missing: soft_start_annealing_schedule { min_learning_rate max_learning_rate soft_start annealing }")
        }
        switch t.regularizer.type {
        case .noReg: regularizer = nil
        case .l1: regularizer = ("L1", t.regularizer.weight)
        case .l2: regularizer = ("L2", t.regularizer.weight)
        case .UNRECOGNIZED(let v): throw fail(["training_config", "regularizer", "type"], "unknown regularizer \(v)")
        }
        let o = t.optimizer.adam
        adam = (o.beta1 == 0 ? 0.9 : o.beta1, o.beta2 == 0 ? 0.999 : o.beta2, o.epsilon == 0 ? 1e-8 : o.epsilon)
        checkpointInterval = max(1, Int(t.checkpointInterval))
        guard !t.enableQat else { throw fail(["training_config", "enable_qat"], "quantization-aware training is not available; train in fp32 and export with --data_type int8 (post-training calibration)") }
        guard !t.costScaling.enabled else { throw fail(["training_config", "cost_scaling"], "cost scaling is for FLOAT16 training, which the CPU does not do; leave it out") }
        if t.visualizer.enabled { notes.append("\(text.file):\(text.line(of: ["training_config", "visualizer"]) ?? 0): TensorBoard visualization is not available yet; the results folder has plots instead") }

        guard ev.earlyStoppingPatienceSteps == 0 else { throw fail(["evaluation_config", "early_stopping_patience_steps"], "early stopping is not available in tao-swift yet; leave it out") }
        validationPeriod = max(1, Int(ev.validationPeriodDuringTraining))
        firstValidationEpoch = max(1, Int(ev.firstValidationEpoch))
        apMode = ev.averagePrecisionMode == .integrate ? "integrate" : "sample"
        guard !e.hasLossMaskLabelFilter || e.lossMaskLabelFilter.objectiveLabelFilterConfigs.isEmpty else {
            throw fail(["loss_mask_label_filter"], "loss mask label filters are not available in tao-swift yet; leave loss_mask_label_filter out")
        }
    }
}
