import Foundation
import TaoData
import TaoGraph
import TaoONNX
import TaoRuntime

/// The hooks that the commands working on a trained model — ONNX export, INT8 calibration, the
/// INT8 engine and QDQ file, prune — need from a task. Those commands are written once, in this
/// protocol's extension; a task supplies how its images become input batches and how it scores a
/// model on its validation data.
public protocol ModelTask {
    /// The task as model cards and the CLI name it ("classification", "detectnet_v2").
    static var taskName: String { get }
    init(specPath: String) throws
    /// A model file of this task: a checkpoint of ours, or an ONNX file where the task reads one.
    static func readCheckpoint(_ path: String) throws -> Checkpoint
    /// INT8 calibration input: up to `images` images of `imageDir` in batches of `batchSize`
    /// ([N, C, H, W] each), preprocessed as evaluation preprocesses them, for a model taking `inputShape`.
    func calibrationBatches(imageDir: String, images: Int, batchSize: Int, inputShape: [Int]) throws -> [Tensor]
    /// The validation score prune reports before and after pruning (e.g. "val_accuracy", "val_mAP"),
    /// of a model of `classes`; nil where the spec has no validation data.
    func validationScore(_ graph: Graph, _ store: ParameterStore, classes: [String]) throws -> (name: String, value: Double)?
    /// Training images without augmentation, for measuring a pruned model's batch-norm statistics
    /// again: batches until `images` are used (or the data runs out), then nil.
    func batchNormSource(images: Int, inputShape: [Int], classes: [String]) throws -> BatchSource
}

/// Input batches one after another; `close` releases the loader behind them.
public struct BatchSource {
    public var next: () throws -> Tensor?
    public var close: () -> Void
    public init(next: @escaping () throws -> Tensor?, close: @escaping () -> Void = {}) { self.next = next; self.close = close }
}

/// What `export --data_type int8` writes and from what.
public struct Int8ExportOptions: Sendable {
    public var output: String
    /// The spec whose preprocessing calibration uses (needed with `imageDir`).
    public var spec: String?
    /// Images to calibrate on; without them, the ranges come from `cacheFile`.
    public var imageDir: String?
    /// Calibration ranges (JSON): written after calibrating (default OUTPUT with .calib.json), else read.
    public var cacheFile: String?
    public var batches = 10, batchSize = 8
    public var method = Self.defaultMethod
    /// Entropy, as TAO's calibrators (TensorRT's IInt8EntropyCalibrator2).
    public static let defaultMethod = Int8Calibration.Method.entropy
    public var tactics = Int8Engine.Tactics.timed
    /// Convolutions to keep in fp32 in the engine: none, these, or chosen by measurement on the
    /// calibration images (`Int8Precision`) until the output error is at most `maxError`.
    public var fp32Layers = FP32Layers.none
    public enum FP32Layers: Sendable, Equatable { case none, named([String]), auto(maxError: Double) }
    /// Default OUTPUT with .int8.onnx and .int8.tao.
    public var qdqFile: String?, engineFile: String?
    public init(output: String) { self.output = output }
}

extension ModelTask {
    public typealias Int8Export = Int8ExportOptions

    /// A checkpoint of ours, or an ONNX file that carries a card of this task (one that `export` wrote).
    public static func readCheckpoint(_ path: String) throws -> Checkpoint {
        guard path.lowercased().hasSuffix(".onnx") else { return try Checkpoint.read(from: path) }
        guard let json = try ONNXImport.metadata(path)[ModelCard.key], var card = try? JSONDecoder().decode(ModelCard.self, from: Data(json.utf8)) else {
            throw TaskError("\(path) is an ONNX file without a \(taskName) model card (tao-swift's export writes one); it cannot be read as a \(taskName) model")
        }
        // A YOLO export ends in its decoding and NMS: the model is the network up to its heads.
        var heads: [String]?
        if case .yolo = card.decoding { heads = card.decoding.outputNames }
        let r = try ONNXImport.read(path, logits: false, outputs: heads)
        card.onnx = ModelCard.ONNXOrigin(path: path, notes: r.notes)
        return try Checkpoint(graph: r.graph, parameters: r.parameters, card: card)
    }

    /// Loads a model of this task (ours, an engine file, or an ONNX file) with its card.
    public static func loadModel(_ path: String) throws -> (Checkpoint, ModelCard) {
        let ck = try readCheckpoint(path)
        guard let card = try ck.card, card.task == taskName, !card.classes.isEmpty else {
            let other = (try? ck.card)??.task
            throw TaskError("\(path) is not a \(taskName) model of tao-swift\(other.map { " (it is a \($0) model)" } ?? "")")
        }
        return (ck, card)
    }

    /// What `evaluate` and `inference` start with: the results folder, the spec's notes logged in it,
    /// and the model (ours, an engine file or an ONNX file) with its card, checked against the spec by `check`.
    static func openModel(_ path: String, resultsDir: String, quiet: Bool, notes: [String],
                          check: (ModelCard, Graph) throws -> Void) throws -> (results: Results, checkpoint: Checkpoint, card: ModelCard) {
        let results = try Results(dir: resultsDir, quiet: quiet)
        for n in notes { results.log(n) }
        let (ck, card) = try loadModel(path)
        results.logImportNotes(card, path)
        try check(card, ck.graph)
        return (results, ck, card)
    }

    /// Up to `images` image files of `imageDir` spread over its sorted listing (so not just its
    /// first class or sequence), for INT8 calibration.
    static func spreadImages(_ imageDir: String, _ images: Int) throws -> [String] {
        let all = try imageFiles(under: imageDir), want = min(all.count, images)
        return (0..<want).map { all[$0 * all.count / max(want, 1)] }
    }

    /// Calibration batches of `spreadImages`, each image made the model's input ([C, H, W] of
    /// `inputShape`) by `input`, decoded in parallel.
    static func calibrationBatches(_ imageDir: String, images: Int, batchSize: Int, inputShape: [Int],
                                   _ input: @escaping @Sendable (String) throws -> [Float]) throws -> [Tensor] {
        let files = try spreadImages(imageDir, images)
        return try stride(from: 0, to: files.count, by: batchSize).map { start in
            let chunk = Array(files[start..<min(start + batchSize, files.count)])
            let xs = try parallelMap(chunk.count) { k in try input(chunk[k]) }
            return Tensor(shape: Shape([chunk.count] + inputShape), values: xs.flatMap { $0 })
        }
    }

    /// The engine a model file asks for: INT8 (its calibration ranges and kernel choice), bf16, or fp32.
    static func engineSettings(_ card: ModelCard) throws -> EngineSettings {
        switch (card.int8, card.arithmetic) {
        case (let r?, _):
            guard let t = Int8Engine.Tactics(rawValue: r.tactics) else { throw TaskError("the engine file names unknown INT8 tactics '\(r.tactics)'") }
            return .int8(Int8Settings(ranges: r.ranges, tactics: t, fp32Layers: Set(r.fp32Layers ?? [])))
        case (nil, nil): return .fp32
        case (nil, "bf16"?): return .bf16
        case (nil, let a?): throw TaskError("the engine file asks for arithmetic '\(a)'; this tao-swift runs fp32, bf16 and int8")
        }
    }

    /// Checks a TAO classmap.json ({"class": index, …}) against the classes a model was trained on.
    public static func checkClassMap(_ path: String, classes: [String], model: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TaskError("classmap \(path) cannot be read") }
        guard let map = try? JSONDecoder().decode([String: Int].self, from: data) else {
            throw TaskError("classmap \(path) is not a TAO class map (a JSON object of class name to index)")
        }
        let named = map.sorted { $0.value < $1.value }.map(\.key)
        guard named == classes, Set(map.values) == Set(0..<named.count) else {
            throw TaskError("classmap \(path) lists \(named.joined(separator: ", ")), but \(model) was trained on \(classes.joined(separator: ", "))")
        }
    }
}

// MARK: - Export

extension ModelTask {
    /// Class labels, input shape, preprocessing, architecture and the whole model card, for an ONNX file's metadata_props.
    static func onnxMetadata(_ card: ModelCard) throws -> [String: String] {
        var plain = card
        plain.int8 = nil; plain.onnx = nil; plain.arithmetic = nil
        var meta: [String: String] = ["classes": String(decoding: try JSONSerialization.data(withJSONObject: card.classes), as: UTF8.self),
                                      "input_shape": card.inputShape.map(String.init).joined(separator: ","), "arch": card.arch,
                                      "task": card.task, ModelCard.key: String(decoding: try ModelCard.encoder.encode(plain), as: UTF8.self)]
        if let p = card.preprocessMode { meta["preprocess_mode"] = p }
        return meta
    }

    /// `export`: writes a trained model as ONNX (opset 17, dynamic batch), its outputs named as the
    /// task's head decoding names them, with class labels, input size, preprocessing and the model
    /// card in the metadata. A detector whose decoding ONNX can express (YOLO) gets it appended, with
    /// ONNX's NonMaxSuppression, unless `rawOutputs`.
    public static func export(modelPath: String, output: String, classMap: String? = nil, rawOutputs: Bool = false, log: (String) -> Void = { _ in }) throws {
        let (ck, card) = try loadModel(modelPath)
        if let classMap { try checkClassMap(classMap, classes: card.classes, model: modelPath) }
        var m = try ONNXExport.model(ck.graph, ck.parameters, metadata: try onnxMetadata(card), outputNames: card.decoding.outputNames)
        if !rawOutputs, let d = card.decodingGraph(ck.graph) { try ONNXExport.appendYOLODecoding(&m, d) }
        try AtomicFile.write(try m.serializedData(), to: output)
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        let dims = { (s: Onnx_ValueInfoProto) in "[" + s.type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? String($0.dimValue) : $0.dimParam }.joined(separator: ",") + "]" }
        let outputs = m.graph.output.map { "'\($0.name)' \(dims($0))" }.joined(separator: ", ")
        log("wrote \(output) (ONNX opset \(ONNXExport.opset), input 'image' \(dims(m.graph.input[0])), output\(m.graph.output.count > 1 ? "s" : "") \(outputs), \(size / 1024) KiB)")
    }

    /// `export --data_type int8`: the model as INT8 ONNX in QDQ form (batch norms folded; int8
    /// convolution inputs and weights with the calibration's scales), for TensorRT's explicit
    /// quantization, onnxruntime or OpenVINO.
    public static func exportQDQ(modelPath: String, ranges: [String: Float], fp32Layers: [String] = [], output: String) throws {
        let (ck, card) = try loadModel(modelPath)
        var meta = try onnxMetadata(card)
        meta["quantization"] = "int8 QDQ: convolution inputs per tensor, weights per output channel, zero points 0"
            + (fp32Layers.isEmpty ? "" : "; convolutions kept in fp32: " + fp32Layers.joined(separator: ","))
        try ONNXExport.writeQDQ(ck.graph, ck.parameters, ranges: ranges, fp32Layers: Set(fp32Layers), to: output, metadata: meta,
                                outputNames: card.decoding.outputNames)
    }

    /// INT8 calibration: fp32 inference over up to `batches` × `batchSize` images of `imageDir`
    /// (preprocessed as this spec says), recording each activation's range.
    public func calibrate(modelPath: String, imageDir: String, batches: Int, batchSize: Int,
                          method: Int8Calibration.Method = Int8ExportOptions.defaultMethod) throws -> [String: Float] {
        let (ck, _) = try Self.loadModel(modelPath)
        return try Int8Calibration.measure(ck.graph, ck.parameters, batches: try calibrationImages(ck, imageDir: imageDir, batches: batches, batchSize: batchSize),
                                           method: method)
    }

    /// The calibration images of `imageDir` as input batches for the model of `ck`.
    func calibrationImages(_ ck: Checkpoint, imageDir: String, batches: Int, batchSize: Int) throws -> [Tensor] {
        guard batches >= 1, batchSize >= 1 else { throw TaskError("--batches and --batch_size must be at least 1") }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: imageDir, isDirectory: &isDir), isDir.boolValue else {
            throw TaskError("calibration folder \(imageDir) does not exist")
        }
        let tensors = try calibrationBatches(imageDir: imageDir, images: batches * batchSize, batchSize: batchSize,
                                             inputShape: ck.graph.shape(of: ck.graph.inputs[0]).dims)
        guard !tensors.isEmpty else { throw TaskError("calibration folder \(imageDir) has no .jpg, .jpeg or .png images") }
        return tensors
    }

    /// The convolutions to keep in fp32: as named (checked against the model), or chosen by
    /// `Int8Precision` on the calibration images of `o` (needs `o.imageDir` and `o.spec`).
    static func fp32Layers(modelPath: String, ranges: [String: Float], _ o: Int8ExportOptions, log: (String) -> Void) throws -> [String] {
        let (ck, _) = try loadModel(modelPath)
        switch o.fp32Layers {
        case .none: return []
        case .named(let names):
            let convs = Set(Int8Precision.convolutions(ck.graph).map(\.name))
            if let bad = names.first(where: { !convs.contains($0) }) {
                throw TaskError("--fp32_layers: '\(bad)' is not a convolution of \(modelPath) (its convolutions: \(Int8Precision.convolutions(ck.graph).map(\.name).joined(separator: ", ")))")
            }
            return names
        case .auto(let maxError):
            guard let dir = o.imageDir, let spec = o.spec else {
                log("note: every convolution in int8: --fp32_layers auto measures on the calibration images (--cal_image_dir and -e); name the layers to keep in fp32 with --fp32_layers instead")
                return []
            }
            let batches = try Self(specPath: spec).calibrationImages(ck, imageDir: dir, batches: o.batches, batchSize: o.batchSize)
            let c = try Int8Precision.choose(ck.graph, ck.parameters, ranges: ranges, batches: batches, maxError: maxError, log: log)
            log(c.fp32Layers.isEmpty ? String(format: "every convolution in int8: output error %.4g (allowed %.4g)", c.int8Error, maxError)
                : String(format: "%d convolution%@ kept in fp32 (%@): output error %.4g (all int8: %.4g; allowed %.4g); %.1f%% of multiply-adds in int8",
                         c.fp32Layers.count, c.fp32Layers.count == 1 ? "" : "s", c.fp32Layers.joined(separator: ", "), c.error, c.int8Error, maxError, 100 * c.int8MACShare))
            return c.fp32Layers
        }
    }

    /// Writes an INT8 engine file: the model with its calibration ranges, which `evaluate` and
    /// `inference --engine_file` run through the INT8 engine, which picks its kernels by `tactics`
    /// each time it is built. Builds the engine once to check it.
    public static func writeEngine(modelPath: String, ranges: [String: Float], tactics: Int8Engine.Tactics = .timed,
                                   fp32Layers: [String] = [], to path: String) throws {
        var (ck, card) = try loadModel(modelPath)
        _ = try Int8Engine(graph: ck.graph, parameters: ck.parameters, maxAbs: ranges, batch: 1, tactics: .direct, fp32Layers: Set(fp32Layers))
        card.int8 = ModelCard.Int8Record(ranges: ranges, tactics: tactics.rawValue, fp32Layers: fp32Layers.isEmpty ? nil : fp32Layers)
        try ck.setCard(card)
        ck.extras = [:]   // an engine runs; the optimizer state of a training checkpoint stays behind
        try ck.write(to: path)
    }

    /// `export --data_type bf16`: a bf16 engine file — the model, whose card asks `evaluate` and
    /// `inference` to run its convolutions, transposed convolutions and dense layers on bfloat16
    /// inputs and weights (batch norms folded in fp32 first; fp32 accumulation and outputs; the
    /// fusions of fp32). Built once to check it where the processor has bf16; elsewhere written with
    /// a note (it runs in fp32 there, and in bf16 where AVX512-BF16 or AMX is found).
    public static func writeBF16Engine(modelPath: String, to path: String, log: (String) -> Void = { _ in }) throws {
        var (ck, card) = try loadModel(modelPath)
        if card.int8 != nil { throw TaskError("\(modelPath) is an INT8 engine file; export a bf16 engine from the fp32 model it was made from") }
        if Executor.supportsBF16 {
            _ = try Executor(graph: ck.graph, batch: 1, mode: .inference, parameters: ck.parameters, arithmetic: .bf16)
            if let note = Executor.bf16SlowerNote { log(note + " (the fp32 model runs faster here)") }
        } else {
            log("note: this processor has no AVX512-BF16 or AMX (oneDNN finds \(Executor.cpuISA)): the bf16 engine file runs in fp32 here, in bf16 on a processor that has them")
        }
        card.arithmetic = Arithmetic.bf16.rawValue
        try ck.setCard(card)
        ck.extras = [:]
        try ck.write(to: path)
        log("wrote the bf16 engine file \(path); run it with: tao \(taskName) evaluate|inference \(taskName == "classification" ? "--engine_file" : "-m") \(path)")
    }

    /// `export --data_type int8`: calibration (or a cached one), then the INT8 ONNX in QDQ form and
    /// the INT8 engine file. Returns the paths of the cache, the QDQ file and the engine file.
    @discardableResult
    public static func exportInt8(modelPath: String, _ o: Int8ExportOptions, log: (String) -> Void = { _ in }) throws -> (cache: String, qdq: String, engine: String) {
        let stem = (o.output as NSString).deletingPathExtension
        let cache = o.cacheFile ?? stem + ".calib.json"
        let ranges: [String: Float]
        if let dir = o.imageDir {
            guard let spec = o.spec else { throw TaskError("INT8 calibration needs the spec (-e) for its preprocessing") }
            ranges = try Self(specPath: spec).calibrate(modelPath: modelPath, imageDir: dir, batches: o.batches, batchSize: o.batchSize, method: o.method)
            let e = JSONEncoder(); e.outputFormatting = .sortedKeys   // the same ranges give the same bytes
            try AtomicFile.write(try e.encode(ranges), to: cache)
            log("calibrated (\(o.method.rawValue)) on \(dir): ranges of \(ranges.count) activations -> \(cache)")
        } else if let file = o.cacheFile {
            guard let data = FileManager.default.contents(atPath: file) else { throw TaskError("--cal_cache_file \(file) cannot be read") }
            guard let r = try? JSONDecoder().decode([String: Float].self, from: data) else { throw TaskError("--cal_cache_file \(file) is not a calibration file of tao-swift") }
            ranges = r
        } else {
            throw TaskError("--data_type int8 needs --cal_image_dir (to calibrate) or --cal_cache_file (an earlier calibration)")
        }
        let fp32 = try fp32Layers(modelPath: modelPath, ranges: ranges, o, log: log)
        let qdq = o.qdqFile ?? stem + ".int8.onnx"
        try exportQDQ(modelPath: modelPath, ranges: ranges, fp32Layers: fp32, output: qdq)
        log("wrote \(qdq) (INT8 ONNX in QDQ form, batch norms folded, for TensorRT, onnxruntime or OpenVINO)")
        let engine = o.engineFile ?? stem + ".int8.tao"
        try writeEngine(modelPath: modelPath, ranges: ranges, tactics: o.tactics, fp32Layers: fp32, to: engine)
        log("wrote the INT8 engine file \(engine); run it with: tao \(taskName) evaluate|inference \(taskName == "classification" ? "--engine_file" : "-m") \(engine)")
        return (cache, qdq, engine)
    }
}

/// Every .jpg/.jpeg/.png under a folder (or the file itself), sorted.
func imageFiles(under path: String) throws -> [String] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw TaskError("\(path): no such file or folder") }
    guard isDir.boolValue else { return [path] }
    var files: [String] = []
    let e = FileManager.default.enumerator(atPath: path)
    while let f = e?.nextObject() as? String {
        let name = (f as NSString).lastPathComponent
        if !name.hasPrefix("."), ImageFolder.extensions.contains((f as NSString).pathExtension.lowercased()) { files.append("\(path)/\(f)") }
    }
    return files.sorted()
}
