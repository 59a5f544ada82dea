import Foundation
import TaoData
import TaoGraph
import TaoRuntime
import TaoTensor
import TaoTrain

/// One training run of any task, writing everything into a results folder: the loop, resume and
/// `--init_epoch`, pretrained / pruned / ONNX starting points, optimizer and schedule, checkpoints
/// with their model card, metrics, plots, status and the divergence check. The task supplies
/// only its hooks (`TrainableTask`).
public struct TrainingRun<Task: TrainableTask> {
    public let task: Task
    public let resultsDir: String
    public var quiet = false
    /// Restart from this epoch's checkpoint (0: afresh); nil resumes from the latest one.
    public var initEpoch: Int?
    /// The ranks of a data-parallel run (one process by default). Each trains on its shard of every
    /// epoch, gradients are averaged every step, and rank 0 alone reads the starting point (sent to
    /// the others) and writes checkpoints, logs, plots and status.
    public var collective: any Collective = SingleProcess()
    /// bf16 (`--use_amp`): convolutions and matrix products in bfloat16, both ways, with fp32 master
    /// weights, optimizer state, loss and batch-norm statistics; checkpoints are fp32 as ever.
    public var arithmetic: Arithmetic = .fp32

    public init(task: Task, resultsDir: String, quiet: Bool = false, initEpoch: Int? = nil) {
        self.task = task; self.resultsDir = resultsDir; self.quiet = quiet; self.initEpoch = initEpoch
    }

    /// Trains to the spec's last epoch; returns the last epoch's metrics (empty when all were done).
    @discardableResult
    public func run() throws -> [String: Double] {
        let s = task.settings
        let name = s.modelName
        let comm = collective, lead = comm.isLead
        // Rank 0 alone writes the results folder; the other ranks log nothing.
        let results = lead ? try Results(dir: resultsDir, quiet: quiet) : nil
        let events = try results?.events()
        if let results, let events {
            try FileManager.default.createDirectory(atPath: "\(resultsDir)/weights", withIntermediateDirectories: true)
            try results.saveSpec(task.specPath)
            if let spec = try? String(contentsOfFile: task.specPath, encoding: .utf8) {
                try events.text("spec", "Spec `\(task.specPath)`:\n\n" + spec.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"), step: 0)
            }
            for n in s.notes { results.log("note: \(n)") }
        }
        let data = try task.openData()
        defer { data.close() }
        data.shard = Shard(rank: comm.rank, count: comm.size)
        try results?.writeClassMap(data.classes)
        var (optimizer, decay) = task.makeOptimizer()
        let start = try startingPoint(results, comm)
        let (resumeFrom, resumed, pretrained) = (start.resumeFrom, start.resumed, start.pretrained)
        let startCheckpoint = resumed ?? pretrained
        let startCard = try startCheckpoint?.card
        let carried = (pruned: startCard?.pruned, onnx: startCard?.onnx)

        // Pruned and imported (ONNX) models train as they are: their own graph, not the one the spec describes.
        var graph: Graph
        if let ck = startCheckpoint, let card = startCard, card.carriesOwnGraph {
            let source = resumeFrom?.path ?? s.pretrainedModelPath!
            let kind = card.pruned != nil ? "a pruned model" : "an imported ONNX model"
            guard ck.graph.shape(of: ck.graph.inputs[0]).dims == s.inputShape else {
                throw TaskError("\(source) is \(kind) for input \(ck.graph.shape(of: ck.graph.inputs[0])), but the spec's input size is \(s.inputShape.map(String.init).joined(separator: ","))")
            }
            graph = try task.adapt(ck.graph, classes: data.classes, source: source, card: card)
            if card.pruned == nil { results?.log("training the graph of \(source) (\(graph.nodes.count) ops); the spec's architecture is not used") }
        } else {
            graph = try task.buildModel(classes: data.classes)
        }
        let store = ParameterStore(graph: graph, seed: s.seed)
        var startEpoch = 0
        if let latest = resumeFrom, let ck = resumed {
            _ = try Weights.copy(ck, into: store, strict: true, source: latest.path)
            optimizer.restore(ck.extras.filter { $0.key.hasPrefix("optimizer.") }.reduce(into: [:]) { $0[String($1.key.dropFirst(10))] = $1.value })
            startEpoch = latest.epoch
            results?.log("resuming after epoch \(latest.epoch) from \(latest.path)")
        } else if let pre = s.pretrainedModelPath, let ck = pretrained {
            let isPruned = startCard?.pruned != nil
            results?.log(try Weights.copy(ck, into: store, strict: isPruned, source: pre))
            if isPruned { results?.log("retraining the pruned model \(pre) as it is (\(graph.trainableParameterCount) parameters)") }
            // A head trained for other classes is meaningless here, even when the counts agree.
            if let preClasses = startCard?.classes, !preClasses.isEmpty, preClasses != data.classes {
                guard !isPruned else { throw TaskError("\(pre) is a pruned model of the classes \(preClasses.joined(separator: ", ")); this dataset has \(data.classes.joined(separator: ", "))") }
                let fresh = ParameterStore(graph: graph, seed: s.seed)
                let head = task.headParameters(graph)
                for name in head { if let i = store.index(of: name) { store[i] = fresh[i] } }
                results?.log("the pretrained model's classes (\(preClasses.prefix(5).joined(separator: ", "))\(preClasses.count > 5 ? ", …" : "")) differ from this dataset's: re-initialized the head \(head.joined(separator: ", "))")
            }
        }

        let (frozenParams, frozenBN) = task.frozen(graph)
        var arithmetic = self.arithmetic
        if arithmetic == .bf16 && !Executor.supportsBF16 {
            results?.log("note: --use_amp: this processor has neither AVX512-BF16 nor AMX (oneDNN finds \(Executor.cpuISA)), where bf16 would only be emulated, "
                         + "slower than fp32: training in fp32")
            arithmetic = .fp32
        } else if arithmetic == .bf16 {
            results?.log("mixed precision (--use_amp): convolutions and matrix products in bf16 both ways (\(Executor.cpuISA)), fp32 master weights, "
                         + "optimizer, loss and batch-norm statistics; bf16 keeps fp32's exponent range, so no loss scaling is needed")
            if let note = Executor.bf16SlowerNote { results?.log(note + " (train without --use_amp for fp32)") }
        }
        let exec = try Executor(graph: graph, batch: s.batchSize, mode: .training, parameters: store, frozen: frozenParams,
                                frozenBatchNorm: frozenBN, seed: s.seed, arithmetic: arithmetic)
        let trainer = Trainer(executor: exec, optimizer: optimizer, learningRate: 0, regularizer: s.regularizer)
        guard data.stepsPerEpoch > 0 else {
            throw TaskError("the training data has fewer samples than one batch of \(s.batchSize)" + (comm.size > 1 ? " on each of \(comm.size) ranks" : ""))
        }
        if comm.size > 1 {
            // Every rank starts from rank 0's weights; the same starting file gave the same optimizer state.
            for i in 0..<store.count { try comm.broadcast(store.pointer(i), count: store.infos[i].shape.count) }
            store.touch()
            trainer.collective = comm
            results?.log("data-parallel training on \(comm.size) ranks: batch_size_per_gpu \(s.batchSize) each (global batch \(s.batchSize * comm.size)), "
                         + "learning rate ×\(comm.size) as TAO scales it, \(data.stepsPerEpoch) steps an epoch; batch norm statistics per rank, averaged at each epoch's end")
        }
        // With model_ema the validator and the checkpoints see the moving average (TAO's callback starts it from the weights at hand).
        let ema = s.modelEMA ? store.copy(graph: graph) : nil
        let validator = lead ? try task.makeValidator(graph: graph, store: ema ?? store, data: data) : nil
        results?.log("training \(name) (\(graph.trainableParameterCount) parameters) \(data.summary)")

        let steps = data.stepsPerEpoch
        // What an earlier run of this folder logged after the starting point is redone now: retire it in TensorBoard.
        let stepEvents = try results?.stepEvents()
        try events?.restart(at: startEpoch + 1, "training from epoch \(startEpoch + 1)")
        try stepEvents?.restart(at: startEpoch * steps + 1, "training from epoch \(startEpoch + 1)")
        var last: [String: Double] = [:]
        for epoch in startEpoch..<s.epochs {
            data.start(epoch: epoch)
            exec.reseed(s.seed &+ UInt64(epoch) &* 7919 &+ UInt64(comm.rank) &* 104_729)   // each rank its own dropout masks
            var bar = ProgressBar(total: steps, label: "epoch \(epoch + 1)/\(s.epochs)", quiet: quiet || !lead)
            let t0 = Date()
            var lossSum = 0.0, regularizationSum = 0.0, seen = 0, communication = 0.0, exposed = 0.0
            var lr: Float = 0
            for step in 0..<steps {
                let iteration = epoch * steps + step
                lr = s.schedule.rate(epoch: epoch, progress: Float(iteration) / Float(steps * s.epochs)) * Float(comm.size) / (1 + decay * Float(iteration))
                trainer.learningRate = lr
                guard let (loss, samples) = try data.step(trainer) else { break }
                guard loss.isFinite else { throw divergence(loss, epoch: epoch, step: step, lr: lr, graph, store, frozenBN) }
                if let ema { ema.average(toward: store, decay: Self.emaDecay(step: iteration + 1)) }
                lossSum += Double(loss)
                regularizationSum += Double(trainer.lastRegularization)
                communication += trainer.lastCommunication.seconds
                exposed += trainer.lastCommunication.exposed
                seen += samples
                try stepEvents?.scalars([("loss", Double(loss)), ("learning_rate", Double(lr))], step: iteration + 1)
                bar.update(step + 1, String(format: "loss %.4f  lr %.2e  %.0f img/s", lossSum / Double(step + 1), lr, Double(seen * comm.size) / Date().timeIntervalSince(t0)))
            }
            let trainTime = Date().timeIntervalSince(t0)
            // A regularizer that outweighs the task's own loss holds the weights near zero: say so once.
            if epoch == startEpoch, regularizationSum > lossSum - regularizationSum, let r = s.regularizer {
                let mean = { (v: Double) in String(format: "%.3g", v / Double(steps)) }
                results?.log("note: the regularizer (\(r.kind == .l1 ? "L1" : "L2"), weight \(r.weight)) contributed \(mean(regularizationSum)) of the epoch's mean loss "
                            + "\(mean(lossSum)), more than the task's own loss; if the model learns slowly, try a smaller regularizer weight")
            }
            // The loss is already the ranks' mean (it travels with the gradients); the task's own metrics are averaged here.
            var taskMetrics = data.epochMetrics
            if comm.size > 1 {
                taskMetrics = zip(taskMetrics.map(\.0), try comm.mean(taskMetrics.map(\.1))).map { ($0, $1) }
                try data.synchronize(comm)
                try averageBatchNormStatistics(graph, store, comm)
            }
            let trainMetrics = [("loss", lossSum / Double(steps))] + taskMetrics
            guard let results, let events, let validator else { continue }
            let valMetrics = try validator.run(epoch: epoch + 1, last: epoch + 1 == s.epochs)
            let path = results.weightsPath(name, epoch: epoch + 1)
            var card = task.card(classes: data.classes, epoch: epoch + 1)
            (card.pruned, card.onnx) = carried
            try Checkpoint(graph: graph, parameters: ema ?? store, card: card,
                           extras: trainer.optimizer.state.reduce(into: [:]) { $0["optimizer." + $1.key] = $1.value }).write(to: path)
            let row = [("epoch", Double(epoch + 1)), ("lr", Double(lr))] + trainMetrics + valMetrics
                + [("seconds", trainTime), ("images_per_s", Double(seen * comm.size) / trainTime)]
                + (comm.size > 1 ? [("allreduce_seconds", communication), ("allreduce_exposed_seconds", exposed),
                                  ("allreduce_mb_per_step", Double(trainer.lastCommunication.bytes) / 1e6)] : [])
            last = Dictionary(row, uniquingKeysWith: { a, _ in a })
            try results.record(row)
            let reportStart = Date()
            try events.scalars(row.filter { $0.0 != "epoch" }, step: epoch + 1)
            try validator.writeEvents(events, step: epoch + 1)
            try results.plotHistory()
            if let picture = try validator.picture() {
                let png = try ImageCodec.encodePNG(picture)
                try AtomicFile.write(Data(png), to: "\(resultsDir)/validation_images/epoch_\(String(format: "%03d", epoch + 1)).png")
                try events.image("validation/images", png: png, width: picture.width, height: picture.height, step: epoch + 1)
            }
            let reportSeconds = Date().timeIntervalSince(reportStart)
            results.log(String(format: "epoch %d/%d: %@ (%.0f s, %.0f img/s) -> %@", epoch + 1, s.epochs,
                               task.describe(train: trainMetrics, val: valMetrics), trainTime, Double(seen * comm.size) / trainTime, path))
            var status: [String: Any] = ["state": epoch + 1 == s.epochs ? "done" : "training", "epoch": epoch + 1, "epochs": s.epochs, "checkpoint": path,
                                         "task": s.task, "model": name, "spec": task.specPath, "report_seconds": reportSeconds]
            for (k, v) in valMetrics where v.isFinite { status[k] = v }
            try results.status(status)
            try results.writeSummary()
        }
        if startEpoch >= s.epochs { results?.log("all \(s.epochs) epochs are already done in \(resultsDir)") }
        return last
    }

    /// Where a run starts: the latest checkpoint in the results folder, the one --init_epoch names,
    /// the spec's pretrained model, or afresh. Rank 0 decides and reads the file; with several ranks
    /// it sends the checkpoint's bytes to the others, so that they need no access to the results
    /// folder and start from exactly its weights.
    func startingPoint(_ results: Results?, _ comm: any Collective) throws
        -> (resumeFrom: (path: String, epoch: Int)?, resumed: Checkpoint?, pretrained: Checkpoint?) {
        let s = task.settings, name = s.modelName
        var resumeFrom: (path: String, epoch: Int)?
        var resumed: Checkpoint?, pretrained: Checkpoint?
        if let results {
            resumeFrom = results.latestWeights(name)
            if let e = initEpoch {
                guard e >= 0, e < s.epochs else { throw TaskError("--init_epoch \(e) is out of range: the spec trains \(s.epochs) epochs") }
                let path = results.weightsPath(name, epoch: e)
                guard e == 0 || FileManager.default.fileExists(atPath: path) else {
                    let have = results.savedEpochs(name)
                    throw TaskError("--init_epoch \(e): no checkpoint \(path)" + (have.isEmpty ? " (the folder has none)" : " (saved epochs: \(have.map(String.init).joined(separator: ", ")))"))
                }
                resumeFrom = e == 0 ? nil : (path, e)
            }
            try results.truncateMetrics(after: resumeFrom?.epoch ?? 0)
            let superseded = try results.supersedeWeights(name, after: resumeFrom?.epoch ?? 0)
            if !superseded.isEmpty { results.log("--init_epoch \(resumeFrom?.epoch ?? 0): renamed \(superseded.count) later checkpoint(s) to *.tao.superseded") }
            resumed = try resumeFrom.map { try Checkpoint.read(from: $0.path) }
            pretrained = try resumed == nil ? s.pretrainedModelPath.map { try task.readModel($0) } : nil
            if pretrained != nil, let path = s.pretrainedModelPath { results.logImportNotes(try pretrained?.card, path) }
        }
        guard comm.size > 1 else { return (resumeFrom, resumed, pretrained) }
        // [kind: 0 afresh, 1 resumed, 2 pretrained][epoch: 8 bytes][path length: 8 bytes][path][checkpoint]
        var message: [UInt8] = []
        if comm.isLead {
            let kind: UInt8 = resumed != nil ? 1 : pretrained != nil ? 2 : 0
            let path = Array((resumeFrom?.path ?? "").utf8)
            message.append(kind)
            withUnsafeBytes(of: Int64(resumeFrom?.epoch ?? 0).littleEndian) { message += $0 }
            withUnsafeBytes(of: Int64(path.count).littleEndian) { message += $0 }
            message += path
            if let ck = resumed ?? pretrained { message += try ck.serialized() }
        }
        message = try comm.broadcast(message)
        guard !comm.isLead else { return (resumeFrom, resumed, pretrained) }
        func int(at k: Int) -> Int { Int(Int64(littleEndian: message[k..<(k + 8)].withUnsafeBytes { $0.loadUnaligned(as: Int64.self) })) }
        let (kind, epoch, length) = (message[0], int(at: 1), int(at: 9))
        let path = String(decoding: message[17..<(17 + length)], as: UTF8.self)
        let ck = kind == 0 ? nil : try Checkpoint(serialized: Data(message[(17 + length)...]), source: "rank 0's starting checkpoint")
        return kind == 1 ? ((path, epoch), ck, nil) : (nil, nil, ck)
    }

    /// Replaces the batch norms' running means and variances by their means over the ranks (each
    /// rank normalizes with its own batch's statistics, as Horovod's training does).
    func averageBatchNormStatistics(_ graph: Graph, _ store: ParameterStore, _ comm: any Collective) throws {
        let scale = 1 / Float(comm.size)
        for (i, p) in store.infos.enumerated() where p.role == .bnMean || p.role == .bnVariance {
            let n = p.shape.count, x = store.pointer(i)
            try comm.allreduceSum(x, count: n)
            for k in 0..<n { x[k] *= scale }
        }
        store.touch()
    }

    /// TAO's ModelEMACallback: decay 0.999 · (1 − e^(−updates / 2000)), updates counted from the
    /// first step of the run (epochs before a resume included).
    static func emaDecay(step: Int) -> Float { Float(0.999 * (1 - exp(-Double(step) / 2000))) }

    /// The error for a loss that became inf or NaN, with the likeliest cause when there is one.
    func divergence(_ loss: Float, epoch: Int, step: Int, lr: Float, _ graph: Graph, _ store: ParameterStore, _ frozenBN: Set<String>) -> TaskError {
        var hint = ""
        if let (name, gain) = FrozenBatchNorm.largestGain(graph, store, frozenBN), gain > 10 {
            // Frozen batch norms divide by their running deviation: a channel whose running
            // variance is near 0 multiplies the gradient of the layer before it as much.
            hint = String(format: " (frozen batch norm '%@' multiplies a channel by %.0f: with freeze_bn, try a learning rate 10× lower, or freeze_bn: false)", name, gain)
        }
        return TaskError("training diverged: the loss became \(loss) at epoch \(epoch + 1), step \(step + 1) (learning rate \(lr)); lower the learning rate or check the data\(hint); checkpoints up to epoch \(epoch) are kept")
    }
}

/// Frozen batch norms, as the divergence check sees them.
enum FrozenBatchNorm {
    /// The frozen batch norm with the largest |γ|/√(σ²+ε), and that factor.
    static func largestGain(_ g: Graph, _ store: ParameterStore, _ frozen: Set<String>) -> (String, Float)? {
        var best: (String, Float)?
        for n in g.nodes where frozen.contains(n.name) {
            guard case .batchNorm(let b) = n.op else { continue }
            let (gamma, variance) = (store[n.inputs[1].index - g.inputs.count].scalars, store[n.inputs[4].index - g.inputs.count].scalars)
            let gain = zip(gamma, variance).map { abs($0) / ($1 + b.epsilon).squareRoot() }.max() ?? 0
            if gain > best?.1 ?? 0 { best = (n.name, gain) }
        }
        return best
    }
}

/// Weights carried from one checkpoint into another graph's store.
enum Weights {
    /// Copies same-named, same-shaped tensors from a checkpoint; reports what was replaced. Where the
    /// names are another tool's (an ONNX file from elsewhere) and not `strict`, the tensors are paired
    /// in order instead, as far as kinds and shapes agree from the first on (the backbone of the same
    /// architecture), whichever of the two carries more.
    static func copy(_ ck: Checkpoint, into store: ParameterStore, strict: Bool, source: String) throws -> String {
        var loaded = 0
        var replaced: [String] = []
        var byName: [(Int, Int)] = []
        for (i, p) in store.infos.enumerated() {
            guard let j = ck.graph.parameterIndex(named: p.name) else { replaced.append(p.name); continue }
            let t = ck.parameters[j]
            if t.shape == p.shape { byName.append((i, j)) } else { replaced.append("\(p.name) \(p.shape) (was \(t.shape))") }
        }
        var inOrder: [(Int, Int)] = []
        if !strict {
            for (i, p) in store.infos.enumerated() {
                guard i < ck.graph.parameters.count, ck.graph.parameters[i].role == p.role, ck.graph.parameters[i].shape == p.shape else { break }
                inOrder.append((i, i))
            }
        }
        let pairs = inOrder.count > byName.count ? inOrder : byName
        for (i, j) in pairs { store[i] = ck.parameters[j]; loaded += 1 }
        if inOrder.count > byName.count {
            let taken = Set(pairs.map(\.0))
            replaced = store.infos.indices.filter { !taken.contains($0) }.map { store.infos[$0].name }
        }
        if strict && !replaced.isEmpty { throw TaskError("\(source) does not match this model: \(replaced.prefix(5).joined(separator: ", "))") }
        guard loaded > 0 else { throw TaskError("\(source): no tensor matches this model (a different architecture?)") }
        let how = inOrder.count > byName.count ? " (paired in order: the names are not this model's)" : ""
        guard replaced.count > 12 else {
            return "loaded \(loaded) of \(store.count) tensors from \(source)\(how)" + (replaced.isEmpty ? "" : "; newly initialized: \(replaced.joined(separator: ", "))")
        }
        // Many: named by layer (a tensor's name less its last component), the first twelve.
        var layers: [String] = []
        for r in replaced {
            let name = r.split(separator: " ").first.map(String.init) ?? r
            let layer = name.split(separator: ".").dropLast().joined(separator: ".")
            if !layers.contains(layer) { layers.append(layer) }
        }
        return "loaded \(loaded) of \(store.count) tensors from \(source)\(how); newly initialized: \(replaced.count) tensors of \(layers.count) layers ("
            + layers.prefix(12).joined(separator: ", ") + (layers.count > 12 ? " and \(layers.count - 12) more)" : ")")
    }
}
