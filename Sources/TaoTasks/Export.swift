import Foundation
import TaoGraph
import TaoData
import TaoONNX
import TaoRuntime

extension ClassificationTask {
    /// `tao classification export`: writes a trained model as ONNX (opset 17, dynamic batch), with
    /// its class labels, input size and preprocessing in the metadata.
    public static func export(modelPath: String, output: String, log: (String) -> Void = { _ in }) throws {
        let (ck, classes) = try loadModel(modelPath)
        try ONNXExport.write(ck.graph, ck.parameters, to: output, metadata: try onnxMetadata(ck, classes))
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        log("wrote \(output) (ONNX opset \(ONNXExport.opset), input 'image' [batch,\(ck.graph.shape(of: ck.graph.inputs[0]).dims.map(String.init).joined(separator: ","))], output 'logits' [batch,\(classes.count)], \(size / 1024) KiB)")
    }
}

extension ClassificationTask {
    /// Class labels, input shape, preprocessing and architecture, for an ONNX file's metadata_props.
    static func onnxMetadata(_ ck: Checkpoint, _ classes: [String]) throws -> [String: String] {
        var meta: [String: String] = ["classes": String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self)]
        for (key, name) in [("tao.input_shape", "input_shape"), ("tao.preprocess_mode", "preprocess_mode"), ("tao.arch", "arch")] {
            if let v = ck.metadata[key] { meta[name] = v }
        }
        return meta
    }

    /// `export --data_type int8`: the model as INT8 ONNX in QDQ form (batch norms folded; int8
    /// convolution inputs and weights with the calibration's scales), for TensorRT's explicit
    /// quantization, onnxruntime or OpenVINO.
    public static func exportQDQ(modelPath: String, ranges: [String: Float], output: String) throws {
        let (ck, classes) = try loadModel(modelPath)
        var meta = try onnxMetadata(ck, classes)
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
        let (ck, _) = try loadModel(modelPath)
        _ = try Int8Engine(graph: ck.graph, parameters: ck.parameters, maxAbs: ranges, batch: 1, tactics: .direct)
        var meta = ck.metadata
        meta["tao.int8.ranges"] = String(decoding: try JSONEncoder().encode(ranges), as: UTF8.self)
        meta["tao.int8.tactics"] = tactics.rawValue
        meta["tao.engine"] = "int8"
        try Checkpoint(graph: ck.graph, parameters: ck.parameters, metadata: meta).write(to: path)
    }
}
