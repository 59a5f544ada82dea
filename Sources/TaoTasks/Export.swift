import Foundation
import TaoGraph
import TaoData
import TaoONNX
import TaoRuntime

extension ClassificationTask {
    /// `tao classification export`: writes a trained model as ONNX (opset 17, dynamic batch), with
    /// its class labels, input size and preprocessing in the metadata.
    public static func export(modelPath: String, output: String, classMap: String? = nil, log: (String) -> Void = { _ in }) throws {
        let (ck, card) = try loadModel(modelPath)
        if let classMap { try checkClassMap(classMap, classes: card.classes, model: modelPath) }
        let classes = card.classes
        try ONNXExport.write(ck.graph, ck.parameters, to: output, metadata: try onnxMetadata(card))
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        log("wrote \(output) (ONNX opset \(ONNXExport.opset), input 'image' [batch,\(ck.graph.shape(of: ck.graph.inputs[0]).dims.map(String.init).joined(separator: ","))], output 'logits' [batch,\(classes.count)], \(size / 1024) KiB)")
    }
}

extension ClassificationTask {
    /// Class labels, input shape, preprocessing and architecture, for an ONNX file's metadata_props.
    static func onnxMetadata(_ card: ModelCard) throws -> [String: String] {
        var meta: [String: String] = ["classes": String(decoding: try JSONSerialization.data(withJSONObject: card.classes), as: UTF8.self),
                                      "input_shape": card.inputShape.map(String.init).joined(separator: ","), "arch": card.arch]
        if let p = card.preprocessMode { meta["preprocess_mode"] = p }
        return meta
    }

    /// `export --data_type int8`: the model as INT8 ONNX in QDQ form (batch norms folded; int8
    /// convolution inputs and weights with the calibration's scales), for TensorRT's explicit
    /// quantization, onnxruntime or OpenVINO.
    public static func exportQDQ(modelPath: String, ranges: [String: Float], output: String) throws {
        let (ck, card) = try loadModel(modelPath)
        var meta = try onnxMetadata(card)
        meta["quantization"] = "int8 QDQ: convolution inputs per tensor, weights per output channel, zero points 0"
        try ONNXExport.writeQDQ(ck.graph, ck.parameters, ranges: ranges, to: output, metadata: meta)
    }
}

extension ClassificationTask {
    /// INT8 calibration: fp32 inference over up to `batches` × `batchSize` images of `imageDir`
    /// (preprocessed as this spec says), recording each activation's range.
    public func calibrate(modelPath: String, imageDir: String, batches: Int, batchSize: Int,
                          method: Int8Calibration.Method = .max) throws -> [String: Float] {
        guard batches >= 1, batchSize >= 1 else { throw TaskError("--batches and --batch_size must be at least 1") }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: imageDir, isDirectory: &isDir), isDir.boolValue else {
            throw TaskError("calibration folder \(imageDir) does not exist")
        }
        // Spread over the whole folder (its listing is sorted by class), not its first class.
        let all = Self.imageFiles(under: imageDir), want = min(all.count, batches * batchSize)
        let files = (0..<want).map { all[$0 * all.count / max(want, 1)] }
        guard !files.isEmpty else { throw TaskError("calibration folder \(imageDir) has no .jpg, .jpeg or .png images") }
        let (ck, _) = try Self.loadModel(modelPath)
        let shape = ck.graph.shape(of: ck.graph.inputs[0]).dims
        guard shape == config.inputShape else { throw TaskError("\(modelPath) takes \(shape) images; the spec's input_image_size is \(config.inputShape)") }
        let loader = BatchLoader(folder: ImageFolder(paths: files), preprocessing: preprocessing(training: false), batchSize: min(batchSize, files.count),
                                 shuffle: false, dropLast: true, seed: 0, workers: config.workers)
        defer { loader.close() }
        loader.start(epoch: 0)
        var tensors: [Tensor] = []
        while let b = try loader.next() { tensors.append(Tensor(shape: Shape([b.labels.count] + shape), values: b.images)) }
        return try Int8Calibration.measure(ck.graph, ck.parameters, batches: tensors, method: method)
    }

    /// Writes an INT8 engine file: the model with its calibration ranges, which `evaluate` and
    /// `inference --engine_file` run through the INT8 engine, which picks its kernels by `tactics`
    /// each time it is built. Builds the engine once to check it.
    public static func writeEngine(modelPath: String, ranges: [String: Float], tactics: Int8Engine.Tactics = .timed, to path: String) throws {
        var (ck, card) = try loadModel(modelPath)
        _ = try Int8Engine(graph: ck.graph, parameters: ck.parameters, maxAbs: ranges, batch: 1, tactics: .direct)
        card.int8 = ModelCard.Int8Record(ranges: ranges, tactics: tactics.rawValue)
        try ck.setCard(card)
        try ck.write(to: path)
    }
}

extension ClassificationTask {
    /// Calibration ranges as JSON with sorted keys: the same ranges give the same bytes.
    static var sortedJSON: JSONEncoder { let e = JSONEncoder(); e.outputFormatting = .sortedKeys; return e }

    /// What `export --data_type int8` writes and from what.
    public struct Int8Export: Sendable {
        public var output: String
        /// The spec whose preprocessing calibration uses (needed with `imageDir`).
        public var spec: String?
        /// Images to calibrate on; without them, the ranges come from `cacheFile`.
        public var imageDir: String?
        /// Calibration ranges (JSON): written after calibrating (default OUTPUT with .calib.json), else read.
        public var cacheFile: String?
        public var batches = 10, batchSize = 8
        public var method = Int8Calibration.Method.max
        public var tactics = Int8Engine.Tactics.timed
        /// Default OUTPUT with .int8.onnx and .int8.tao.
        public var qdqFile: String?, engineFile: String?
        public init(output: String) { self.output = output }
    }

    /// `export --data_type int8`: calibration (or a cached one), then the INT8 ONNX in QDQ form and
    /// the INT8 engine file. Returns the paths of the cache, the QDQ file and the engine file.
    @discardableResult
    public static func exportInt8(modelPath: String, _ o: Int8Export, log: (String) -> Void = { _ in }) throws -> (cache: String, qdq: String, engine: String) {
        let stem = (o.output as NSString).deletingPathExtension
        let cache = o.cacheFile ?? stem + ".calib.json"
        let ranges: [String: Float]
        if let dir = o.imageDir {
            guard let spec = o.spec else { throw TaskError("INT8 calibration needs the spec (-e) for its preprocessing") }
            ranges = try ClassificationTask(specPath: spec).calibrate(modelPath: modelPath, imageDir: dir, batches: o.batches, batchSize: o.batchSize, method: o.method)
            try AtomicFile.write(try sortedJSON.encode(ranges), to: cache)
            log("calibrated (\(o.method.rawValue)) on \(dir): ranges of \(ranges.count) activations -> \(cache)")
        } else if let file = o.cacheFile {
            guard let data = FileManager.default.contents(atPath: file) else { throw TaskError("--cal_cache_file \(file) cannot be read") }
            guard let r = try? JSONDecoder().decode([String: Float].self, from: data) else { throw TaskError("--cal_cache_file \(file) is not a calibration file of tao-swift") }
            ranges = r
        } else {
            throw TaskError("--data_type int8 needs --cal_image_dir (to calibrate) or --cal_cache_file (an earlier calibration)")
        }
        let qdq = o.qdqFile ?? stem + ".int8.onnx"
        try exportQDQ(modelPath: modelPath, ranges: ranges, output: qdq)
        log("wrote \(qdq) (INT8 ONNX in QDQ form, batch norms folded, for TensorRT, onnxruntime or OpenVINO)")
        let engine = o.engineFile ?? stem + ".int8.tao"
        try writeEngine(modelPath: modelPath, ranges: ranges, tactics: o.tactics, to: engine)
        log("wrote the INT8 engine file \(engine); run it with: tao classification evaluate|inference --engine_file \(engine)")
        return (cache, qdq, engine)
    }
}
