import Foundation
import TaoData
import TaoGraph
import TaoModels
import TaoRuntime
import TaoSpec
import TaoTrain

/// A task-level failure a person can act on.
public struct TaskError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

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
            return try VGG.build(VGGConfig(depth: c.nLayers, classes: classes, inputShape: Shape(c.inputShape), batchNorm: c.useBatchNorm, dropout: c.dropout))
        case "alexnet":
            return try AlexNet.build(classes: classes, inputShape: Shape(c.inputShape), dropout: c.dropout)
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
    func frozen(_ g: Graph) -> (params: Set<String>, batchNorms: Set<String>) {
        var prefixes: [String] = []
        for b in config.freezeBlocks {
            if config.arch == "resnet" { prefixes += b == 0 ? ["conv1.", "bn1."] : ["layer\(b)."] }
            else if ["googlenet", "darknet", "cspdarknet", "cspdarknet_tiny", "efficientnet_b0", "efficientnet_b1"].contains(config.arch) {
                prefixes.append("block\(b).")
            }
            else { prefixes.append("features.\(b).") }
        }
        var params = Set(g.parameters.map(\.name).filter { n in prefixes.contains { n.hasPrefix($0) } })
        var bns = Set<String>()
        for n in g.nodes {
            guard case .batchNorm = n.op else { continue }
            if config.freezeBN || prefixes.contains(where: { (n.name + ".").hasPrefix($0) }) {
                bns.insert(n.name)
                params.formUnion([n.name + ".weight", n.name + ".bias"])
            }
        }
        return (params, bns)
    }

    /// The frozen batch norm with the largest |γ|/√(σ²+ε), and that factor.
    static func largestFrozenGain(_ g: Graph, _ store: ParameterStore, _ frozen: Set<String>) -> (String, Float)? {
        var best: (String, Float)?
        for n in g.nodes where frozen.contains(n.name) {
            guard case .batchNorm(let b) = n.op else { continue }
            let (gamma, variance) = (store[n.inputs[1].index - g.inputs.count].scalars, store[n.inputs[4].index - g.inputs.count].scalars)
            let gain = zip(gamma, variance).map { abs($0) / ($1 + b.epsilon).squareRoot() }.max() ?? 0
            if gain > best?.1 ?? 0 { best = (n.name, gain) }
        }
        return best
    }

    func makeOptimizer() -> (any Optimizer, decay: Float) {
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

    /// Copies same-named, same-shaped tensors from a checkpoint; reports what was replaced.
    static func load(_ ck: Checkpoint, into store: ParameterStore, strict: Bool, source: String) throws -> String {
        var loaded = 0
        var replaced: [String] = []
        for (i, p) in store.infos.enumerated() {
            guard let j = ck.graph.parameterIndex(named: p.name) else { replaced.append(p.name); continue }
            let t = ck.parameters[j]
            if t.shape == p.shape { store[i] = t; loaded += 1 } else { replaced.append("\(p.name) \(p.shape) (was \(t.shape))") }
        }
        if strict && !replaced.isEmpty { throw TaskError("\(source) does not match this model: \(replaced.prefix(5).joined(separator: ", "))") }
        guard loaded > 0 else { throw TaskError("\(source): no tensor matches this model (a different architecture?)") }
        return "loaded \(loaded) of \(store.count) tensors from \(source)" + (replaced.isEmpty ? "" : "; newly initialized: \(replaced.joined(separator: ", "))")
    }

    // MARK: train

    /// Trains as the spec says, writing everything into `resultsDir`; resumes from the latest
    /// checkpoint there, or from epoch `initEpoch`'s when given (0 starts afresh). Returns the last
    /// epoch's metrics.
    @discardableResult
    public func train(resultsDir: String, quiet: Bool = false, initEpoch: Int? = nil) throws -> [String: Double] {
        let c = config
        let results = try Results(dir: resultsDir, quiet: quiet)
        try results.saveSpec(specPath)
        let trainSet = try ImageFolder(root: c.trainPath)
        let valSet = try ImageFolder(root: c.valPath, expectedClasses: trainSet.classes)
        var (optimizer, decay) = makeOptimizer()
        var startEpoch = 0
        var resumeFrom = results.latestWeights(modelName)
        if let e = initEpoch {
            guard e >= 0, e < c.epochs else { throw TaskError("--init_epoch \(e) is out of range: the spec trains \(c.epochs) epochs") }
            let path = results.weightsPath(modelName, epoch: e)
            guard e == 0 || FileManager.default.fileExists(atPath: path) else {
                let have = results.savedEpochs(modelName)
                throw TaskError("--init_epoch \(e): no checkpoint \(path)" + (have.isEmpty ? " (the folder has none)" : " (saved epochs: \(have.map(String.init).joined(separator: ", ")))"))
            }
            resumeFrom = e == 0 ? nil : (path, e)
        }
        try results.truncateMetrics(after: resumeFrom?.epoch ?? 0)
        let superseded = try results.supersedeWeights(modelName, after: resumeFrom?.epoch ?? 0)
        if !superseded.isEmpty { results.log("--init_epoch \(resumeFrom?.epoch ?? 0): renamed \(superseded.count) later checkpoint(s) to *.tao.superseded") }
        let resumed = try resumeFrom.map { try Checkpoint.read(from: $0.path) }
        let pretrained = try resumed == nil ? c.pretrainedModelPath.map { try Self.readCheckpoint($0, inputShape: c.inputShape) } : nil
        if let pretrained, let path = c.pretrainedModelPath { Self.logImportNotes(pretrained, path, results) }
        // Pruned and imported (ONNX) models train as they are: their own graph, not the one the spec describes.
        let pruning = (resumed ?? pretrained)?.metadata["tao.pruned"]
        let carried = ((resumed ?? pretrained)?.metadata ?? [:]).filter { $0.key == "tao.pruned" || $0.key == "tao.onnx" }
        var graph: Graph
        if let ck = resumed ?? pretrained, !carried.isEmpty {
            graph = ck.graph
            let source = resumeFrom?.path ?? c.pretrainedModelPath!
            let kind = pruning != nil ? "a pruned model" : "an imported ONNX model"
            guard graph.shape(of: graph.inputs[0]).dims == c.inputShape else {
                throw TaskError("\(source) is \(kind) for input \(graph.shape(of: graph.inputs[0])), but model_config.input_image_size is \(c.inputShape.map(String.init).joined(separator: ","))")
            }
            let modelClasses = graph.shape(of: graph.outputs[0])
            if modelClasses.dims != [trainSet.classes.count] {
                guard pruning == nil else {
                    throw TaskError("\(source) is a pruned model with \(modelClasses[0]) classes; \(c.trainPath) has \(trainSet.classes.count): retrain a pruned model on the classes it was trained for")
                }
                graph = try Self.replacingHead(graph, classes: trainSet.classes.count, source: source)
            }
            if pruning == nil { results.log("training the graph of \(source) (\(graph.nodes.count) ops); model_config's architecture is not used") }
        } else {
            graph = try Self.buildModel(c, classes: trainSet.classes.count)
        }
        let store = ParameterStore(graph: graph, seed: c.seed)
        if let latest = resumeFrom, let ck = resumed {
            _ = try Self.load(ck, into: store, strict: true, source: latest.path)
            optimizer.restore(ck.extras.filter { $0.key.hasPrefix("optimizer.") }.reduce(into: [:]) { $0[String($1.key.dropFirst(10))] = $1.value })
            startEpoch = latest.epoch
            results.log("resuming after epoch \(latest.epoch) from \(latest.path)")
        } else if let pre = c.pretrainedModelPath, let ck = pretrained {
            results.log(try Self.load(ck, into: store, strict: pruning != nil, source: pre))
            if pruning != nil { results.log("retraining the pruned model \(pre) as it is (\(graph.trainableParameterCount) parameters)") }
            // A head trained for other classes is meaningless here, even when the counts agree.
            let preClasses = ck.metadata["tao.classes"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] }
            if let preClasses, preClasses != trainSet.classes {
                guard pruning == nil else { throw TaskError("\(pre) is a pruned model of the classes \(preClasses.joined(separator: ", ")); this dataset has \(trainSet.classes.joined(separator: ", "))") }
                let fresh = ParameterStore(graph: graph, seed: c.seed)
                let head = Self.headParameters(graph)
                for name in head { if let i = store.index(of: name) { store[i] = fresh[i] } }
                results.log("the pretrained model's classes (\(preClasses.prefix(5).joined(separator: ", "))\(preClasses.count > 5 ? ", …" : "")) differ from this dataset's: re-initialized the head \(head.joined(separator: ", "))")
            }
        }
        let (frozenParams, frozenBN) = frozen(graph)
        let exec = try Executor(graph: graph, batch: c.batchSize, mode: .training, parameters: store, frozen: frozenParams,
                                frozenBatchNorm: frozenBN, seed: c.seed)
        let trainer = Trainer(executor: exec, optimizer: optimizer, learningRate: 0,
                              loss: SoftmaxCrossEntropy(labelSmoothing: c.labelSmoothing), regularizer: regularizer)
        let loader = BatchLoader(folder: trainSet, preprocessing: preprocessing(training: true), batchSize: c.batchSize,
                                 shuffle: true, dropLast: true, seed: c.seed, workers: c.workers)
        defer { loader.close() }
        guard loader.batchesPerEpoch > 0 else { throw TaskError("\(c.trainPath) has \(trainSet.count) images, fewer than one batch of \(c.batchSize)") }
        let evaluator = try Evaluator(graph: graph, store: store, batch: c.evalBatchSize, prep: preprocessing(training: false), workers: c.workers)
        results.log("training \(modelName) (\(graph.trainableParameterCount) parameters) on \(trainSet.count) images in \(trainSet.classes.count) classes, validating on \(valSet.count)")
        let steps = loader.batchesPerEpoch
        let classes = trainSet.classes.count
        var last: [String: Double] = [:]
        for epoch in startEpoch..<c.epochs {
            loader.start(epoch: epoch)
            exec.reseed(c.seed &+ UInt64(epoch) &* 7919)
            var mixRng = SplitMix64(seed: c.seed &+ UInt64(epoch) &* 104_729)
            var bar = ProgressBar(total: steps, label: "epoch \(epoch + 1)/\(c.epochs)", quiet: quiet)
            let t0 = Date()
            var lossSum = 0.0, correct = 0, seen = 0
            var lr: Float = 0
            for s in 0..<steps {
                guard let batch = try loader.next() else { break }
                let iteration = epoch * steps + s
                lr = schedule.rate(epoch: epoch, progress: Float(iteration) / Float(steps * c.epochs)) / (1 + decay * Float(iteration))
                trainer.learningRate = lr
                let input = exec.inputPointer(0)
                batch.images.withUnsafeBufferPointer { input.update(from: $0.baseAddress!, count: $0.count) }
                var soft: [Float]? = nil
                // Under mixup, training accuracy counts the label that dominates each mixed image.
                var scored = batch.labels
                if c.mixupAlpha > 0 {
                    let lam = Float(sampleBeta(Double(c.mixupAlpha), rng: &mixRng))
                    (soft, scored) = mixup(input, labels: batch.labels, classes: classes, lambda: lam, perSample: batch.images.count / batch.labels.count)
                }
                let loss = soft == nil ? trainer.step(labels: batch.labels) : trainer.step(soft: soft)
                guard loss.isFinite else {
                    var hint = ""
                    if let (name, gain) = Self.largestFrozenGain(graph, store, frozenBN), gain > 10 {
                        // Frozen batch norms divide by their running deviation: a channel whose running
                        // variance is near 0 multiplies the gradient of the layer before it as much.
                        hint = String(format: " (frozen batch norm '%@' multiplies a channel by %.0f: with freeze_bn, try a learning rate 10× lower, or freeze_bn: false)", name, gain)
                    }
                    throw TaskError("training diverged: the loss became \(loss) at epoch \(epoch + 1), step \(s + 1) (learning rate \(lr)); lower the learning rate or check the data\(hint); checkpoints up to epoch \(epoch) are kept")
                }
                lossSum += Double(loss)
                correct += Evaluator.top1Hits(exec.outputPointer(), labels: scored, classes: classes)
                seen += batch.labels.count
                let rate = Double(seen) / Date().timeIntervalSince(t0)
                bar.update(s + 1, String(format: "loss %.4f  lr %.2e  %.0f img/s", lossSum / Double(s + 1), lr, rate))
            }
            let trainTime = Date().timeIntervalSince(t0)
            let val = try evaluator.run(valSet, labelSmoothing: c.labelSmoothing)
            let path = results.weightsPath(modelName, epoch: epoch + 1)
            try checkpoint(graph: graph, store: store, classes: trainSet.classes, epoch: epoch + 1, carried: carried,
                           extras: trainer.optimizer.state.reduce(into: [:]) { $0["optimizer." + $1.key] = $1.value }).write(to: path)
            last = ["epoch": Double(epoch + 1), "lr": Double(lr), "loss": lossSum / Double(steps), "accuracy": Double(correct) / Double(seen),
                    "val_loss": val.loss, "val_accuracy": val.top1, "seconds": trainTime, "images_per_s": Double(seen) / trainTime]
            try results.record(["epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_s"].map { ($0, last[$0]!) })
            try results.plotHistory()
            results.log(String(format: "epoch %d/%d: loss %.4f, train accuracy %.2f%%, val loss %.4f, val accuracy %.2f%% (%.0f s, %.0f img/s) -> %@",
                               epoch + 1, c.epochs, last["loss"]!, 100 * last["accuracy"]!, val.loss, 100 * val.top1, trainTime, last["images_per_s"]!, path))
            try results.status(["state": epoch + 1 == c.epochs ? "done" : "training", "epoch": epoch + 1, "epochs": c.epochs,
                                "val_accuracy": val.top1, "checkpoint": path])
        }
        if startEpoch >= c.epochs { results.log("all \(c.epochs) epochs are already done in \(resultsDir)") }
        return last
    }

    func checkpoint(graph: Graph, store: ParameterStore, classes: [String], epoch: Int, carried: [String: String] = [:], extras: [String: [Float]] = [:]) throws -> Checkpoint {
        let names = String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self)
        var meta = [
            "tao.task": "classification", "tao.arch": modelName, "tao.classes": names, "tao.epoch": "\(epoch)",
            "tao.input_shape": config.inputShape.map(String.init).joined(separator: ","), "tao.preprocess_mode": config.preprocessMode.rawValue,
        ]
        meta.merge(carried) { a, _ in a }
        return Checkpoint(graph: graph, parameters: store, metadata: meta, extras: extras)
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
