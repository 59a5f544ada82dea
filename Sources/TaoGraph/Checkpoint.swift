import Foundation

/// Why a checkpoint cannot be read or written, naming the file.
public struct CheckpointError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// A model file: the graph, its parameters and free-form metadata (class names, the spec, …).
///
/// The layout is safetensors (an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data), so other tools read the
/// weights; the graph travels as JSON in the header's `__metadata__`. Writing goes to a temporary
/// file that is synced and then renamed: an interrupted write never leaves a partial checkpoint.
public struct Checkpoint {
    public var graph: Graph
    public var parameters: ParameterStore
    public var metadata: [String: String]
    /// Further named tensors (optimizer state for resuming), stored after the parameters.
    public var extras: [String: [Float]]

    public init(graph: Graph, parameters: ParameterStore, metadata: [String: String] = [:], extras: [String: [Float]] = [:]) {
        self.graph = graph; self.parameters = parameters; self.metadata = metadata; self.extras = extras
    }

    /// The graph in a form that survives JSON: inputs, parameters, nodes and outputs.
    struct GraphRecord: Codable {
        var inputs: [String]
        var inputShapes: [Shape]
        var parameters: [ParameterInfo]
        var nodes: [Node]
        var outputs: [ValueID]
    }

    public func write(to path: String) throws {
        try AtomicFile.write(try serialized(), to: path)
    }

    /// The file's bytes (safetensors with the graph in its metadata).
    public func serialized() throws -> Data {
        let g = graph
        let record = GraphRecord(inputs: g.inputNames, inputShapes: g.inputs.map(g.shape(of:)), parameters: g.parameters,
                                 nodes: g.nodes, outputs: g.outputs)
        var meta = metadata
        meta["tao.graph"] = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
        meta["format"] = "pt"
        var header: [String: Any] = ["__metadata__": meta]
        var offset = 0
        for (i, p) in g.parameters.enumerated() {
            let bytes = parameters[i].count * 4
            header[p.name] = ["dtype": "F32", "shape": p.shape.dims, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        let extraNames = extras.keys.sorted()
        for name in extraNames {
            precondition(header[name] == nil, "extra tensor '\(name)' collides with a parameter")
            let bytes = extras[name]!.count * 4
            header[name] = ["dtype": "F32", "shape": [extras[name]!.count], "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }   // pad so the data starts 8-byte aligned
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for i in 0..<g.parameters.count {
            parameters[i].withUnsafeBufferPointer { out.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 4)) }
        }
        for name in extraNames {
            extras[name]!.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    public static func read(from path: String) throws -> Checkpoint {
        guard let data = FileManager.default.contents(atPath: path) else { throw CheckpointError(path: path, message: "cannot read the file (missing or unreadable)") }
        return try Checkpoint(serialized: data, source: path)
    }

    /// A checkpoint from the bytes `serialized()` gave (or a file's); `source` names them in errors.
    public init(serialized data: Data, source path: String) throws {
        func fail(_ m: String) -> CheckpointError { CheckpointError(path: path, message: m) }
        guard data.count >= 8 else { throw fail("too short to be a checkpoint (\(data.count) bytes)") }
        let n = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 1, 8 + n <= data.count else { throw fail("not a tao checkpoint: header length \(n) does not fit a \(data.count)-byte file") }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any],
              let meta = header["__metadata__"] as? [String: String] else { throw fail("not a tao checkpoint: the header is not safetensors JSON") }
        guard let graphJSON = meta["tao.graph"], let rec = try? JSONDecoder().decode(GraphRecord.self, from: Data(graphJSON.utf8)) else {
            throw fail("a safetensors file without a tao graph in its metadata")
        }
        let graph: Graph
        do {
            graph = try Graph(inputs: Array(zip(rec.inputs, rec.inputShapes)), parameters: rec.parameters, nodes: rec.nodes, outputs: rec.outputs)
        } catch { throw fail("the stored graph is invalid: \(error)") }
        let store = ParameterStore(graph: graph, seed: 0)
        let base = 8 + n
        for (i, p) in graph.parameters.enumerated() {
            guard let entry = header[p.name] as? [String: Any], entry["dtype"] as? String == "F32",
                  let shape = entry["shape"] as? [Int], let range = entry["data_offsets"] as? [Int], range.count == 2 else {
                throw fail("tensor '\(p.name)' is missing or not F32")
            }
            guard shape == p.shape.dims else { throw fail("tensor '\(p.name)' has shape \(shape), the graph expects \(p.shape)") }
            guard range[1] - range[0] == p.shape.count * 4, base + range[1] <= data.count else {
                throw fail("tensor '\(p.name)' data is truncated (file cut short?)")
            }
            var t = Tensor(zeros: p.shape)
            t.withUnsafeMutableBufferPointer { dst in
                data.withUnsafeBytes { src in
                    UnsafeMutableRawBufferPointer(dst).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(base + range[0])..<(base + range[1])]))
                }
            }
            store[i] = t
        }
        var extras: [String: [Float]] = [:]
        let names = Set(graph.parameters.map(\.name))
        for (key, value) in header where key != "__metadata__" && !names.contains(key) {
            guard let entry = value as? [String: Any], let range = entry["data_offsets"] as? [Int], range.count == 2,
                  range[0] <= range[1], (range[1] - range[0]) % 4 == 0, base + range[1] <= data.count else {
                throw fail("tensor '\(key)' data is truncated (file cut short?)")
            }
            extras[key] = data.subdata(in: (base + range[0])..<(base + range[1])).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        var m = meta
        m["tao.graph"] = nil
        m["format"] = nil
        self.init(graph: graph, parameters: store, metadata: m, extras: extras)
    }
}

/// Writes a file so that readers see either the old content or the complete new one.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw CheckpointError(path: path, message: "cannot create a file in \(dir.path)")
        }
        let h = try FileHandle(forWritingTo: tmp)
        do {
            try h.write(contentsOf: data)
            try h.synchronize()
            try h.close()
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw CheckpointError(path: path, message: "write failed: \(error)")
        }
        if rename(tmp.path, path) != 0 {
            try? FileManager.default.removeItem(at: tmp)
            throw CheckpointError(path: path, message: "cannot move the finished file into place (errno \(errno))")
        }
    }
}
