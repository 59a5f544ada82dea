import Foundation
import TaoData
import TaoGraph
import TaoReport
import TaoRuntime
import TaoTrain

/// A task-level failure a person can act on.
public struct TaskError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// What every task's spec tells the shared training run (TAO's training_config, in any task's words).
public struct TrainingSettings: Sendable {
    /// The task's name as the CLI spells it ("classification", "detectnet_v2", …).
    public var task: String
    /// The prefix of checkpoint names, e.g. "resnet18".
    public var modelName: String
    public var epochs: Int
    public var batchSize: Int
    public var seed: UInt64
    /// C, H, W of the network input.
    public var inputShape: [Int]
    public var pretrainedModelPath: String?
    public var schedule: LearningRateSchedule
    public var regularizer: Regularizer?
    /// What the run does differently from TAO for accepted spec fields, logged when it starts.
    public var notes: [String] = []
    /// TAO's `model_ema`: validate and save a moving average of the weights (decay 0.999 ramped up
    /// over the first few thousand steps, as TAO's ModelEMACallback) instead of the weights themselves.
    public var modelEMA = false

    public init(task: String, modelName: String, epochs: Int, batchSize: Int, seed: UInt64, inputShape: [Int],
                pretrainedModelPath: String?, schedule: LearningRateSchedule, regularizer: Regularizer?) {
        self.task = task; self.modelName = modelName; self.epochs = epochs; self.batchSize = batchSize; self.seed = seed
        self.inputShape = inputShape; self.pretrainedModelPath = pretrainedModelPath; self.schedule = schedule; self.regularizer = regularizer
    }
}

/// The hooks a task supplies to the shared machinery (`TrainingRun`, export, prune): its settings,
/// model builder, data with its loss, and validation. Everything else — resume, `--init_epoch`,
/// pretrained / pruned / ONNX starting points, the optimizer schedule, checkpoints, metrics,
/// status and divergence — is the run's.
public protocol TrainableTask {
    var settings: TrainingSettings { get }
    /// The spec file, copied into the results folder.
    var specPath: String { get }
    /// A fresh optimizer and its per-iteration decay.
    func makeOptimizer() -> (any Optimizer, decay: Float)
    /// Opens the training and validation data of one run.
    func openData() throws -> any TrainingData
    /// The network the spec describes, for `classes`.
    func buildModel(classes: [String]) throws -> Graph
    /// A model file of ours or an ONNX file, with its card.
    func readModel(_ path: String) throws -> Checkpoint
    /// A graph that comes with a pruned or imported checkpoint, fitted to `classes` (e.g. its
    /// classifier resized), or an error saying why it cannot be.
    func adapt(_ graph: Graph, classes: [String], source: String, card: ModelCard) throws -> Graph
    /// The head's parameters: re-initialized when a pretrained model knew other classes.
    func headParameters(_ graph: Graph) -> [String]
    /// Parameters and batch norms held still (`freeze_blocks`, `freeze_bn`).
    func frozen(_ graph: Graph) -> (params: Set<String>, batchNorms: Set<String>)
    /// The card saved with each checkpoint of this run.
    func card(classes: [String], epoch: Int) -> ModelCard
    /// Measures a model during training on the validation data; metric names start with "val_".
    func makeValidator(graph: Graph, store: ParameterStore, data: any TrainingData) throws -> any Validator
    /// The log line's account of an epoch's metrics (train: from the data; val: from the validator).
    func describe(train: [(String, Double)], val: [(String, Double)]) -> String
}

extension TrainableTask {
    /// Trains as the spec says into `resultsDir`: resumes from the last checkpoint there, or from
    /// epoch `initEpoch`'s when given (0 starts afresh), on the ranks of `collective`. Returns the last
    /// epoch's metrics (rank 0's; the other ranks return none).
    @discardableResult
    public func train(resultsDir: String, quiet: Bool = false, initEpoch: Int? = nil, collective: any Collective = SingleProcess(),
                      arithmetic: Arithmetic = .fp32) throws -> [String: Double] {
        var run = TrainingRun(task: self, resultsDir: resultsDir, quiet: quiet, initEpoch: initEpoch)
        run.collective = collective
        run.arithmetic = arithmetic
        return try run.run()
    }

    /// A backbone's starting weights (YOLO's, UNet's): a checkpoint, or an ONNX classifier whose
    /// tensors are matched by name (a `tao classification export` of the same backbone), else in order.
    func backboneCheckpoint(_ path: String, for what: String) throws -> Checkpoint {
        guard path.lowercased().hasSuffix(".onnx") else { return try Checkpoint.read(from: path) }
        let ck = try ClassificationTask.readClassifier(path)
        var card = try ck.card ?? ModelCard(task: "classification", arch: "onnx", classes: [], inputShape: [], preprocessMode: nil, decoding: .classifierLogits)
        guard card.task == "classification" else { throw TaskError("\(path) is a \(card.task) model; \(what) starts from a classifier") }
        card.onnx = nil   // weights for the spec's network, not a graph to train as it is
        return try Checkpoint(graph: ck.graph, parameters: ck.parameters, card: card)
    }
}

/// One run's training data: batches into the executor, the task's loss on them, and what the
/// epoch's steps measured along the way.
public protocol TrainingData: AnyObject {
    var classes: [String] { get }
    /// e.g. "on 600 images in 10 classes, validating on 100".
    var summary: String { get }
    var stepsPerEpoch: Int { get }
    /// This rank's part of each epoch in data-parallel training (`Shard.whole` in one process);
    /// `stepsPerEpoch` counts its steps.
    var shard: Shard { get set }
    /// Starts an epoch (its shuffle and augmentation are seeded by `epoch`).
    func start(epoch: Int)
    /// Loads the next batch into the trainer's executor and runs one optimization step with the
    /// task's loss. Returns the loss and the batch's sample count; nil when the epoch ran out.
    func step(_ trainer: Trainer) throws -> (loss: Float, samples: Int)?
    /// Training metrics of the epoch so far (e.g. accuracy), reset by `start`.
    var epochMetrics: [(String, Double)] { get }
    /// At the end of each epoch of a data-parallel run, on every rank: combines what the ranks
    /// gathered apart that the next epoch depends on (YOLO's class statistics for automatic class
    /// weighting). Nothing by default.
    func synchronize(_ comm: any Collective) throws
    func close()
}

public extension TrainingData {
    func synchronize(_ comm: any Collective) throws {}
}

/// Measures a model being trained, e.g. validation loss and accuracy or mAP.
public protocol Validator {
    /// The metrics after `epoch` (1-based; `last` for the final one). The same names every epoch;
    /// a validator that skips an epoch (TAO's validation period) gives NaN for each.
    func run(epoch: Int, last: Bool) throws -> [(String, Double)]
    /// A few validation images as the model now sees them (predicted boxes, labels), for the
    /// results folder and TensorBoard; nil when the task draws none.
    func picture() throws -> Image?
    /// Writes what the last validation measured beyond its scalars (e.g. PR curves) to TensorBoard.
    func writeEvents(_ events: EventWriter, step: Int) throws
}

public extension Validator {
    func picture() throws -> Image? { nil }
    func writeEvents(_ events: EventWriter, step: Int) throws {}
}


/// TAO's `freeze_blocks` and `freeze_bn` for any graph: the parameters under the given name
/// prefixes, and the batch norms there (or all of them with `freezeBN`) with their scale and shift.
func frozenLayers(_ g: Graph, prefixes: [String], freezeBN: Bool) -> (params: Set<String>, batchNorms: Set<String>) {
    var params = Set(g.parameters.map(\.name).filter { n in prefixes.contains { n.hasPrefix($0) } })
    var bns = Set<String>()
    for n in g.nodes {
        guard case .batchNorm = n.op else { continue }
        if freezeBN || prefixes.contains(where: { (n.name + ".").hasPrefix($0) }) {
            bns.insert(n.name)
            params.formUnion([n.name + ".weight", n.name + ".bias"])
        }
    }
    return (params, bns)
}
