import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoModels
import TaoReport
import TaoRuntime
import TaoSpec
import TaoTensor
import TaoTrain

/// Which of TAO's three YOLO commands a task is.
public protocol YOLOVersion: Sendable {
    static var flavor: YOLOConfig.Flavor { get }
}
public enum YOLOv3: YOLOVersion { public static let flavor = YOLOConfig.Flavor.v3 }
public enum YOLOv4: YOLOVersion { public static let flavor = YOLOConfig.Flavor.v4 }
public enum YOLOv4Tiny: YOLOVersion { public static let flavor = YOLOConfig.Flavor.v4Tiny }

/// `tao yolo_v3 | yolo_v4 | yolo_v4_tiny train`: YOLO's hooks on the shared training run — KITTI
/// folders or TFRecords with TAO's YOLO augmentation, anchors matched as TAO's encoders match them,
/// TAO's losses, and mAP after letterboxing on the validation images.
public struct YOLOTask<V: YOLOVersion>: Sendable {
    public let config: YOLOConfig
    public let specPath: String

    public init(specPath: String) throws {
        config = try YOLOConfig(path: specPath, flavor: V.flavor)
        self.specPath = specPath
    }

    /// The architecture's name with its depth where it has several ("resnet18", "mobilenet_v2").
    public var modelName: String {
        config.arch + (YOLOConfig.architectures(V.flavor)[config.arch]?.isEmpty == false ? "\(config.nlayers)" : "")
    }
    var classMapping: ClassMapping { ClassMapping(config.classMapping, targets: config.classes) }

    /// The heads of the model for an input of `inputShape` (C, H, W), anchors as fractions of the spec's size.
    func layout(inputShape s: [Int]) -> YOLOLayout {
        let c = config, (w, h) = (Double(c.inputShape[2]), Double(c.inputShape[1]))
        let strides = modelConfig(classes: c.classes).headStrides
        let heads = c.anchors.enumerated().map { k, group in
            YOLOHead(gridWidth: s[2] / strides[k], gridHeight: s[1] / strides[k], anchors: group.map { ($0.width / w, $0.height / h) },
                     xyScale: 1 + Double(c.gridXYExtend[k]))
        }
        return YOLOLayout(heads: heads, classes: c.classes.count)
    }

    /// The layout a model's card records, on the grids of the graph's heads.
    static func layout(_ card: ModelCard, _ graph: Graph) throws -> YOLOLayout {
        guard case let .yolo(anchors, xyScale, _) = card.decoding, anchors.count == xyScale.count, graph.outputs.count == anchors.count else {
            throw TaskError("the model's outputs are not YOLO's heads")
        }
        return YOLOLayout(heads: anchors.enumerated().map { k, group in
            let s = graph.shape(of: graph.outputs[k])
            return YOLOHead(gridWidth: s[2], gridHeight: s[1], anchors: group.map { ($0[0], $0[1]) }, xyScale: xyScale[k])
        }, classes: card.classes.count)
    }

    var loss: YOLOLoss { loss(inputShape: config.inputShape) }

    /// TAO's loss for inputs of `inputShape` (multi-scale training changes it).
    func loss(inputShape: [Int]) -> YOLOLoss {
        let c = config
        var l = YOLOLoss(version: V.flavor == .v3 ? .v3 : .v4, layout: layout(inputShape: inputShape))
        (l.locWeight, l.negativeWeight, l.classWeight, l.neutralIoU) = (Double(c.locWeight), Double(c.negativeObjectWeight), Double(c.classWeight), Double(c.neutralBoxIoU))
        (l.labelSmoothing, l.focalAlpha, l.focalGamma) = (Double(c.labelSmoothing), Double(c.focalAlpha), Double(c.focalGamma))
        return l
    }

    var augmentation: YOLOAugmentation { augmentation(width: config.inputShape[2], height: config.inputShape[1]) }

    /// The augmentation to canvases of `width` × `height` (multi-scale training changes them).
    func augmentation(width: Int, height: Int) -> YOLOAugmentation {
        let c = config
        var a = YOLOAugmentation(width: width, height: height)
        (a.hue, a.saturation, a.exposure) = (Double(c.hue), Double(c.saturation), Double(c.exposure))
        (a.vflip, a.hflip, a.jitter) = (Double(c.vflip), Double(c.hflip), Double(c.jitter))
        (a.mosaicProbability, a.mosaicMinRatio) = (Double(c.mosaicProbability), Double(c.mosaicMinRatio))
        return a
    }

    /// A canvas as the network takes it (TAO's YOLO preprocessing): BGR, each channel less its mean,
    /// channels first, 0…255 scale.
    static func input(_ canvas: Image, mean: [Float]) -> [Float] {
        let c = canvas.channels, plane = canvas.width * canvas.height
        var x = [Float](repeating: 0, count: c * plane)
        canvas.pixels.withUnsafeBufferPointer { p in
            for ch in 0..<c {
                let src = c == 3 ? 2 - ch : ch, m = mean[ch]
                for i in 0..<plane { x[ch * plane + i] = Float(p[i * c + src]) - m }
            }
        }
        return x
    }

    /// The spec's training and validation frames.
    func frames() throws -> (train: [YOLOFrame], val: [YOLOFrame]) {
        let c = config
        func read(_ sources: [YOLOConfig.DataSource]) throws -> [(frame: YOLOFrame, fold: Int?)] {
            try sources.flatMap { s -> [(frame: YOLOFrame, fold: Int?)] in
                switch s.labels {
                case .kitti(let labels):
                    let d = try KITTIDataset(images: s.images, labels: labels)
                    return d.ids.indices.map { (YOLOFrame(imagePath: d.imagePaths[$0], labels: .kitti(d, $0)), nil) }
                case .tfrecords(let pattern):
                    return try DetectionRecords.files(matching: pattern).flatMap { file in
                        let fold = file.range(of: "-fold-").flatMap { Int(file[$0.upperBound...].prefix(3)) }
                        return try DetectionRecords.read([file], imageDirectory: s.images, imageExtension: c.imageExtension).map { (YOLOFrame(imagePath: $0.imagePath, labels: .record($0)), fold) }
                    }
                }
            }
        }
        let train = try read(c.sources)
        if let f = c.validationFold {
            let val = train.filter { $0.fold == f }.map(\.frame)
            guard !val.isEmpty else { throw TaskError("validation_fold \(f): no TFRecord file of the data sources is named -fold-\(String(format: "%03d", f))-") }
            return (train.filter { $0.fold != f }.map(\.frame), val)
        }
        return (train.map(\.frame), try read(c.validationSources).map(\.frame))
    }

    /// The detections of a batch (per image, per class; boxes as fractions of the input).
    func detections(_ runner: ModelRunner, batch: Int, layout: YOLOLayout, confidence: Double? = nil) -> [[[ScoredBox]]] {
        YOLODecoder.detections(outputs: layout.heads.indices.map { UnsafePointer(runner.outputPointer($0)) }, batch: batch, layout: layout,
                               confidence: confidence ?? Double(config.confidenceThreshold), nmsIoU: Double(config.nmsIoU), topK: config.topK)
    }

    /// mAP as TAO's YOLO evaluates: each frame letterboxed to the input, detections (NMS as
    /// nms_config says) against the labels at eval_config's IoU, difficult objects neutral.
    func evaluate(_ frames: [YOLOFrame], _ runner: ModelRunner, layout: YOLOLayout) throws -> [ClassAP] {
        let aug = augmentation, mapping = classMapping, mean = config.imageMean, channels = config.inputShape[0]
        var found: [Detection] = [], truth: [GroundTruth] = []
        let b = runner.batch, per = channels * aug.width * aug.height
        for start in stride(from: 0, to: frames.count, by: b) {
            let chunk = Array(frames[start..<min(start + b, frames.count)])
            let samples = try parallelMap(chunk.count) { k -> (LabelledImage, YOLOAugmentation.Placement, [Float]) in
                let s = try chunk[k].load(channels: channels, mapping: mapping, keepDifficult: true)
                let boxed = aug.letterboxed(s)
                return (s, aug.letterbox(imageWidth: s.image.width, imageHeight: s.image.height), Self.input(boxed.image, mean: mean))
            }
            runner.load(samples.map(\.2), per: per)
            runner.forward()
            let batch = detections(runner, batch: chunk.count, layout: layout)
            for (k, s) in samples.enumerated() {
                for o in s.0.objects {
                    truth.append(GroundTruth(image: start + k, classIndex: o.classIndex, box: Box(o.x1, o.y1, o.x2, o.y2), difficult: o.difficult))
                }
                for (c, boxes) in batch[k].enumerated() {
                    for d in boxes { found.append(Detection(image: start + k, classIndex: c, box: Self.unbox(d.box, s.1, aug), score: d.score)) }
                }
            }
        }
        return AveragePrecision.evaluate(detections: found, groundTruth: truth, classes: config.classes.count,
                                         iouThreshold: Array(repeating: Double(config.matchingIoU), count: config.classes.count),
                                         mode: config.apMode == "integrate" ? .integrate : .sample)
    }

    /// A box on the letterboxed input (fractions) in the original image's pixels.
    static func unbox(_ b: Box, _ p: YOLOAugmentation.Placement, _ aug: YOLOAugmentation) -> Box {
        func x(_ v: Double) -> Double { (v * Double(aug.width) - Double(p.dx)) * p.sw / Double(p.dw) + p.sx }
        func y(_ v: Double) -> Double { (v * Double(aug.height) - Double(p.dy)) * p.sh / Double(p.dh) + p.sy }
        return Box(x(b.x1), y(b.y1), x(b.x2), y(b.y2))
    }
}

/// One labelled image of a YOLO dataset: a KITTI label file or a TFRecord frame.
struct YOLOFrame: Sendable {
    enum Labels: Sendable { case kitti(KITTIDataset, Int), record(DetectionFrame) }
    var imagePath: String
    var labels: Labels

    /// The image with its objects of the target classes (pixels); objects marked occluded are
    /// difficult, dropped unless `keepDifficult`. A box outside the image is an error naming the label's line.
    func load(channels: Int, mapping: ClassMapping, keepDifficult: Bool) throws -> LabelledImage {
        let img = try ImageCodec.decode(path: imagePath, channels: channels)
        let objects: [KITTIObject]
        switch labels {
        case .kitti(let d, let i): objects = try d.objects(i, imageWidth: img.width, imageHeight: img.height)
        case .record(let f):
            guard img.width == f.width, img.height == f.height else {
                throw TaskError("\(imagePath) is \(img.width)×\(img.height), but its TFRecord says \(f.width)×\(f.height): convert the dataset again")
            }
            objects = f.objects
        }
        return LabelledImage(image: img, objects: objects.compactMap { o in
            guard let k = mapping.target(of: o.className), keepDifficult || o.occlusion == 0 else { return nil }
            let (x1, y1) = (max(0, Double(o.x1)), max(0, Double(o.y1))), (x2, y2) = (min(Double(img.width), Double(o.x2)), min(Double(img.height), Double(o.y2)))
            guard x2 - x1 > 1e-3 * Double(img.width), y2 - y1 > 1e-3 * Double(img.height) else { return nil }
            return LabelledImage.Object(classIndex: k, x1: x1, y1: y1, x2: x2, y2: y2, difficult: o.occlusion != 0)
        })
    }
}

extension YOLOTask: TrainableTask {
    public var settings: TrainingSettings {
        let c = config
        let reg = c.regularizer.map { Regularizer($0.kind == "L1" ? .l1 : .l2, weight: $0.weight, scope: [.convWeight]) }
        let schedule: LearningRateSchedule = switch c.schedule {
        case let .softStartAnnealing(lo, hi, s, a): .softStartAnnealing(min: lo, max: hi, softStart: s, annealing: a)
        case let .softStartCosine(lo, hi, s): .softStartCosine(min: lo, max: hi, softStart: s)
        }
        var s = TrainingSettings(task: V.flavor.rawValue, modelName: modelName, epochs: c.epochs, batchSize: c.batchSize, seed: c.seed,
                                 inputShape: c.inputShape, pretrainedModelPath: c.prunedModel ?? c.pretrainedModel, schedule: schedule, regularizer: reg)
        s.notes = c.notes
        s.modelEMA = c.modelEMA
        if c.randomizeInputShapePeriod > 0 {
            let lo = { (n: Int) in 32 * max(1, Int((0.6 * Double(n) / 32).rounded(.toNearestOrEven))) }, hi = { (n: Int) in 32 * Int((1.5 * Double(n) / 32).rounded(.toNearestOrEven)) }
            s.notes.append("augmentation_config.randomize_input_shape_period: multi-scale training, a new input size every \(c.randomizeInputShapePeriod) batches "
                           + "(width \(lo(c.inputShape[2]))–\(hi(c.inputShape[2])), height \(lo(c.inputShape[1]))–\(hi(c.inputShape[1]))); validation at \(c.inputShape[2])×\(c.inputShape[1])")
        }
        return s
    }


    public func makeOptimizer() -> (any Optimizer, decay: Float) {
        switch config.optimizer {
        case let .adam(b1, b2, eps): (Adam(beta1: b1, beta2: b2, epsilon: eps), 0)
        case let .sgd(m, nesterov): (SGD(momentum: m, nesterov: nesterov), 0)
        case let .rmsprop(rho, m, eps): (RMSprop(rho: rho, momentum: m, epsilon: eps), 0)
        }
    }

    public func openData() throws -> any TrainingData { try YOLOData(self) }

    public func buildModel(classes: [String]) throws -> Graph {
        try YOLO.build(modelConfig(classes: classes))
    }

    /// The network the spec describes: TAO's `arch` / `nlayers` as one of YOLO's backbones.
    func modelConfig(classes: [String]) -> YOLOModelConfig {
        let c = config
        let version: YOLOModelConfig.Version = switch V.flavor { case .v3: .v3; case .v4: .v4; case .v4Tiny: .v4Tiny }
        let backbone: YOLOModelConfig.Backbone = switch c.arch {
        case "vgg": .vgg(depth: c.nlayers)
        case "darknet": .darknet(depth: c.nlayers)
        case "cspdarknet": .cspDarknet(depth: c.nlayers)
        case "mobilenet_v1": .mobilenetV1
        case "mobilenet_v2": .mobilenetV2
        case "squeezenet": .squeezenet
        case "googlenet": .googlenet
        case "efficientnet_b0": .efficientnetB0
        case "cspdarknet_tiny": .cspDarknetTiny
        default: .resnet(depth: c.nlayers)
        }
        var m = YOLOModelConfig(version: version, backbone: backbone, inputShape: Shape(c.inputShape), classes: classes.count, anchorsPerHead: c.anchors.map(\.count))
        m.archConvBlocks = c.archConvBlocks
        m.forceReLU = c.forceReLU
        m.backboneActivation = c.activation == "mish" ? .mish : c.activation == "relu" ? .relu : .leakyRelu(alpha: 0.1)
        return m
    }

    /// A checkpoint, or an ONNX classifier whose weights start the backbone: tensors matched by name
    /// (a `tao classification export` of the same backbone), or else in order as far as they agree.
    public func readModel(_ path: String) throws -> Checkpoint { try backboneCheckpoint(path, for: "a YOLO backbone") }

    public func adapt(_ graph: Graph, classes: [String], source: String, card: ModelCard) throws -> Graph {
        let layout = layout(inputShape: config.inputShape)
        guard card.task == V.flavor.rawValue, graph.outputs.count == layout.heads.count,
              zip(graph.outputs, layout.heads).allSatisfy({ graph.shape(of: $0)[0] == $1.anchors.count * (5 + classes.count) }) else {
            throw TaskError("\(source) is a \(card.task) model of \(card.classes.count) classes; retrain a pruned \(V.flavor.rawValue) model with the anchors and classes it was trained for")
        }
        return graph
    }

    public func headParameters(_ graph: Graph) -> [String] {
        graph.parameters.map(\.name).filter { n in YOLO.headLayers.contains { n.hasPrefix($0 + ".") } }
    }

    /// TAO's freeze_blocks, as each template numbers its blocks: ResNet's 0 is the stem and N its
    /// Nth stage; MobileNet V1's N its Nth depthwise-separable unit; SqueezeNet's N fire module N + 1;
    /// the other backbones name their layers `block<N>.`.
    public func frozen(_ g: Graph) -> (params: Set<String>, batchNorms: Set<String>) {
        let prefixes = config.freezeBlocks.flatMap { b -> [String] in
            switch config.arch {
            case "resnet": b == 0 ? ["conv1.", "bn1."] : ["layer\(b)."]
            case "mobilenet_v1": b == 0 ? ["conv1.", "conv1_bn."] : ["conv_dw_\(b).", "conv_dw_\(b)_bn.", "conv_pw_\(b).", "conv_pw_\(b)_bn."]
            case "squeezenet": b == 0 ? ["conv1."] : ["fire\(b + 1)."]
            default: ["block\(b)."]
            }
        }
        return frozenLayers(g, prefixes: prefixes, freezeBN: config.freezeBN)
    }

    public func card(classes: [String], epoch: Int) -> ModelCard {
        let l = layout(inputShape: config.inputShape)
        return ModelCard(task: V.flavor.rawValue, arch: modelName, classes: classes, inputShape: config.inputShape, preprocessMode: "caffe", epoch: epoch,
                         decoding: .yolo(anchors: l.heads.map { $0.anchors.map { [$0.w, $0.h] } }, xyScale: l.heads.map(\.xyScale),
                                         nms: .init(confidence: Double(config.confidenceThreshold), iou: Double(config.nmsIoU), topK: config.topK)))
    }

    public func makeValidator(graph: Graph, store: ParameterStore, data: any TrainingData) throws -> any Validator {
        let d = data as! YOLOData<V>
        return YOLOValidator(task: self, frames: d.val, runner: try ModelRunner(graph: graph, store: store, batch: min(config.evalBatchSize, max(d.val.count, 1))))
    }

    public func describe(train: [(String, Double)], val: [(String, Double)]) -> String {
        (train + val).filter { $0.1.isFinite }.map { k, v in k == "val_mAP" || k.hasPrefix("val_AP") ? String(format: "%@ %.2f%%", k, 100 * v) : String(format: "%@ %.4f", k, v) }.joined(separator: ", ")
    }
}

/// The frames of a YOLO run, augmented and matched to anchors in batches.
final class YOLOData<V: YOLOVersion>: TrainingData {
    let task: YOLOTask<V>
    let train: [YOLOFrame]
    let val: [YOLOFrame]
    var order: EpochOrder
    var epoch = 0
    var sums = YOLOLoss.Parts(), steps = 0
    /// The class weights the targets carry: class_weighting_config's, or with enable_auto TAO's
    /// automatic ones, re-derived from `classLoss` / `classAnchors` after each epoch.
    var classWeights: [Double]
    var classLoss: [Double], classAnchors: [Int]

    init(_ task: YOLOTask<V>) throws {
        self.task = task
        classWeights = task.config.classWeights.map(Double.init)
        classLoss = [Double](repeating: 0, count: task.config.classes.count)
        classAnchors = [Int](repeating: 0, count: task.config.classes.count)
        (train, val) = try task.frames()
        guard train.count >= task.config.batchSize else { throw TaskError("the training data has \(train.count) images, fewer than one batch of \(task.config.batchSize)") }
        order = EpochOrder(samples: train.count, batchSize: task.config.batchSize)
    }

    var classes: [String] { task.config.classes }
    var summary: String { "on \(train.count) images (\(classes.joined(separator: ", "))), validating on \(val.count)" }
    var stepsPerEpoch: Int { order.stepsPerEpoch }
    var shard: Shard { get { order.shard } set { order.shard = newValue } }
    var epochMetrics: [(String, Double)] {
        let n = Double(max(steps, 1))
        return [("loss_loc", sums.location / n), ("loss_obj", sums.positiveObjectness / n), ("loss_noobj", sums.negativeObjectness / n), ("loss_cls", sums.classes / n)]
            + (task.config.autoClassWeighting ? zip(classes, classWeights).map { ("class_weight_\($0)", $1) } : [])
    }

    /// TAO's AutoClassWeighting at the end of 0-based epoch `epoch`: each class's loss per matched
    /// anchor, its current weight divided out, over the smallest of them; blended 0.9 : 0.1 with the
    /// current weights after the first epoch, and taken only every tenth epoch (0, 10, 20, …); nil
    /// when this epoch takes none. A class no anchor matched keeps its weight.
    static func autoClassWeights(current: [Double], loss: [Double], anchors: [Int], epoch: Int, alpha: Double = 0.9) -> [Double]? {
        guard epoch % 10 == 0 else { return nil }
        let perAnchor = current.indices.map { anchors[$0] > 0 ? loss[$0] / current[$0] / Double(anchors[$0]) : .nan }
        guard let least = perAnchor.filter({ $0.isFinite && $0 > 0 }).min() else { return nil }
        return current.indices.map { i in
            guard perAnchor[i].isFinite, perAnchor[i] > 0 else { return current[i] }
            let w = perAnchor[i] / least
            return epoch == 0 ? w : current[i] * alpha + w * (1 - alpha)
        }
    }

    func start(epoch: Int) {
        if task.config.autoClassWeighting, epoch > 0, classAnchors.contains(where: { $0 > 0 }),
           let w = Self.autoClassWeights(current: classWeights, loss: classLoss, anchors: classAnchors, epoch: epoch - 1) {
            classWeights = w
        }
        classLoss = classLoss.map { _ in 0 }; classAnchors = classAnchors.map { _ in 0 }
        self.epoch = epoch
        order.start(seed: task.config.seed &+ UInt64(epoch) &* 31337); sums = YOLOLoss.Parts(); steps = 0
    }

    /// One training sample: augmented (mosaic drawing other training images) to `aug`'s canvas, its
    /// input and anchor matches.
    static func sample(_ task: YOLOTask<V>, _ frames: [YOLOFrame], _ index: Int, aug: YOLOAugmentation, rng: inout SplitMix64,
                       layout: YOLOLayout, classWeights: [Double]) throws -> ([Float], YOLOTargets) {
        let c = task.config, mapping = task.classMapping
        func load(_ i: Int) throws -> LabelledImage { try frames[i].load(channels: c.inputShape[0], mapping: mapping, keepDifficult: c.includeDifficult) }
        let s = try aug.training(try load(index), count: frames.count, other: load, rng: &rng)
        let (w, h) = (Double(aug.width), Double(aug.height))
        let targets = YOLOTargets(objects: s.objects.map { ($0.classIndex, Box($0.x1 / w, $0.y1 / h, $0.x2 / w, $0.y2 / h)) }, layout: layout,
                                  matchingIoU: V.flavor == .v3 ? nil : Double(c.boxMatchingIoU), classWeights: classWeights)
        return (YOLOTask<V>.input(s.image, mean: c.imageMean), targets)
    }

    /// TAO's multi-scale training (`randomize_input_shape_period` P): the input size of step `step`,
    /// drawn anew every P steps, width and height apart, as multiples of 32 from 0.6 to 1.5 times the
    /// spec's (yolo_v3/dataio/data_sequence.py); nil without it.
    func randomShape(step: Int) -> (height: Int, width: Int)? {
        let c = task.config, period = c.randomizeInputShapePeriod
        guard period > 0 else { return nil }
        var epochRNG = SplitMix64(seed: c.seed &+ UInt64(epoch) &* 65_537)
        var rng = SplitMix64(seed: epochRNG.next() ^ UInt64(step / period))
        func draw(_ size: Int) -> Int {
            let n = Double(size) / 32
            let lo = max(1, Int((0.6 * n).rounded(.toNearestOrEven))), hi = max(lo, Int((1.5 * n).rounded(.toNearestOrEven)))
            return 32 * (lo + Int(rng.next() % UInt64(hi - lo + 1)))
        }
        let width = draw(c.inputShape[2])
        return (draw(c.inputShape[1]), width)
    }

    /// Executors of the training graph at other input sizes, sharing its parameters (the two most recent kept).
    var base: Executor?
    var others: [[Int]: Executor] = [:], recent: [[Int]] = []

    func executor(_ trainer: Trainer, inputShape: [Int]) throws -> Executor {
        let base = self.base ?? trainer.executor
        self.base = base
        if base.graph.shape(of: base.graph.inputs[0]).dims == inputShape { return base }
        if let e = others[inputShape] {
            recent.removeAll { $0 == inputShape }; recent.append(inputShape)
            return e
        }
        let graph = try base.graph.withInputShapes([Shape(inputShape)])
        let (frozen, frozenBN) = task.frozen(graph)
        let e = try Executor(graph: graph, batch: base.batch, mode: .training, parameters: base.parameters, frozen: frozen, frozenBatchNorm: frozenBN,
                             seed: task.config.seed &+ UInt64(epoch) &* 7919 &+ UInt64(recent.count))
        others[inputShape] = e; recent.append(inputShape)
        if recent.count > 2 { others[recent.removeFirst()] = nil }
        return e
    }

    func step(_ trainer: Trainer) throws -> (loss: Float, samples: Int)? {
        let n = task.config.batchSize
        let step = order.step
        guard let idx = order.next() else { return nil }
        let (task, frames, epoch, seed) = (self.task, train, self.epoch, self.task.config.seed)
        var shape = task.config.inputShape
        if let r = randomShape(step: step) { (shape[1], shape[2]) = (r.height, r.width) }
        if task.config.randomizeInputShapePeriod > 0 { trainer.executor = try executor(trainer, inputShape: shape) }
        let loss = task.loss(inputShape: shape), layout = loss.layout, aug = task.augmentation(width: shape[2], height: shape[1])
        let weights = classWeights
        let prepared = try parallelMap(n) { k -> ([Float], YOLOTargets) in
            var rng = SplitMix64(seed: seed &+ UInt64(epoch) &* 1_000_003 &+ UInt64(idx[k]) &* 7919)
            return try Self.sample(task, frames, idx[k], aug: aug, rng: &rng, layout: layout, classWeights: weights)
        }
        let exec = trainer.executor, input = exec.inputPointer(0), per = prepared[0].0.count
        for (k, s) in prepared.enumerated() { s.0.withUnsafeBufferPointer { input.advanced(by: k * per).update(from: $0.baseAddress!, count: per) } }
        var parts = YOLOLoss.Parts()
        let value = try trainer.step { ex in
            let r = loss(outputs: layout.heads.indices.map { UnsafePointer(ex.outputPointer($0)) }, targets: prepared.map(\.1),
                         gradients: layout.heads.indices.map { ex.outputGradientPointer($0) })
            parts = r.parts
            return Float(r.total)
        }
        sums.location += parts.location; sums.positiveObjectness += parts.positiveObjectness
        sums.negativeObjectness += parts.negativeObjectness; sums.classes += parts.classes; steps += 1
        for c in parts.perClassLoss.indices where c < classLoss.count { classLoss[c] += parts.perClassLoss[c]; classAnchors[c] += parts.perClassAnchors[c] }
        return (value, n)
    }

    /// Automatic class weighting from every rank's samples: the class losses and matched anchors
    /// summed over the ranks (each rank gathered its shard's), so that all ranks weight alike.
    func synchronize(_ comm: any Collective) throws {
        guard task.config.autoClassWeighting else { return }
        var sums = classLoss.map(Float.init) + classAnchors.map(Float.init)
        try sums.withUnsafeMutableBufferPointer { try comm.allreduceSum($0.baseAddress!, count: $0.count) }
        let n = classLoss.count
        classLoss = sums[..<n].map(Double.init)
        classAnchors = sums[n...].map { Int($0.rounded()) }
    }

    func close() {}
}

/// mAP on the validation images, as `evaluate` computes it.
struct YOLOValidator<V: YOLOVersion>: Validator {
    let task: YOLOTask<V>
    let frames: [YOLOFrame]
    let runner: ModelRunner
    final class Last: @unchecked Sendable { var aps: [ClassAP] = [] }
    let last = Last()

    func run(epoch: Int, last: Bool) throws -> [(String, Double)] {
        guard !frames.isEmpty else { return [] }
        let aps = try task.evaluate(frames, runner, layout: task.layout(inputShape: task.config.inputShape))
        self.last.aps = aps
        return [("val_mAP", AveragePrecision.mean(aps))] + zip(task.config.classes, aps).map { ("val_AP_\($0)", $1.ap ?? 0) }
    }

    func writeEvents(_ events: EventWriter, step: Int) throws {
        try writePRCurves(zip(task.config.classes, last.aps).map { ($0, $1) }, prefix: "validation", to: events, step: step)
        last.aps = []
    }
}
