import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoONNX
import TaoReport
import TaoRuntime
import TaoTrain

/// Accuracy, loss and confusion of a model over an image folder.
public struct EvaluationResult: Sendable {
    public var loss: Double
    public var top1: Double
    public var topK: Double
    public var k: Int
    /// confusion[true][predicted]
    public var confusion: [[Int]]
    /// The top-1 class and its softmax score of the images `run` was asked to keep, by index.
    public var kept: [Int: (predicted: Int, score: Double)] = [:]

    /// Per class: (precision, recall, F1), from the confusion matrix.
    public var perClass: [(precision: Double, recall: Double, f1: Double)] { ConfusionMatrix(counts: confusion).perClass }
}

/// What an INT8 engine is built from: calibration ranges, kernel choice, the layers kept in fp32.
struct Int8Settings {
    var ranges: [String: Float]
    var tactics: Int8Engine.Tactics
    var fp32Layers: Set<String> = []
}

/// The engine a model file asks for: fp32 (a checkpoint or ONNX file), bf16 (an engine file of
/// `export --data_type bf16`) or INT8 (an engine file of `export --data_type int8`).
enum EngineSettings {
    case fp32, bf16
    case int8(Int8Settings)
}

/// A model in inference mode: fp32 or bf16 through the executor, or through the INT8 engine when
/// calibration ranges are given, with its input and outputs as pointers.
final class ModelRunner {
    let exec: Executor?
    let int8: Int8Engine?
    let batch: Int
    /// What the log says after the model's name: "", " (INT8 engine)", " (bf16 engine)", or that a
    /// bf16 engine file ran in fp32 on a processor without bf16.
    let label: String

    init(graph: Graph, store: ParameterStore, batch: Int, engine: EngineSettings = .fp32) throws {
        switch engine {
        case .int8(let s):
            (exec, int8) = (nil, try Int8Engine(graph: graph, parameters: store, maxAbs: s.ranges, batch: batch, tactics: s.tactics, fp32Layers: s.fp32Layers))
            label = " (INT8 engine)"
        case .bf16 where Executor.supportsBF16:
            (exec, int8) = (try Executor(graph: graph, batch: batch, mode: .inference, parameters: store, arithmetic: .bf16), nil)
            label = Executor.bf16SlowerNote == nil ? " (bf16 engine)" : " (bf16 engine; without AMX, slower than fp32 here)"
        case .bf16, .fp32:
            (exec, int8) = (try Executor(graph: graph, batch: batch, mode: .inference, parameters: store), nil)
            if case .bf16 = engine {
                label = " (a bf16 engine file, run in fp32: this processor has no AVX512-BF16 or AMX — oneDNN finds \(Executor.cpuISA))"
            } else { label = "" }
        }
        self.batch = batch
    }

    func inputPointer() -> UnsafeMutablePointer<Float> { exec?.inputPointer(0) ?? int8!.inputPointer() }
    /// Puts `samples` (each one input's worth, `per` values) at the front of the batch, zeros after them.
    func load(_ samples: [[Float]], per: Int) {
        let input = inputPointer()
        input.update(repeating: 0, count: batch * per)
        for (k, x) in samples.enumerated() { x.withUnsafeBufferPointer { input.advanced(by: k * per).update(from: $0.baseAddress!, count: per) } }
    }
    func forward() { if let exec { exec.forward() } else { int8!.forward() } }
    func outputPointer(_ i: Int = 0) -> UnsafeMutablePointer<Float> { exec?.outputPointer(i) ?? int8!.outputPointer(i) }
    func outputShape(_ i: Int = 0) -> [Int] { exec?.outputShape(i).dims ?? int8!.outputShape(i) }
}

/// Runs a classifier over folders of images, in order.
final class Evaluator {
    let runner: ModelRunner
    let prep: Preprocessing
    let workers: Int
    var batch: Int { runner.batch }
    var label: String { runner.label }

    init(graph: Graph, store: ParameterStore, batch: Int, prep: Preprocessing, workers: Int,
         engine: EngineSettings = .fp32) throws {
        runner = try ModelRunner(graph: graph, store: store, batch: batch, engine: engine)
        self.prep = prep; self.workers = workers
    }

    func inputPointer() -> UnsafeMutablePointer<Float> { runner.inputPointer() }
    func forward() { runner.forward() }
    func outputPointer() -> UnsafeMutablePointer<Float> { runner.outputPointer() }
    func outputShape() -> [Int] { runner.outputShape() }

    /// Logits of every image of `folder`, in its order, passed to `visit(batch, logits pointer)`.
    func forEachBatch(_ folder: ImageFolder, _ visit: (Batch, UnsafePointer<Float>) throws -> Void) throws {
        let loader = BatchLoader(folder: folder, preprocessing: prep, batchSize: batch, shuffle: false, dropLast: false, seed: 0, workers: workers)
        defer { loader.close() }
        loader.start(epoch: 0)
        let per = prep.channels * prep.height * prep.width
        while let b = try loader.next() {
            let input = inputPointer()
            input.update(repeating: 0, count: batch * per)
            b.images.withUnsafeBufferPointer { input.update(from: $0.baseAddress!, count: $0.count) }
            forward()
            try visit(b, outputPointer())
        }
    }

    func run(_ folder: ImageFolder, labelSmoothing: Float = 0, k: Int = 5, keep: Set<Int> = []) throws -> EvaluationResult {
        let classes = outputShape()[1]
        let kk = min(k, classes)
        var confusion = ConfusionMatrix(classes: classes)
        var loss = 0.0, topK = 0
        var kept: [Int: (predicted: Int, score: Double)] = [:]
        let ce = SoftmaxCrossEntropy(labelSmoothing: labelSmoothing)
        try forEachBatch(folder) { b, y in
            loss += Double(ce(logits: y, grad: nil, batch: b.labels.count, classes: classes, labels: b.labels)) * Double(b.labels.count)
            for (i, label) in b.labels.enumerated() {
                let row = UnsafeBufferPointer(start: y + i * classes, count: classes)
                var best = 0
                for j in 1..<classes where row[j] > row[best] { best = j }
                confusion.add(truth: label, predicted: best)
                if keep.contains(b.indices[i]) { kept[b.indices[i]] = (best, 1 / row.reduce(0) { $0 + exp(Double($1 - row[best])) }) }
                if inTopK(row, label: label, k: kk) { topK += 1 }
            }
        }
        let n = Double(folder.count)
        return EvaluationResult(loss: loss / n, top1: confusion.accuracy, topK: Double(topK) / n, k: kk, confusion: confusion.counts, kept: kept)
    }

    static func top1Hits(_ y: UnsafePointer<Float>, labels: [Int], classes: Int) -> Int {
        var hits = 0
        for (i, l) in labels.enumerated() {
            var best = 0
            for j in 1..<classes where y[i * classes + j] > y[i * classes + best] { best = j }
            if best == l { hits += 1 }
        }
        return hits
    }
}

extension ClassificationTask: ModelTask {
    public static var taskName: String { "classification" }

    public static func readCheckpoint(_ path: String) throws -> Checkpoint { try readClassifier(path) }

    /// A checkpoint of ours, or an ONNX model imported into one (class labels from its metadata:
    /// our model card, our "classes" JSON or a PaddleOCR-style "character" list).
    static func readClassifier(_ path: String, inputShape: [Int]? = nil) throws -> Checkpoint {
        guard path.lowercased().hasSuffix(".onnx") else { return try Checkpoint.read(from: path) }
        let r = try ONNXImport.read(path, inputShape: inputShape)
        let outputs = r.graph.shape(of: r.graph.outputs[0])
        guard outputs.rank == 1 else { throw TaskError("\(path): the model's output is \(outputs) per image; a classifier gives [classes]") }
        var labels = r.metadata["classes"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] }
            ?? r.metadata["character"].map { $0.split(separator: "\n").map(String.init) }
        if labels?.count != outputs[0] { labels = (0..<outputs[0]).map { "class_\($0)" } }
        var card = ModelCard(task: "classification", arch: "onnx", classes: labels!, inputShape: r.graph.shape(of: r.graph.inputs[0]).dims,
                             preprocessMode: r.metadata["preprocess_mode"], decoding: .classifierLogits)
        if let json = r.metadata[ModelCard.key], let own = try? JSONDecoder().decode(ModelCard.self, from: Data(json.utf8)),
           own.task == taskName, own.classes.count == outputs[0] {
            card = own
        }
        card.onnx = ModelCard.ONNXOrigin(path: path, notes: r.notes)
        return try Checkpoint(graph: r.graph, parameters: r.parameters, card: card)
    }

    /// The model a command runs: `given` (-m), else the spec's eval_config.model_path.
    public func modelPath(_ given: String?) throws -> String {
        guard let path = given ?? config.evalModelPath else { throw TaskError("no model: pass -m MODEL or set eval_config.model_path") }
        return path
    }

    /// Evaluates a trained model on the spec's eval_config dataset (or `datasetPath`); writes evaluation.json.
    public func evaluate(modelPath: String?, datasetPath: String? = nil, resultsDir: String, quiet: Bool = false) throws -> EvaluationResult {
        let results = try Results(dir: resultsDir, quiet: quiet)
        let path = try self.modelPath(modelPath)
        guard let data = datasetPath ?? config.evalPath else { throw TaskError("no dataset: set eval_config.eval_dataset_path") }
        let (ck, card) = try Self.loadModel(path)
        let classes = card.classes
        results.logImportNotes(card, path)
        let folder = try ImageFolder(root: data, expectedClasses: classes)
        let ev = try Evaluator(graph: ck.graph, store: ck.parameters, batch: config.evalBatchSize, prep: preprocessing(training: false),
                               workers: config.workers, engine: Self.engineSettings(card))
        let r = try ev.run(folder, k: config.topK)
        results.log(String(format: "evaluated %@%@ on %d images of %@: top-1 accuracy %.2f%%, top-%d %.2f%%", path, ev.label,
                           folder.count, data, 100 * r.top1, r.k, 100 * r.topK))
        let width = max(12, classes.map(\.count).max() ?? 0)
        results.log("class".padding(toLength: width, withPad: " ", startingAt: 0) + "  precision  recall     f1")
        for (c, m) in r.perClass.enumerated() {
            results.log(classes[c].padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "  %9.4f  %6.4f  %6.4f", m.precision, m.recall, m.f1))
        }
        results.log("confusion matrix (rows: true class, columns: predicted):")
        for row in r.confusion { results.log(row.map { String(format: "%6d", $0) }.joined()) }
        try FileManager.default.createDirectory(atPath: "\(resultsDir)/plots", withIntermediateDirectories: true)
        let run = runName(resultsDir)
        try Plots.write(ConfusionChart(title: String(format: "Confusion matrix: %@ (top-1 %.2f%%)", run, 100 * r.top1), classes: classes, counts: r.confusion),
                        to: "\(resultsDir)/plots/confusion_matrix")
        try Plots.write(Plots.perClass(title: "Precision, recall and F1 per class: \(run)", classes: classes, r.perClass), to: "\(resultsDir)/plots/per_class")
        try results.events().scalars([("evaluate/top1", r.top1), ("evaluate/top\(r.k)", r.topK), ("evaluate/loss", r.loss)], step: card.epoch ?? 0)
        try results.writeJSON("evaluation.json", [
            "model": path, "dataset": data, "images": folder.count, "top1": r.top1, "top_k": r.topK, "k": r.k, "loss": r.loss,
            "classes": classes, "confusion": r.confusion,
            "per_class": r.perClass.map { ["precision": $0.precision, "recall": $0.recall, "f1": $0.f1] },
        ])
        try results.writeSummary()
        return r
    }

    /// Top-k classes with softmax scores for each image (a file or every image under a folder); writes inference.csv.
    public func inference(modelPath: String?, images: String, resultsDir: String, batchSize: Int? = nil, classMap: String? = nil,
                          quiet: Bool = false) throws -> [(String, [(String, Float)])] {
        let results = try Results(dir: resultsDir, quiet: quiet)
        let path = try self.modelPath(modelPath)
        // An ONNX model that is not a classifier (a detector, a segmenter): its raw outputs, per image.
        if path.lowercased().hasSuffix(".onnx") {
            let model = try ONNXImport.read(path, inputShape: config.inputShape, logits: false)
            let g = model.graph
            if g.outputs.count != 1 || g.shape(of: g.outputs[0]).rank != 1 {
                let files = try imageFiles(under: images)
                guard !files.isEmpty else { throw TaskError("\(images): no .jpg, .jpeg or .png images found") }
                for n in model.notes { results.log("note: \(n)") }
                _ = try RawOutputs.write(model, source: path, files: files, prep: preprocessing(training: false),
                                         batch: min(batchSize ?? config.evalBatchSize, files.count), resultsDir: resultsDir, results: results)
                return []
            }
        }
        let (ck, card) = try Self.loadModel(path)
        let classes = card.classes
        if let classMap { try Self.checkClassMap(classMap, classes: classes, model: path) }
        results.logImportNotes(card, path)
        let files = try imageFiles(under: images)
        guard !files.isEmpty else { throw TaskError("\(images): no .jpg, .jpeg or .png images found") }
        let folder = ImageFolder(paths: files)
        let ev = try Evaluator(graph: ck.graph, store: ck.parameters, batch: min(batchSize ?? config.evalBatchSize, files.count), prep: preprocessing(training: false),
                               workers: config.workers, engine: Self.engineSettings(card))
        var out: [(String, [(String, Float)])] = []
        let k = min(config.topK, classes.count)
        try ev.forEachBatch(folder) { b, y in
            for (i, idx) in b.indices.enumerated() {
                let row = (0..<classes.count).map { y[i * classes.count + $0] }
                let m = row.max()!
                let e = row.map { exp($0 - m) }
                let s = e.reduce(0, +)
                let top = row.indices.sorted { row[$0] > row[$1] }.prefix(k).map { (classes[$0], e[$0] / s) }
                out.append((files[idx], Array(top)))
            }
        }
        var csv = "image," + (1...k).map { "class_\($0),score_\($0)" }.joined(separator: ",") + "\n"
        for (f, top) in out {
            csv += "\"\(f)\"," + top.map { "\($0.0),\(String(format: "%.5f", $0.1))" }.joined(separator: ",") + "\n"
            results.log("\(f): " + top.map { "\($0.0) \(String(format: "%.3f", $0.1))" }.joined(separator: ", "))
        }
        try AtomicFile.write(Data(csv.utf8), to: "\(resultsDir)/inference.csv")
        // A contact sheet of the first images with their top class, to see at a glance what the model says.
        let shown = try out.prefix(48).map { f, top -> (image: Image, caption: String, color: RGB) in
            (try ImageCodec.decode(path: f, channels: 3), String(format: "%@ %.2f", top[0].0, top[0].1), RGB.text)
        }
        try AtomicFile.write(Data(try ImageCodec.encodePNG(Annotator.sheet(shown, columns: 8, cell: 128))), to: "\(resultsDir)/inference_images.png")
        results.log("inference with \(path)\(ev.label) on \(files.count) images: inference.csv and inference_images.png (the first \(shown.count) images with their top class) in \(resultsDir)")
        return out
    }
}
