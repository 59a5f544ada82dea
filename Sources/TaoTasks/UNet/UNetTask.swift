import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoModels
import TaoONNX
import TaoReport
import TaoRuntime
import TaoSpec
import TaoTensor
import TaoTrain

/// `tao unet train`: semantic segmentation's hooks on the shared training run — image and mask
/// folders (or list files) read as TAO's unet data loader reads them, TAO's augmentation on image
/// and mask alike, TAO's losses per pixel, and mean IoU on the validation images.
public struct UNetTask: Sendable {
    public let config: UNetConfig
    public let specPath: String
    /// TAO's `train -m`: the pretrained model, or with `load_graph` the pruned one, in place of the
    /// spec's pretrained_model_file / pruned_model_path.
    public var startingModel: String?

    public init(specPath: String, startingModel: String?) throws {
        config = try UNetConfig(path: specPath)
        self.specPath = specPath
        self.startingModel = startingModel
    }

    public init(specPath: String) throws { try self.init(specPath: specPath, startingModel: nil) }

    /// The architecture's name with its depth where it has several ("resnet18", "vanilla_unet_dynamic").
    public var modelName: String {
        config.arch + (UNetConfig.architectures[config.arch]?.isEmpty == false ? "\(config.numLayers)" : "")
    }

    /// TAO's encoder of the spec's arch, or with arch "onnx" (ours) the backbone of the ONNX model
    /// the run starts from (pretrained_model_file or `-m`): its feature maps at strides 2, 4, 8, …
    func encoder() throws -> UNetModelConfig.Encoder {
        switch config.arch {
        case "vgg": return .vgg(depth: config.numLayers)
        case "vanilla_unet": return .vanilla
        case "vanilla_unet_dynamic": return .vanillaDynamic
        case "efficientnet_b0": return .efficientnetB0
        case "onnx":
            guard let path = startingModel ?? config.pretrainedModel, path.lowercased().hasSuffix(".onnx") else {
                throw TaskError("model_config.arch \"onnx\" takes the encoder from an ONNX model: name the .onnx file in model_config.pretrained_model_file or with -m")
            }
            let r = try ONNXImport.read(path, inputShape: config.inputShape, logits: false)
            return .imported(try ImportedEncoder(graph: r.graph, order: r.nodeOrder, source: path))
        default: return .resnet(depth: config.numLayers)
        }
    }

    /// The network's output size (height, width).
    var outputSize: (height: Int, width: Int) {
        config.arch == "vanilla_unet" ? UNet.outputSize(.vanilla, height: config.inputShape[1], width: config.inputShape[2]) : (config.inputShape[1], config.inputShape[2])
    }

    var loss: UNetLoss {
        UNetLoss(kind: UNetLoss.Kind(rawValue: config.loss) ?? .crossEntropy, sigmoid: config.activation == "sigmoid", classes: config.classes.count,
                 classWeights: config.classWeights.map(Double.init))
    }

    /// How images and masks become samples; with `augment`, TAO's augmentation settings (TAO's
    /// defaults where the spec leaves them 0: flips and crop-and-resize at 0.5, ratio 0.1).
    func preparation(augment: Bool = false) -> SegmentationPreparation {
        let c = config, out = outputSize
        var p = SegmentationPreparation(inputWidth: c.inputShape[2], inputHeight: c.inputShape[1], channels: c.inputShape[0],
                                        outputWidth: out.width, outputHeight: out.height, grayscale: c.imageType == "grayscale", trainID: c.trainID)
        (p.preprocess, p.resizeMethod, p.resizePadding, p.padToInput) = (c.preprocess, c.resizeMethod, c.resizePadding, c.arch == "vanilla_unet")
        if augment {
            p.hflip = Double(c.hflip == 0 ? 0.5 : c.hflip)
            p.vflip = Double(c.vflip == 0 ? 0.5 : c.vflip)
            p.cropAndResizeProbability = Double(c.cropAndResizeProbability == 0 ? 0.5 : c.cropAndResizeProbability)
            p.cropAndResizeRatio = Double(c.cropAndResizeRatio == 0 ? 0.1 : c.cropAndResizeRatio)
            p.brightnessDelta = Double(c.brightnessDelta)
        }
        return p
    }

    /// The image–mask pairs of a split.
    func pairs(_ split: UNetConfig.Split) throws -> [SegmentationPair] {
        var out: [SegmentationPair] = []
        for (k, source) in split.images.enumerated() {
            let masks = k < split.masks.count ? split.masks[k] : nil
            switch source {
            case .folder(let dir):
                var maskDir: String? = nil
                if case .folder(let m)? = masks { maskDir = m }
                out += try SegmentationPairs.folders(images: dir, masks: maskDir)
            case .listFile(let list):
                var maskList: String? = nil
                if case .listFile(let m)? = masks { maskList = m }
                out += try SegmentationPairs.lists(images: list, masks: maskList)
            }
        }
        return out
    }

    /// Training and validation pairs.
    func data() throws -> (train: [SegmentationPair], val: [SegmentationPair]) {
        (try pairs(config.train), try config.val.map(pairs) ?? [])
    }

    /// The confusion matrix of a model over `pairs` (masks at the network's output size).
    func confusion(_ pairs: [SegmentationPair], _ runner: ModelRunner) throws -> ConfusionMatrix {
        let prep = preparation(), classes = config.classes.count
        var m = ConfusionMatrix(classes: max(classes, 2))
        let per = config.inputShape.reduce(1, *), pixels = prep.outputWidth * prep.outputHeight
        for start in stride(from: 0, to: pairs.count, by: runner.batch) {
            let chunk = Array(pairs[start..<min(start + runner.batch, pairs.count)])
            let samples = try parallelMap(chunk.count) { k -> ([Float], [UInt8]) in
                guard chunk[k].mask != nil else { throw TaskError("\(chunk[k].image) has no mask to evaluate against") }
                let s = try prep.load(chunk[k])
                return (prep.input(s.image), s.mask)
            }
            runner.load(samples.map(\.0), per: per)
            runner.forward()
            nonisolated(unsafe) let out = UnsafePointer(runner.outputPointer(0))
            let predicted = try parallelMap(chunk.count) { k in UNetLoss.predictions(out, image: k, classes: classes, pixels: pixels) }
            for (k, s) in samples.enumerated() { m.add(truth: s.1, predicted: predicted[k]) }
        }
        return m
    }
}

extension UNetTask: TrainableTask {
    public var settings: TrainingSettings {
        let c = config
        let reg = c.regularizer.map { Regularizer($0.type == "L1" ? .l1 : .l2, weight: $0.weight, scope: [.convWeight]) }
        let stepsPerEpoch = max(1, ((try? pairs(c.train).count) ?? 0) / c.batchSize)
        let total = stepsPerEpoch * c.epochs
        let schedule: LearningRateSchedule = switch c.schedule {
        case .constant: .constant(c.learningRate)
        case let .cosineDecay(alpha, steps): .cosineDecay(lr: c.learningRate, alpha: alpha, decaySteps: steps > 0 ? steps : total, totalSteps: total)
        case let .exponentialDecay(rate, steps): .exponentialDecay(lr: c.learningRate, rate: rate, decaySteps: max(steps, 1), totalSteps: total)
        }
        var s = TrainingSettings(task: "unet", modelName: modelName, epochs: c.epochs, batchSize: c.batchSize, seed: c.seed, inputShape: c.inputShape,
                                 pretrainedModelPath: startingModel ?? c.prunedModel ?? c.pretrainedModel, schedule: schedule, regularizer: reg)
        s.notes = c.notes
        return s
    }


    public func makeOptimizer() -> (any Optimizer, decay: Float) {
        (Adam(beta1: config.adam.beta1, beta2: config.adam.beta2, epsilon: config.adam.epsilon), 0)
    }

    public func openData() throws -> any TrainingData { try UNetData(self) }

    public func buildModel(classes: [String]) throws -> Graph {
        var m = UNetModelConfig(encoder: try encoder(), inputShape: Shape(config.inputShape), classes: classes.count, useBatchNorm: config.useBatchNorm)
        m.allProjections = config.allProjections
        return try UNet.build(m)
    }

    /// A checkpoint, or an ONNX classifier whose weights start the encoder (matched by name, else in
    /// order); with arch "onnx", the ONNX model whose backbone is the encoder (its weights by name).
    public func readModel(_ path: String) throws -> Checkpoint {
        guard config.arch == "onnx", path.lowercased().hasSuffix(".onnx") else { return try backboneCheckpoint(path, for: "a UNet encoder") }
        let r = try ONNXImport.read(path, inputShape: config.inputShape, logits: false)
        return try Checkpoint(graph: r.graph, parameters: r.parameters,
                              card: ModelCard(task: "unet", arch: "onnx", classes: [], inputShape: config.inputShape, decoding: .segmentation(activation: config.activation)))
    }

    public func adapt(_ graph: Graph, classes: [String], source: String, card: ModelCard) throws -> Graph {
        guard card.task == "unet", graph.outputs.count == 1, graph.shape(of: graph.outputs[0])[0] == classes.count else {
            throw TaskError("\(source) is a \(card.task) model of \(card.classes.count) classes; retrain a pruned UNet with the classes it was trained for")
        }
        return graph
    }

    public func headParameters(_ graph: Graph) -> [String] {
        graph.parameters.map(\.name).filter { $0.hasPrefix(UNet.head + ".") }
    }

    /// TAO's freeze_blocks on the encoder: ResNet's 0 is the stem and N its Nth stage; VGG's and
    /// EfficientNet's N their block N; the vanilla models' N their encoder level N; an imported
    /// encoder's N the layers making its maps at stride 2^(N+1) (0 also those at the input's size).
    public func frozen(_ g: Graph) -> (params: Set<String>, batchNorms: Set<String>) {
        let stages = config.arch == "onnx" ? importedStages(g) : [:]
        let prefixes = config.freezeBlocks.flatMap { b -> [String] in
            switch config.arch {
            case "resnet": b == 0 ? ["conv1.", "bn1."] : ["layer\(b)."]
            case "vanilla_unet", "vanilla_unet_dynamic": ["encoder\(b)."]
            case "onnx": (stages[b] ?? []).map { $0 + "." }
            default: ["block\(b)."]
            }
        }
        return frozenLayers(g, prefixes: prefixes, freezeBN: config.freezeBN)
    }

    /// The imported encoder's layers by stage: a node's stage is that of the map it makes, or for a
    /// map of one pixel (squeeze-and-excitation) that of the map it reads.
    func importedStages(_ g: Graph) -> [Int: [String]] {
        let height = config.inputShape[1]
        var stage: [ValueID: Int] = [:], out: [Int: [String]] = [:]
        for n in g.nodes where !n.name.hasPrefix("decoder") && !n.name.hasPrefix(UNet.head) {
            let s = g.shape(of: n.output)
            let k: Int? = s.rank == 3 && s[1] > 1 ? max(0, Int(log2(Double(height / s[1]))) - 1) : n.inputs.lazy.compactMap { stage[$0] }.first
            guard let k else { continue }
            stage[n.output] = k
            out[k, default: []].append(n.name)
        }
        return out
    }

    public func card(classes: [String], epoch: Int) -> ModelCard {
        ModelCard(task: "unet", arch: modelName, classes: classes, inputShape: config.inputShape, preprocessMode: config.preprocess.isEmpty ? nil : config.preprocess,
                  epoch: epoch, decoding: .segmentation(activation: config.activation))
    }

    public func makeValidator(graph: Graph, store: ParameterStore, data: any TrainingData) throws -> any Validator {
        let d = data as! UNetData
        return UNetValidator(task: self, pairs: d.val, runner: try ModelRunner(graph: graph, store: store, batch: min(config.batchSize, max(d.val.count, 1))))
    }

    public func describe(train: [(String, Double)], val: [(String, Double)]) -> String {
        (train + val).filter { $0.1.isFinite }.map { k, v in k == "val_mIoU" || k.hasPrefix("val_IoU") ? String(format: "%@ %.2f%%", k, 100 * v) : String(format: "%@ %.4f", k, v) }
            .joined(separator: ", ")
    }
}

/// The image–mask pairs of a UNet run, augmented and batched.
final class UNetData: TrainingData {
    let task: UNetTask
    let train: [SegmentationPair]
    let val: [SegmentationPair]
    let prep: SegmentationPreparation
    var order: EpochOrder
    var epoch = 0
    var sums = UNetLoss.Parts(), steps = 0

    init(_ task: UNetTask) throws {
        self.task = task
        (train, val) = try task.data()
        prep = task.preparation(augment: task.config.augment)
        guard train.count >= task.config.batchSize else { throw TaskError("the training data has \(train.count) images, fewer than one batch of \(task.config.batchSize)") }
        order = EpochOrder(samples: train.count, batchSize: task.config.batchSize)
    }

    var classes: [String] { task.config.classes }
    var summary: String { "on \(train.count) images (\(classes.joined(separator: ", "))), validating on \(val.count)" }
    var stepsPerEpoch: Int { order.stepsPerEpoch }
    var shard: Shard { get { order.shard } set { order.shard = newValue } }
    var epochMetrics: [(String, Double)] {
        let n = Double(max(steps, 1))
        return task.config.loss == "cross_entropy" ? [("loss_ce", sums.crossEntropy / n)]
            : task.config.loss == "dice" ? [("loss_dice", sums.dice / n)] : [("loss_ce", sums.crossEntropy / n), ("loss_dice", sums.dice / n)]
    }

    func start(epoch: Int) {
        self.epoch = epoch
        order.start(seed: task.config.seed &+ UInt64(epoch) &* 31337); sums = UNetLoss.Parts(); steps = 0
    }

    func step(_ trainer: Trainer) throws -> (loss: Float, samples: Int)? {
        let n = task.config.batchSize
        guard let idx = order.next() else { return nil }
        let (prep, pairs, epoch, seed, augment) = (self.prep, train, self.epoch, task.config.seed, task.config.augment)
        let prepared = try parallelMap(n) { k -> ([Float], [UInt8]) in
            var s = try prep.load(pairs[idx[k]])
            var brightness: Float = 0
            if augment {
                var rng = SplitMix64(seed: seed &+ UInt64(epoch) &* 1_000_003 &+ UInt64(idx[k]) &* 7919)
                (s, brightness) = prep.augment(s, rng: &rng)
            }
            return (prep.input(s.image, brightness: brightness), s.mask)
        }
        let exec = trainer.executor, input = exec.inputPointer(0), per = prepared[0].0.count
        for (k, s) in prepared.enumerated() { s.0.withUnsafeBufferPointer { input.advanced(by: k * per).update(from: $0.baseAddress!, count: per) } }
        let loss = task.loss, pixels = prep.outputWidth * prep.outputHeight
        var parts = UNetLoss.Parts()
        let value = try trainer.step { ex in
            let r = loss(logits: UnsafePointer(ex.outputPointer(0)), masks: prepared.map(\.1), pixels: pixels, gradients: ex.outputGradientPointer(0))
            parts = r.parts
            return Float(r.total)
        }
        sums.crossEntropy += parts.crossEntropy; sums.dice += parts.dice; steps += 1
        return (value, n)
    }

    func close() {}
}

/// Mean IoU on the validation images, as `evaluate` computes it.
struct UNetValidator: Validator {
    let task: UNetTask
    let pairs: [SegmentationPair]
    let runner: ModelRunner

    func run(epoch: Int, last: Bool) throws -> [(String, Double)] {
        guard !pairs.isEmpty else { return [] }
        let m = try task.confusion(pairs, runner)
        return [("val_mIoU", m.meanIoU)] + task.config.classes.enumerated().map { ("val_IoU_\($1)", m.scores($0).iou ?? 0) }
    }
}
