import Foundation
import TaoData
import TaoGraph
import TaoONNX
import TaoRuntime

/// NumPy's .npy format (version 1.0): little-endian float32 in C order, for outputs a person
/// post-processes themselves (`numpy.load`).
public enum NPY {
    public static func encode(_ values: UnsafeBufferPointer<Float>, shape: [Int]) -> Data {
        encode(bytes: UnsafeRawBufferPointer(values), descr: "<f4", shape: shape)
    }

    /// Integers (indices) as int64, numpy's `<i8`.
    public static func encode(int64 values: [Float], shape: [Int]) -> Data {
        let v = values.map { Int64($0).littleEndian }
        return v.withUnsafeBytes { encode(bytes: $0, descr: "<i8", shape: shape) }
    }

    static func encode(bytes: UnsafeRawBufferPointer, descr: String, shape: [Int]) -> Data {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }"
        // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64 bytes.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        if let base = bytes.baseAddress { out.append(UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)) }
        return out
    }
}

/// Inference with a model that is not a classifier (an ONNX detector, segmenter, OCR network): each
/// image prepared as the spec says, every output written raw, one .npy per image and output.
enum RawOutputs {
    /// Writes `resultsDir/raw_outputs/<image>.<output>.npy` and `raw_outputs/index.json`; returns how many files.
    static func write(_ model: ONNXImport.Result, source: String, files: [String], prep: Preprocessing, batch: Int, resultsDir: String,
                      results: Results) throws -> Int {
        let g = model.graph
        let input = g.shape(of: g.inputs[0]).dims
        guard input == [prep.channels, prep.height, prep.width] else {
            throw TaskError("\(source) takes \(input) per image; the spec prepares \([prep.channels, prep.height, prep.width]) (input_image_size)")
        }
        let dir = "\(resultsDir)/raw_outputs"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let folder = ImageFolder(paths: files)
        let loader = BatchLoader(folder: folder, preprocessing: prep, batchSize: batch, shuffle: false, dropLast: false, seed: 0, workers: 1)
        defer { loader.close() }
        func safe(_ name: String) -> String { String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }) }
        // Each image's file stem, made unique.
        var stems: [String] = [], seen: [String: Int] = [:]
        for f in files {
            let stem = ((f as NSString).lastPathComponent as NSString).deletingPathExtension
            seen[stem, default: 0] += 1
            stems.append(seen[stem]! == 1 ? stem : "\(stem)_\(seen[stem]!)")
        }
        let perImage = Set(model.postSteps.filter { if case .nonMaxSuppression = $0.kind { true } else { false } }.flatMap(\.outputs))
        var executors: [Int: Executor] = [:]
        var index: [[String: Any]] = []
        var written = 0
        for start in stride(from: 0, to: files.count, by: batch) {
            let idx = Array(start..<min(start + batch, files.count))
            let b = try loader.makeBatch(idx, epoch: 0)
            let exec = try executors[idx.count] ?? Executor(graph: g, batch: idx.count, mode: .inference, parameters: model.parameters)
            executors[idx.count] = exec
            b.images.withUnsafeBufferPointer { exec.inputPointer(0).update(from: $0.baseAddress!, count: $0.count) }
            exec.forward()
            for (k, i) in idx.enumerated() {
                // The image's network outputs (a batch of one), then the file's outputs from them:
                // ArgMax, TopK and NonMaxSuppression at the model's end run here, on this image.
                let network = g.outputs.indices.map { o -> ONNXArray in
                    let shape = g.shape(of: g.outputs[o]).dims, n = shape.reduce(1, *)
                    return ONNXArray(dims: [1] + shape, values: Array(UnsafeBufferPointer(start: exec.outputPointer(o) + k * n, count: n)))
                }
                var outputs: [String: Any] = [:]
                for (name, a) in try model.fileOutputs(network) {
                    let file = "\(stems[i]).\(safe(name)).npy"
                    // The batch axis of one image is dropped; NMS's rows [K, 3] have none (their image column is 0).
                    let shape = perImage.contains(name) ? a.dims : Array(a.dims.dropFirst())
                    let data = a.integer ? NPY.encode(int64: a.values, shape: shape) : a.values.withUnsafeBufferPointer { NPY.encode($0, shape: shape) }
                    try AtomicFile.write(data, to: "\(dir)/\(file)")
                    outputs[name] = ["file": file, "shape": shape, "dtype": a.integer ? "int64" : "float32"]
                    written += 1
                }
                index.append(["image": files[i], "outputs": outputs])
            }
        }
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: ["model": source, "input": input, "images": index], options: [.prettyPrinted, .sortedKeys]),
                             to: "\(dir)/index.json")
        results.log("\(source) is not a classifier (outputs \(g.outputs.map { g.shape(of: $0).dims })): wrote its raw outputs for \(files.count) images, "
                    + "\(written) .npy files (numpy.load) and index.json, to \(dir)")
        return written
    }
}
