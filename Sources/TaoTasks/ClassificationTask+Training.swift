import Foundation
import TaoReport
import TaoData
import TaoGraph
import TaoRuntime
import TaoTensor
import TaoTrain

/// Classification's hooks on the shared training run: image folders, softmax cross-entropy (with
/// label smoothing and mixup), and validation loss and accuracy.
extension ClassificationTask: TrainableTask {
    public var settings: TrainingSettings {
        let c = config
        return TrainingSettings(task: "classification", modelName: modelName, epochs: c.epochs, batchSize: c.batchSize, seed: c.seed,
                                inputShape: c.inputShape, pretrainedModelPath: c.pretrainedModelPath, schedule: schedule, regularizer: regularizer)
    }


    public func openData() throws -> any TrainingData { try ClassificationData(self) }

    public func buildModel(classes: [String]) throws -> Graph { try Self.buildModel(config, classes: classes.count) }

    public func readModel(_ path: String) throws -> Checkpoint { try Self.readClassifier(path, inputShape: config.inputShape) }

    public func adapt(_ graph: Graph, classes: [String], source: String, card: ModelCard) throws -> Graph {
        let modelClasses = graph.shape(of: graph.outputs[0])
        guard modelClasses.dims != [classes.count] else { return graph }
        guard card.pruned == nil else {
            throw TaskError("\(source) is a pruned model with \(modelClasses[0]) classes; \(config.trainPath) has \(classes.count): retrain a pruned model on the classes it was trained for")
        }
        return try Self.replacingHead(graph, classes: classes.count, source: source)
    }

    public func headParameters(_ graph: Graph) -> [String] { Self.headParameters(graph) }

    public func card(classes: [String], epoch: Int) -> ModelCard {
        ModelCard(task: "classification", arch: modelName, classes: classes, inputShape: config.inputShape,
                  preprocessMode: config.preprocessMode.rawValue, epoch: epoch, decoding: .classifierLogits)
    }

    public func makeValidator(graph: Graph, store: ParameterStore, data: any TrainingData) throws -> any Validator {
        let d = data as! ClassificationData
        let ev = try Evaluator(graph: graph, store: store, batch: config.evalBatchSize, prep: preprocessing(training: false), workers: config.workers)
        return ClassificationValidator(evaluator: ev, folder: d.val, labelSmoothing: config.labelSmoothing,
                                       shown: (0..<min(16, d.val.count)).map { $0 * d.val.count / min(16, d.val.count) })
    }

    public func describe(train: [(String, Double)], val: [(String, Double)]) -> String {
        let t = Dictionary(train, uniquingKeysWith: { a, _ in a }), v = Dictionary(val, uniquingKeysWith: { a, _ in a })
        return String(format: "loss %.4f, train accuracy %.2f%%, val loss %.4f, val accuracy %.2f%%",
                      t["loss"] ?? .nan, 100 * (t["accuracy"] ?? .nan), v["val_loss"] ?? .nan, 100 * (v["val_accuracy"] ?? .nan))
    }
}

/// Image folders batched for training, and the classifier's loss on them.
final class ClassificationData: TrainingData {
    let task: ClassificationTask
    let train: ImageFolder
    let val: ImageFolder
    let loader: BatchLoader
    let loss: SoftmaxCrossEntropy
    var mixRng = SplitMix64(seed: 0)
    var correct = 0, seen = 0

    init(_ task: ClassificationTask) throws {
        let c = task.config
        self.task = task
        train = try ImageFolder(root: c.trainPath)
        val = try ImageFolder(root: c.valPath, expectedClasses: train.classes)
        loader = BatchLoader(folder: train, preprocessing: task.preprocessing(training: true), batchSize: c.batchSize,
                             shuffle: true, dropLast: true, seed: c.seed, workers: c.workers)
        loss = SoftmaxCrossEntropy(labelSmoothing: c.labelSmoothing)
        guard loader.batchesPerEpoch > 0 else {
            loader.close()
            throw TaskError("\(c.trainPath) has \(train.count) images, fewer than one batch of \(c.batchSize)")
        }
    }

    var classes: [String] { train.classes }
    var summary: String { "on \(train.count) images in \(train.classes.count) classes, validating on \(val.count)" }
    var stepsPerEpoch: Int { loader.batchesPerEpoch }
    var shard: Shard { get { loader.shard } set { loader.shard = newValue } }
    var epochMetrics: [(String, Double)] { [("accuracy", seen > 0 ? Double(correct) / Double(seen) : 0)] }

    func start(epoch: Int) {
        loader.start(epoch: epoch)
        mixRng = SplitMix64(seed: task.config.seed &+ UInt64(epoch) &* 104_729)
        (correct, seen) = (0, 0)
    }

    func step(_ trainer: Trainer) throws -> (loss: Float, samples: Int)? {
        guard let batch = try loader.next() else { return nil }
        let exec = trainer.executor
        let input = exec.inputPointer(0)
        batch.images.withUnsafeBufferPointer { input.update(from: $0.baseAddress!, count: $0.count) }
        var soft: [Float]? = nil
        // Under mixup, training accuracy counts the label that dominates each mixed image.
        var scored = batch.labels
        let classes = train.classes.count
        if task.config.mixupAlpha > 0 {
            let lam = Float(sampleBeta(Double(task.config.mixupAlpha), rng: &mixRng))
            (soft, scored) = task.mixup(input, labels: batch.labels, classes: classes, lambda: lam, perSample: batch.images.count / batch.labels.count)
        }
        let labels = soft == nil ? batch.labels : nil
        let value = try trainer.step { ex in
            self.loss(logits: ex.outputPointer(), grad: ex.outputGradientPointer(), batch: batch.labels.count, classes: classes, labels: labels, soft: soft)
        }
        if value.isFinite { correct += Evaluator.top1Hits(exec.outputPointer(), labels: scored, classes: classes) }
        seen += batch.labels.count
        return (value, batch.labels.count)
    }

    func close() { loader.close() }
}

/// Validation loss and top-1 accuracy over the validation folder.
struct ClassificationValidator: Validator {
    let evaluator: Evaluator
    let folder: ImageFolder
    let labelSmoothing: Float
    /// The validation images the picture shows: sixteen spread over the folder (so over the classes).
    let shown: [Int]
    /// What the last validation predicted for them.
    final class Last: @unchecked Sendable { var kept: [Int: (predicted: Int, score: Double)] = [:] }
    let last = Last()

    func run(epoch: Int, last: Bool) throws -> [(String, Double)] {
        let r = try evaluator.run(folder, labelSmoothing: labelSmoothing, keep: Set(shown))
        self.last.kept = r.kept
        return [("val_loss", r.loss), ("val_accuracy", r.top1)]
    }

    /// The shown images captioned with the last validation's top-1 class and softmax score: green
    /// when right, red with the true class beneath when wrong.
    func picture() throws -> Image? {
        guard !shown.isEmpty, !last.kept.isEmpty else { return nil }
        let items = try shown.compactMap { i -> (image: Image, caption: String, color: RGB)? in
            guard let (best, score) = last.kept[i] else { return nil }
            let truth = folder.labels[i]
            let caption = String(format: "%@ %.2f", folder.classes[best], score) + (best == truth ? "" : "\ntrue: \(folder.classes[truth])")
            return (try ImageCodec.decode(path: folder.paths[i], channels: evaluator.prep.channels), caption, best == truth ? RGB(20, 140, 40) : RGB(200, 30, 30))
        }
        return Annotator.sheet(items, columns: 8, cell: 128)
    }
}
