import Foundation
import SwiftProtobuf
import TaoGraph

/// ONNX → Graph: each node becomes ops of our IR, initializers and Constant nodes become
/// parameters or constants. Shape arithmetic (Shape → Slice → Concat → Reshape, as exporters
/// write a flatten) is evaluated at import. Ops we cannot express are reported all at once.
public enum ONNXImport {
    public struct Result {
        public var graph: Graph
        public var parameters: ParameterStore
        /// metadata_props of the file.
        public var metadata: [String: String]
        /// What the import did beyond a one-to-one mapping, for the log.
        public var notes: [String]
        /// The file's names of the graph's outputs, in order.
        public var outputNames: [String] = []
        /// Ops run after the network at inference (ArgMax, TopK, NonMaxSuppression), reading the
        /// network's outputs (`outputNames`) and making the file's outputs they stand for.
        public var postSteps: [ONNXPostStep] = []
        /// The file's own outputs, in order: `fileOutputs(_:)` computes them from the network's.
        public var fileOutputNames: [String] = []
        /// The graph's node names in the file's order (the exporter's execution order; `Graph`
        /// keeps a topological order of its own).
        public var nodeOrder: [String] = []
    }

    /// Reads `path`; the input's per-sample shape comes from the file, or from `inputShape` where the
    /// file leaves dimensions dynamic. A final Softmax is dropped when `logits` is set (training
    /// and our inference apply their own).
    /// With `outputs`, the model ends at those values (what only its other outputs need is not
    /// read): e.g. a detector's heads, before the decoding and NMS an export appended.
    public static func read(_ path: String, inputShape: [Int]? = nil, logits: Bool = true, outputs: [String]? = nil) throws -> Result {
        var model = try parse(path)
        if let outputs { model.graph = try cut(model.graph, at: outputs, path: path) }
        var r = Reader(path: path, graph: model.graph)
        if let v = model.opsetImport.first(where: { $0.domain.isEmpty || $0.domain == "ai.onnx" })?.version { r.opset = Int(v) }
        try r.run(inputShape: inputShape, logits: logits)
        let g: Graph
        do { g = try r.b.build(outputs: r.outputs) } catch { throw ONNXError("\(path): the imported graph does not check: \(error)") }
        let store = ParameterStore(graph: g, seed: 0)
        for (i, p) in g.parameters.enumerated() { store[i] = Tensor(shape: p.shape, values: r.values[p.name]!) }
        var meta: [String: String] = [:]
        for e in model.metadataProps { meta[e.key] = e.value }
        var result = Result(graph: g, parameters: store, metadata: meta, notes: r.notes)
        result.outputNames = r.outputNames
        result.nodeOrder = r.b.nodeNames
        result.postSteps = r.postSteps
        result.fileOutputNames = r.fileOutputNames
        return result
    }

    static func parse(_ path: String) throws -> Onnx_ModelProto {
        guard let data = FileManager.default.contents(atPath: path) else { throw ONNXError("\(path): cannot read the file (missing or unreadable)") }
        let model: Onnx_ModelProto
        do { model = try Onnx_ModelProto(serializedBytes: data) } catch {
            throw ONNXError("\(path) is not an ONNX model (it does not parse as an ONNX ModelProto: \(error)); a truncated download?")
        }
        guard model.hasGraph, !model.graph.node.isEmpty else { throw ONNXError("\(path) is not an ONNX model: it has no graph nodes") }
        return model
    }

    /// The file's metadata_props, without reading its graph into ours.
    public static func metadata(_ path: String) throws -> [String: String] {
        Dictionary(try parse(path).metadataProps.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// `graph` ending at the values `outputs`: only the nodes they depend on.
    static func cut(_ graph: Onnx_GraphProto, at outputs: [String], path: String) throws -> Onnx_GraphProto {
        var producer: [String: Int] = [:]
        for (i, n) in graph.node.enumerated() { for o in n.output { producer[o] = i } }
        var needed = Set<Int>(), stack = outputs
        for o in outputs where producer[o] == nil { throw ONNXError("\(path): no node makes '\(o)'") }
        while let v = stack.popLast() {
            guard let i = producer[v], needed.insert(i).inserted else { continue }
            stack += graph.node[i].input.filter { !$0.isEmpty }
        }
        var g = graph
        g.node = graph.node.enumerated().filter { needed.contains($0.offset) }.map(\.element)
        g.output = outputs.map { name in var v = Onnx_ValueInfoProto(); v.name = name; return v }
        return g
    }

    /// A constant tensor of the file: float values (or integers widened) and dims.
    struct Constant { var dims: [Int]; var floats: [Float]; var ints: [Int64] }

    /// What an ONNX value is during import.
    enum Value {
        case tensor(ValueID)               // an activation [N, …] of our graph
        case constant(Constant)            // an initializer or Constant output
        case shape([Int?])                 // a shape vector; nil = the batch dimension
    }

    struct Reader {
        let path: String
        let graph: Onnx_GraphProto
        var b = GraphBuilder()
        var env: [String: Value] = [:]
        var values: [String: [Float]] = [:]
        var outputs: [ValueID] = []
        var outputNames: [String] = []
        var postSteps: [ONNXPostStep] = []
        var fileOutputNames: [String] = []
        var inputValue: ValueID?
        var notes: [String] = []
        /// Activation QuantizeLinear/DequantizeLinear nodes imported as identities.
        var droppedQDQ = 0
        /// Constants of type int8 (the others are unsigned or wider): QuantizeLinear saturates to their range.
        var signedInt8 = Set<String>()
        var usedNames = Set<String>()
        /// The input's batch size where the file fixes it (an export for batch 1): a Reshape to that
        /// leading size keeps the batch.
        var fixedBatch: Int?
        /// The file's opset of the default domain (Softmax's axis means another thing before 13).
        var opset = 13

        init(path: String, graph: Onnx_GraphProto) { self.path = path; self.graph = graph; b.renamesDuplicateNodes = true }

        func fail(_ m: String) -> ONNXError { ONNXError("\(path): \(m)") }

        static func constant(_ t: Onnx_TensorProto) -> Constant? {
            let dims = t.dims.map { Int($0) }
            let count = dims.reduce(1, *)
            switch Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) {
            case .float:
                let f: [Float] = t.rawData.isEmpty ? t.floatData : t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                guard f.count == count else { return nil }
                return Constant(dims: dims, floats: f, ints: f.map { Int64($0) })
            case .int64:
                let i: [Int64] = t.rawData.isEmpty ? t.int64Data : t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
                guard i.count == count else { return nil }
                return Constant(dims: dims, floats: i.map { Float($0) }, ints: i)
            case .int32:
                let i: [Int32] = t.rawData.isEmpty ? t.int32Data : t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
                guard i.count == count else { return nil }
                return Constant(dims: dims, floats: i.map { Float($0) }, ints: i.map { Int64($0) })
            case .int8, .uint8:   // quantized weights and zero points; int32_data holds them when raw_data is empty
                let signed = t.dataType == Int32(Onnx_TensorProto.DataType.int8.rawValue)
                let i: [Int64] = t.rawData.isEmpty ? t.int32Data.map(Int64.init)
                    : t.rawData.map { signed ? Int64(Int8(bitPattern: $0)) : Int64($0) }
                guard i.count == count else { return nil }
                return Constant(dims: dims, floats: i.map { Float($0) }, ints: i)
            default: return nil
            }
        }

        /// An initializer whose bytes live in a file beside the model (ONNX's external data: `location`,
        /// optional `offset` and `length`), with them read in.
        func external(_ t: Onnx_TensorProto) throws -> Onnx_TensorProto {
            let entries = Dictionary(t.externalData.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let location = entries["location"], !location.hasPrefix("/"), !location.contains("..") else {
                throw fail("initializer '\(t.name)': external data without a relative location beside the model (\(entries))")
            }
            let file = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(location).path
            guard let handle = FileHandle(forReadingAtPath: file) else {
                throw fail("initializer '\(t.name)': its external data file \(file) is missing (keep it beside the .onnx)")
            }
            defer { try? handle.close() }
            let offset = UInt64(entries["offset"] ?? "0") ?? 0
            try handle.seek(toOffset: offset)
            let data = entries["length"].flatMap { Int($0) }.map { handle.readData(ofLength: $0) } ?? handle.readDataToEndOfFile()
            var out = t
            out.rawData = data
            out.dataLocation = .default
            out.externalData = []
            return out
        }

        mutating func unique(_ name: String) -> String {
            var n = name.isEmpty ? "node" : name, k = 1
            while usedNames.contains(n) || b.isTaken(n) { k += 1; n = "\(name)_\(k)" }
            usedNames.insert(n)
            return n
        }

        /// A parameter holding a constant's values.
        mutating func parameter(_ name: String, _ c: Constant, role: ParameterRole, dims: [Int]? = nil) -> ValueID {
            let n = unique(name)
            values[n] = c.floats
            return b.parameter(n, Shape(dims ?? c.dims), role: role)
        }

        mutating func run(inputShape: [Int]?, logits: Bool) throws {
            for var t in graph.initializer {
                if t.dataLocation == .external { t = try external(t) }
                guard let c = Self.constant(t) else { throw fail("initializer '\(t.name)' has an unsupported data type \(t.dataType) or size") }
                env[t.name] = .constant(c)
                if t.dataType == Int32(Onnx_TensorProto.DataType.int8.rawValue) { signedInt8.insert(t.name) }
            }
            // Every op we cannot take, with the nodes that use it, in one error.
            var unsupported: [String: [String]] = [:]
            for (k, n) in graph.node.enumerated() where !Self.claimed.contains(n.opType) {
                unsupported[n.opType, default: []].append(n.name.isEmpty ? "#\(k)" : n.name)
            }
            guard unsupported.isEmpty else {
                let list = unsupported.sorted { $0.key < $1.key }.map { op, names in
                    "\(op) (\(names.count) node\(names.count == 1 ? "" : "s"): \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? ", …" : ""))"
                }
                throw fail("unsupported ONNX ops: \(list.joined(separator: "; ")). tao-swift imports \(Self.claimed.sorted().joined(separator: ", "))")
            }
            let inputs = graph.input.filter { env[$0.name] == nil }
            guard inputs.count == 1, let input = inputs.first else { throw fail("expected one image input, found \(inputs.map(\.name))") }
            let dims = input.type.tensorType.shape.dim.map { $0.dimValue > 0 ? Int($0.dimValue) : nil }
            guard dims.count >= 2 else { throw fail("input '\(input.name)' has rank \(dims.count); a batch input [N, …] (an image: [N,C,H,W]) is expected") }
            var shape: [Int] = []
            for k in 1..<dims.count {
                guard let d = dims[k] ?? inputShape?[k - 1] else { throw fail("input '\(input.name)' has a dynamic dimension \(k); give the input size in the spec") }
                if let want = inputShape?[k - 1], want != d { throw fail("input '\(input.name)' is [N,\(dims[1...].map { $0.map(String.init) ?? "?" }.joined(separator: ","))], the spec asks for \(inputShape!)") }
                shape.append(d)
            }
            usedNames.insert(input.name)
            fixedBatch = dims[0]
            inputValue = b.input(input.name, Shape(shape))
            env[input.name] = .tensor(inputValue!)
            // Constant nodes' values, for the patterns matched before conversion.
            var constantNodes: [String: Constant] = [:]
            for n in graph.node where n.opType == "Constant" {
                if let t = attr(n, "value"), t.hasT, let c = Self.constant(t.t), let o = n.output.first { constantNodes[o] = c }
            }
            let known = env
            fileOutputNames = graph.output.map(\.name)
            let tail = try tailNodes()
            var nodes = Self.fuseGelu(graph.node.filter { !Self.tailOps.contains($0.opType) }) { name in
                if case .constant(let c)? = known[name] { return c }
                return constantNodes[name]
            }
            if logits, let last = nodes.last, last.opType == "Softmax", graph.output.count == 1, last.output.first == graph.output[0].name {
                nodes.removeLast()
                env[last.output[0]] = nil
                notes.append("dropped the final Softmax '\(last.name)': the model's output is now its logits")
                try convert(nodes)
                outputs = [try tensor(last.input[0], last)]
                outputNames = [graph.output[0].name]
                return
            }
            try convert(nodes)
            // The network's outputs: the file's own, less what the post steps make, and what they read.
            let made = Set(tail.flatMap(\.output))
            var names = graph.output.map(\.name).filter { !made.contains($0) }
            for t in tail { for i in Self.dataInputs(t) where !names.contains(i) && folded(i) == nil { names.append(i) } }
            outputs = try names.map { name in
                let v = try tensor(name, nil)
                // The input read as it is: through a copy, so that each output is a node's.
                guard v == inputValue else { return v }
                return b.activation(v, .linear(alpha: 1, beta: 0), unique("\(name).copy"))
            }
            outputNames = names
            postSteps = try tail.map { try postStep($0, names) }
            if droppedQDQ > 0 {
                notes.append("ran \(droppedQDQ) QuantizeLinear/DequantizeLinear nodes on activations as identities: the model runs in fp32 with its dequantized weights (export --data_type int8 quantizes it again)")
            }
        }

        static let supported: Set<String> = [
            "Conv", "ConvTranspose", "BatchNormalization", "Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid",
            "Clip", "Softplus", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul", "Add", "Mul", "Concat", "Flatten",
            "Reshape", "Shape", "Slice", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Softmax", "Constant", "Pad", "Resize",
            "QuantizeLinear", "DequantizeLinear", "Sub", "Div", "Neg", "Abs", "Sqrt", "Exp", "Log", "Reciprocal", "Pow", "Cast",
            "Transpose", "Split", "Upsample", "GlobalMaxPool", "PRelu", "Selu", "Softsign", "LogSoftmax",
        ]

        func tensor(_ name: String, _ n: Onnx_NodeProto?) throws -> ValueID {
            guard case .tensor(let v)? = env[name] else {
                throw fail("\(n.map { "node '\($0.name)' (\($0.opType)): " } ?? "")input '\(name)' is not an image tensor (a constant or shape where data was expected)")
            }
            return v
        }

        func constant(_ name: String, _ n: Onnx_NodeProto) throws -> Constant {
            guard case .constant(let c)? = env[name] else { throw fail("node '\(n.name)' (\(n.opType)): input '\(name)' must be a constant") }
            return c
        }

        func isConstant(_ name: String) -> Bool { if case .constant? = env[name] { return true }; return false }
        func isShape(_ name: String) -> Bool { if case .shape? = env[name] { return true }; return false }
        func attr(_ n: Onnx_NodeProto, _ name: String) -> Onnx_AttributeProto? { n.attribute.first { $0.name == name } }
        func ints(_ n: Onnx_NodeProto, _ name: String, _ d: [Int]) -> [Int] { attr(n, name).map { $0.ints.map { Int($0) } } ?? d }
        func int(_ n: Onnx_NodeProto, _ name: String, _ d: Int) -> Int { attr(n, name).map { Int($0.i) } ?? d }
        func float(_ n: Onnx_NodeProto, _ name: String, _ d: Float) -> Float { attr(n, name).map { $0.f } ?? d }
        func string(_ n: Onnx_NodeProto, _ name: String, _ d: String) -> String { attr(n, name).map { String(decoding: $0.s, as: UTF8.self) } ?? d }

        /// ONNX pads [t, l, b, r] with auto_pad SAME_* resolved for the input size.
        /// ConvTranspose's pads from `output_shape` (or, with auto_pad SAME_*, an output of input ×
        /// stride): the total padding is the full output's size less the one asked for, split as
        /// ONNX says (SAME_UPPER: the smaller half first); an output larger than the full one is
        /// output padding at the end.
        func transposedPadding(_ n: Onnx_NodeProto, input: Shape, kernel: [Int], stride: [Int], dilation: [Int], outputPadding: [Int]) throws -> (Padding2D, [Int]) {
            let asked = ints(n, "output_shape", [])
            let sizes = asked.isEmpty ? [input[1] * stride[0], input[2] * stride[1]] : Array(asked.suffix(2))
            guard sizes.count == 2 else { throw fail("ConvTranspose '\(n.name)': output_shape \(asked) is not 2-D") }
            let upper = string(n, "auto_pad", "NOTSET") == "SAME_UPPER"
            var begin = [0, 0], end = [0, 0], extra = outputPadding
            for k in 0..<2 {
                let total = stride[k] * (input[k + 1] - 1) + outputPadding[k] + (kernel[k] - 1) * dilation[k] + 1 - sizes[k]
                if total < 0 { extra[k] += -total; continue }
                (begin[k], end[k]) = upper ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
            }
            return (Padding2D(top: begin[0], left: begin[1], bottom: end[0], right: end[1]), extra)
        }

        func padding(_ n: Onnx_NodeProto, input: Shape, kernel: [Int], stride: [Int], dilation: [Int] = [1, 1]) throws -> Padding2D {
            let auto = string(n, "auto_pad", "NOTSET")
            if auto == "NOTSET" || auto == "VALID" {
                let p = auto == "VALID" ? [0, 0, 0, 0] : ints(n, "pads", [0, 0, 0, 0])
                return Padding2D(top: p[0], left: p[1], bottom: p[2], right: p[3])
            }
            var pads: [(Int, Int)] = []
            for k in 0..<2 {
                let size = input[k + 1], out = (size + stride[k] - 1) / stride[k]
                let total = max((out - 1) * stride[k] + (kernel[k] - 1) * dilation[k] + 1 - size, 0)
                pads.append(auto == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2))
            }
            return Padding2D(top: pads[0].0, left: pads[1].0, bottom: pads[0].1, right: pads[1].1)
        }

        mutating func convert(_ nodes: [Onnx_NodeProto]) throws {
            var readers: [String: Int] = [:]
            for n in nodes { for i in n.input { readers[i, default: 0] += 1 } }
            for o in graph.output { readers[o.name, default: 0] += 1 }
            var skip = Set<Int>()
            for (index, n) in nodes.enumerated() where !skip.contains(index) {
                let name = unique(n.name.isEmpty ? "\(n.opType.lowercased())_\(n.output.first ?? "")" : n.name)
                let out = n.output.first ?? ""
                func act(_ a: Activation) throws { env[out] = .tensor(b.activation(try tensor(n.input[0], n), a, name)) }
                switch n.opType {
                case "Constant":
                    guard let t = attr(n, "value"), t.hasT, let c = Self.constant(t.t) else { throw fail("Constant '\(n.name)': only tensor values of float or integer type are supported") }
                    env[out] = .constant(c)
                    if t.t.dataType == Int32(Onnx_TensorProto.DataType.int8.rawValue) { signedInt8.insert(out) }
                case "Identity", "Dropout":
                    env[out] = env[n.input[0]]
                case "Conv", "ConvTranspose":
                    let x = try tensor(n.input[0], n), w = try constant(n.input[1], n)
                    guard w.dims.count == 4, b.shape(x).rank == 3 else { throw fail("\(n.opType) '\(n.name)': only 2-D convolutions of [N,C,H,W] are supported (weights \(w.dims))") }
                    let k = ints(n, "kernel_shape", Array(w.dims[2...])), s = ints(n, "strides", [1, 1]), d = ints(n, "dilations", [1, 1])
                    var pad = try padding(n, input: b.shape(x), kernel: k, stride: s, dilation: d)
                    var outputPadding = ints(n, "output_padding", [0, 0])
                    if n.opType == "ConvTranspose", attr(n, "output_shape") != nil || !["NOTSET", "VALID"].contains(string(n, "auto_pad", "NOTSET")) {
                        (pad, outputPadding) = try transposedPadding(n, input: b.shape(x), kernel: k, stride: s, dilation: d, outputPadding: outputPadding)
                    }
                    var hasBias = n.input.count > 2 && !n.input[2].isEmpty
                    var ins = [x, parameter("\(name).weight", w, role: .convWeight)]
                    var result = out
                    if hasBias { ins.append(parameter("\(name).bias", try constant(n.input[2], n), role: .convBias)) }
                    else if n.opType == "Conv", let (k, o, v) = trailingBias(out, channels: w.dims[0], after: index, nodes, readers) {
                        ins.append(parameter("\(name).bias", Constant(dims: [w.dims[0]], floats: v, ints: []), role: .convBias))
                        hasBias = true; result = o; skip.insert(k)
                    }
                    if n.opType == "Conv" {
                        let groups = int(n, "group", 1)
                        env[result] = .tensor(b.node(name, .conv2d(Conv2D(outChannels: w.dims[0], kernel: k, stride: s, dilation: d, padding: pad,
                                                                          groups: groups, hasBias: hasBias)), ins))
                    } else {
                        guard int(n, "group", 1) == 1 else { throw fail("ConvTranspose '\(n.name)': groups are not supported") }
                        env[out] = .tensor(b.node(name, .convTranspose2d(ConvTranspose2D(outChannels: w.dims[1], kernel: k, stride: s, dilation: d, padding: pad,
                                                                                         outputPadding: outputPadding, hasBias: hasBias)), ins))
                    }
                case "BatchNormalization":
                    let x = try tensor(n.input[0], n)
                    let roles: [ParameterRole] = [.bnScale, .bnShift, .bnMean, .bnVariance]
                    let suffix = ["weight", "bias", "running_mean", "running_var"]
                    var ins = [x]
                    for k in 0..<4 { ins.append(parameter("\(name).\(suffix[k])", try constant(n.input[k + 1], n), role: roles[k])) }
                    env[out] = .tensor(b.node(name, .batchNorm(BatchNorm(epsilon: float(n, "epsilon", 1e-5), momentum: float(n, "momentum", 0.9))), ins))
                case "Relu": try act(.relu)
                case "LeakyRelu": try act(.leakyRelu(alpha: float(n, "alpha", 0.01)))
                case "Elu": try act(.elu(alpha: float(n, "alpha", 1)))
                case "Sigmoid": try act(.sigmoid)
                case "Tanh": try act(.tanh)
                case "HardSwish": try act(.hardSwish)
                case "HardSigmoid":
                    let x = try tensor(n.input[0], n)
                    let lin = b.activation(x, .linear(alpha: float(n, "alpha", 0.2), beta: float(n, "beta", 0.5)), "\(name).linear")
                    env[out] = .tensor(b.activation(lin, .clip(lower: 0, upper: 1), name))
                case "Clip":
                    let lo = n.input.count > 1 && !n.input[1].isEmpty ? try constant(n.input[1], n).floats[0] : float(n, "min", -.greatestFiniteMagnitude)
                    let hi = n.input.count > 2 && !n.input[2].isEmpty ? try constant(n.input[2], n).floats[0] : float(n, "max", .greatestFiniteMagnitude)
                    try act(lo == 0 && hi == 6 ? .relu6 : .clip(lower: lo, upper: hi))
                case "MaxPool", "AveragePool":
                    let x = try tensor(n.input[0], n)
                    let k = ints(n, "kernel_shape", [1, 1]), s = ints(n, "strides", [1, 1])
                    guard k.count == 2, b.shape(x).rank == 3, ints(n, "dilations", [1, 1]) == [1, 1], n.output.count == 1 else {
                        throw fail("\(n.opType) '\(n.name)': only 2-D pooling without dilations (and without MaxPool's indices output) is supported")
                    }
                    var pad = try padding(n, input: b.shape(x), kernel: k, stride: s)
                    if int(n, "ceil_mode", 0) == 1 {
                        // Ceil mode: extra rows/columns at the end so that the last partial window counts.
                        let shape = b.shape(x)
                        for axis in 0..<2 {
                            let size = shape[axis + 1] + (axis == 0 ? pad.top + pad.bottom : pad.left + pad.right)
                            let extra = (s[axis] - (size - k[axis]) % s[axis]) % s[axis]
                            if axis == 0 { pad.bottom += extra } else { pad.right += extra }
                        }
                    }
                    let kind: Pool2D.Kind = n.opType == "MaxPool" ? .max : .average
                    env[out] = .tensor(b.node(name, .pool2d(Pool2D(kind, kernel: k, stride: s, padding: pad, countIncludePad: int(n, "count_include_pad", 0) == 1)), [x]))
                case "GlobalMaxPool":
                    // A max pool over the whole map: [N,C,1,1], as ONNX keeps it.
                    let x = try tensor(n.input[0], n), shape = b.shape(x)
                    guard shape.rank == 3 else { throw fail("GlobalMaxPool '\(n.name)': only [N,C,H,W] is supported") }
                    env[out] = .tensor(b.node(name, .pool2d(Pool2D(.max, kernel: [shape[1], shape[2]], stride: [1, 1])), [x]))
                case "PRelu":
                    guard case .constant(let slope)? = env[n.input[1]] else { throw fail("PRelu '\(n.name)': the slope must be a constant") }
                    if slope.floats.count == 1 {
                        try act(.leakyRelu(alpha: slope.floats[0]))
                    } else {
                        // One slope a channel: relu(x) − s · relu(−x), the second term a depthwise 1×1 convolution.
                        let x = try tensor(n.input[0], n)
                        let positive = b.activation(x, .relu, "\(name).positive")
                        let negative = b.activation(b.activation(x, .linear(alpha: -1, beta: 0), "\(name).negate"), .relu, "\(name).negative")
                        let minus = Constant(dims: slope.dims, floats: slope.floats.map { -$0 }, ints: [])
                        env[out] = .tensor(b.add(positive, try affine(negative, minus, add: false, "\(name).slope", n), name))
                    }
                case "Selu":
                    // γ·elu_α(x)
                    let e = b.activation(try tensor(n.input[0], n), .elu(alpha: float(n, "alpha", 1.67326319217681884765625)), "\(name).elu")
                    env[out] = .tensor(b.activation(e, .linear(alpha: float(n, "gamma", 1.05070102214813232421875), beta: 0), name))
                case "Softsign":
                    // x / (1 + |x|)
                    let x = try tensor(n.input[0], n)
                    let denominator = b.activation(b.activation(x, .abs, "\(name).abs"), .linear(alpha: 1, beta: 1), "\(name).plus1")
                    env[out] = .tensor(b.mul(x, b.activation(denominator, .pow(scale: 1, exponent: -1), "\(name).reciprocal"), name))
                case "GlobalAveragePool":
                    // ONNX keeps [N,C,1,1]; our pooling gives [N,C].
                    let pooled = b.globalAveragePool(try tensor(n.input[0], n), name)
                    env[out] = .tensor(b.node("\(name).keepdims", .reshape([b.shape(pooled)[0], 1, 1]), [pooled]))
                case "Flatten":
                    guard int(n, "axis", 1) == 1 else { throw fail("Flatten '\(n.name)': only axis 1 is supported") }
                    env[out] = .tensor(flatten(try tensor(n.input[0], n), name))
                case "Squeeze" where isShape(n.input[0]), "Unsqueeze" where isShape(n.input[0]):
                    env[out] = env[n.input[0]]   // a shape vector's entry: 0-D and 1-D alike here
                case "Squeeze" where isConstant(n.input[0]), "Unsqueeze" where isConstant(n.input[0]),
                     "Reshape" where isConstant(n.input[0]), "Flatten" where isConstant(n.input[0]):
                    // Of a constant (a bias reshaped to [1,C,1,1], …): folded; the values keep their order.
                    guard case .constant(var c)? = env[n.input[0]] else { throw fail("\(n.opType) '\(n.name)': expected a constant") }
                    let count = c.floats.count
                    switch n.opType {
                    case "Reshape":
                        guard case .constant(let spec)? = env[n.input[1]] else { throw fail("Reshape '\(n.name)': a constant reshaped by data") }
                        var dims = spec.ints.enumerated().map { k, d in d == 0 && k < c.dims.count ? c.dims[k] : Int(d) }
                        if let hole = dims.firstIndex(of: -1) { dims[hole] = count / max(1, dims.filter { $0 != -1 }.reduce(1, *)) }
                        c.dims = dims
                    case "Flatten":
                        let axis = int(n, "axis", 1), a = axis < 0 ? axis + c.dims.count : axis
                        c.dims = [c.dims[..<a].reduce(1, *), c.dims[a...].reduce(1, *)]
                    default:
                        let given = n.input.count > 1 ? try constant(n.input[1], n).ints.map { Int($0) } : ints(n, "axes", [])
                        let rank = c.dims.count + (n.opType == "Unsqueeze" ? given.count : 0)
                        let axes = given.map { $0 < 0 ? $0 + rank : $0 }
                        if n.opType == "Squeeze" { c.dims = c.dims.enumerated().filter { axes.isEmpty ? $0.element != 1 : !axes.contains($0.offset) }.map(\.element) }
                        else { for a in axes.sorted() { c.dims.insert(1, at: min(a, c.dims.count)) } }
                    }
                    guard c.dims.reduce(1, *) == count, c.dims.allSatisfy({ $0 >= 0 }) else { throw fail("\(n.opType) '\(n.name)': a constant of \(count) values cannot take the shape \(c.dims)") }
                    env[out] = .constant(c)
                case "Squeeze", "Unsqueeze", "Reshape":
                    let x = try tensor(n.input[0], n)
                    let size = b.shape(x).count
                    var target: [Int]
                    if n.opType == "Reshape" {
                        let spec: [Int?]
                        switch env[n.input[1]] {
                        case .shape(let s)?: spec = s
                        case .constant(let c)?: spec = c.ints.map { Int($0) }
                        default: throw fail("Reshape '\(n.name)': the target shape must be constant")
                        }
                        guard let first = spec.first, first == nil || first == 0 || first == -1 || first == fixedBatch else {
                            throw fail("Reshape '\(n.name)': only reshapes that keep the batch dimension are supported, got \(spec)")
                        }
                        let inDims = b.shape(x).dims
                        target = spec.dropFirst().enumerated().map { (k, d) in d == 0 ? inDims[k] : (d ?? -1) }
                        if let hole = target.firstIndex(of: -1) {
                            let known = target.filter { $0 != -1 }.reduce(1, *)
                            target[hole] = size / max(known, 1)
                        }
                    } else {
                        // Squeeze/Unsqueeze of unit axes: the per-sample shape without or with ones.
                        // Axes count the batch axis (0), which stays; negative ones count from the end.
                        let given = n.input.count > 1 ? try constant(n.input[1], n).ints.map { Int($0) } : ints(n, "axes", [])
                        var dims = b.shape(x).dims
                        let rank = dims.count + 1 + (n.opType == "Unsqueeze" ? given.count : 0)
                        let axes = given.map { $0 < 0 ? $0 + rank : $0 }
                        guard axes.allSatisfy({ $0 >= 1 && $0 < rank }), Set(axes).count == axes.count else {
                            throw fail("\(n.opType) '\(n.name)': axes \(given) of a rank-\(rank) result: the batch axis (0) stays")
                        }
                        if n.opType == "Squeeze" {
                            guard axes.allSatisfy({ dims[$0 - 1] == 1 }) else { throw fail("Squeeze '\(n.name)': axes \(given) of \(b.shape(x)) are not all 1") }
                            // Without axes: the sample's unit dimensions (the batch axis is never squeezed).
                            dims = dims.enumerated().filter { axes.isEmpty ? $0.element != 1 : !axes.contains($0.offset + 1) }.map(\.element)
                        } else {
                            for a in axes.sorted() { dims.insert(1, at: a - 1) }
                        }
                        target = dims
                    }
                    guard target.reduce(1, *) == size else { throw fail("\(n.opType) '\(n.name)': \(b.shape(x)) cannot become \(target)") }
                    env[out] = .tensor(target.count == 1 && b.shape(x).rank > 1 ? flatten(x, name) : b.node(name, .reshape(Shape(target)), [x]))
                case "Shape":
                    let x = try tensor(n.input[0], n)
                    env[out] = .shape([nil] + b.shape(x).dims.map { Optional($0) })
                case "Slice":
                    // Opset 10+: starts, ends, axes, steps as inputs; opset 1–9: attributes.
                    let fromInputs = n.input.count > 1
                    let starts = fromInputs ? try constant(n.input[1], n).ints.map { Int(clamping: $0) } : ints(n, "starts", [])
                    let ends = fromInputs ? try constant(n.input[2], n).ints.map { Int(clamping: $0) } : ints(n, "ends", [])
                    let axes = n.input.count > 3 && !n.input[3].isEmpty ? try constant(n.input[3], n).ints.map { Int($0) }
                        : fromInputs ? Array(0..<starts.count) : ints(n, "axes", Array(0..<starts.count))
                    let steps = n.input.count > 4 && !n.input[4].isEmpty ? try constant(n.input[4], n).ints.map { Int(clamping: $0) } : Array(repeating: 1, count: starts.count)
                    guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count, steps.allSatisfy({ $0 >= 1 }) else {
                        throw fail("Slice '\(n.name)': starts \(starts), ends \(ends), axes \(axes), steps \(steps) (positive steps only)")
                    }
                    /// ONNX's clamping of a start or end on an axis of `length`.
                    func clamp(_ v: Int, _ length: Int) -> Int { v < 0 ? max(0, v + length) : min(v, length) }
                    if case .shape(let sh)? = env[n.input[0]] {
                        guard starts.count == 1, steps == [1] else { throw fail("Slice '\(n.name)': a shape vector sliced with steps \(steps)") }
                        let lo = clamp(starts[0], sh.count), hi = clamp(ends[0], sh.count)
                        env[out] = .shape(Array(sh[lo..<max(lo, hi)]))
                    } else {
                        var x = try tensor(n.input[0], n)
                        let rank = b.shape(x).rank + 1
                        for k in axes.indices {
                            let axis = axes[k] < 0 ? axes[k] + rank : axes[k]
                            guard axis >= 1, axis < rank else { throw fail("Slice '\(n.name)': axis \(axes[k]) (the batch axis stays whole)") }
                            let length = b.shape(x)[axis - 1]
                            let lo = clamp(starts[k], length), hi = clamp(ends[k], length)
                            guard lo < hi else { throw fail("Slice '\(n.name)': an empty slice \(starts[k])..<\(ends[k]) of an axis of \(length)") }
                            if lo == 0, hi == length, steps[k] == 1 { continue }
                            x = b.node(axes.count == 1 ? name : unique("\(name).axis\(axis)"), .slice(Slice(axis: axis, start: lo, end: hi, step: steps[k])), [x])
                        }
                        env[out] = .tensor(x)
                    }
                case "Concat":
                    let axis = int(n, "axis", 1)
                    let shapes = n.input.contains { if case .shape? = env[$0] { return true }; return false }
                    if shapes, axis == 0 || axis == -1 {   // shape vectors (rank 1)
                        var s: [Int?] = []
                        for i in n.input {
                            switch env[i] {
                            case .shape(let part)?: s += part
                            case .constant(let c)?: s += c.ints.map { Int($0) }
                            default: throw fail("Concat '\(n.name)': mixes shapes with data")
                            }
                        }
                        env[out] = .shape(s)
                    } else {
                        let xs = try n.input.map { try tensor($0, n) }
                        let rank = b.shape(xs[0]).rank
                        env[out] = .tensor(b.concat(xs, name, axis: axis < 0 ? axis + rank + 1 : axis))
                    }
                case "Gemm", "MatMul":
                    let x = try tensor(n.input[0], n), w = try constant(n.input[1], n)
                    guard b.shape(x).rank == 1, w.dims.count == 2 else { throw fail("\(n.opType) '\(n.name)': only [N,F] × constant [F,K] is supported") }
                    let transB = n.opType == "Gemm" && int(n, "transB", 0) == 1
                    guard float(n, "alpha", 1) == 1, float(n, "beta", 1) == 1, int(n, "transA", 0) == 0 else { throw fail("Gemm '\(n.name)': alpha, beta and transA must be defaults") }
                    let (outF, inF) = transB ? (w.dims[0], w.dims[1]) : (w.dims[1], w.dims[0])
                    var weights = w
                    if !transB {   // ours is [out, in]
                        weights.floats = (0..<(outF * inF)).map { k in w.floats[(k % inF) * outF + k / inF] }
                    }
                    weights.dims = [outF, inF]
                    var ins = [x, parameter("\(name).weight", weights, role: .denseWeight)]
                    var bias: Constant?, result = out
                    if n.opType == "Gemm", n.input.count > 2, !n.input[2].isEmpty {
                        bias = try constant(n.input[2], n)
                    } else if let (k, o, v) = trailingBias(out, channels: outF, after: index, nodes, readers) {
                        bias = Constant(dims: [outF], floats: v, ints: []); result = o; skip.insert(k)
                    }
                    if let c = bias {
                        guard c.floats.count == outF else { throw fail("\(n.opType) '\(n.name)': the bias must have \(outF) values") }
                        ins.append(parameter("\(name).bias", Constant(dims: [outF], floats: c.floats, ints: []), role: .denseBias))
                    }
                    env[result] = .tensor(b.node(name, .dense(Dense(outFeatures: outF, hasBias: bias != nil)), ins))
                case "Add", "Mul", "Sub", "Div":
                    env[out] = try arithmetic(n, name)
                case "Neg", "Abs", "Sqrt", "Exp", "Log", "Reciprocal", "Softplus":
                    let unary: [String: (Activation, (Float) -> Float)] = [
                        "Neg": (.linear(alpha: -1, beta: 0), { -$0 }), "Abs": (.abs, { Swift.abs($0) }), "Sqrt": (.sqrt, { $0.squareRoot() }),
                        "Exp": (.exp, { Foundation.exp($0) }), "Log": (.log, { Foundation.log($0) }), "Reciprocal": (.pow(scale: 1, exponent: -1), { 1 / $0 }),
                        "Softplus": (.softplus, { Foundation.log(1 + Foundation.exp($0)) })]
                    let (a, f) = unary[n.opType]!
                    if case .constant(let c)? = env[n.input[0]] {
                        let v = c.floats.map(f)
                        env[out] = .constant(Constant(dims: c.dims, floats: v, ints: v.map { Int64($0) }))
                    } else {
                        try act(a)
                    }
                case "Pow":
                    guard case .constant(let e)? = env[n.input[1]], e.floats.count == 1 else {
                        throw fail("Pow '\(n.name)': only a constant scalar exponent is supported")
                    }
                    if case .constant(let c)? = env[n.input[0]] {
                        let v = c.floats.map { Foundation.pow($0, e.floats[0]) }
                        env[out] = .constant(Constant(dims: c.dims, floats: v, ints: v.map { Int64($0) }))
                    } else {
                        try act(e.floats[0] == 1 ? .linear(alpha: 1, beta: 0) : .pow(scale: 1, exponent: e.floats[0]))
                    }
                case "Transpose":
                    switch env[n.input[0]] {
                    case .constant(let c)?:
                        let perm = ints(n, "perm", Array((0..<c.dims.count).reversed()))
                        env[out] = .constant(Self.transpose(c, perm))
                    case .tensor(let x)?:
                        let rank = b.shape(x).rank + 1
                        let perm = ints(n, "perm", Array((0..<rank).reversed()))
                        guard perm.first == 0 else { throw fail("Transpose '\(n.name)': perm \(perm) moves the batch axis") }
                        env[out] = .tensor(perm == Array(0..<rank) ? x : b.node(name, .transpose(perm: perm), [x]))
                    default: throw fail("Transpose '\(n.name)': needs data or a constant")
                    }
                case "Split":
                    // Slices along the axis (not the batch's): sizes from the `split` input or attribute, else equal.
                    let x = try tensor(n.input[0], n)
                    let rank = b.shape(x).rank + 1, given = int(n, "axis", 0), axis = given < 0 ? given + rank : given
                    guard axis >= 1, axis < rank else { throw fail("Split '\(n.name)': axis \(given) (the batch axis stays whole)") }
                    let length = b.shape(x)[axis - 1]
                    var sizes = n.input.count > 1 && !n.input[1].isEmpty ? try constant(n.input[1], n).ints.map { Int($0) } : ints(n, "split", [])
                    if sizes.isEmpty, attr(n, "num_outputs") != nil {
                        // Opset 18: parts of ⌈length / outputs⌉, the last one smaller where it does not divide.
                        let part = (length + n.output.count - 1) / n.output.count
                        sizes = (0..<n.output.count).map { min(part, length - $0 * part) }
                    } else if sizes.isEmpty {
                        guard length % n.output.count == 0 else { throw fail("Split '\(n.name)': \(length) does not split into \(n.output.count) equal parts") }
                        sizes = Array(repeating: length / n.output.count, count: n.output.count)
                    }
                    guard sizes.count == n.output.count, sizes.reduce(0, +) == length, sizes.allSatisfy({ $0 > 0 }) else {
                        throw fail("Split '\(n.name)': sizes \(sizes) for \(n.output.count) outputs of an axis of \(length)")
                    }
                    var start = 0
                    for (k, size) in sizes.enumerated() {
                        env[n.output[k]] = .tensor(b.node(unique("\(name).\(k)"), .slice(Slice(axis: axis, start: start, end: start + size)), [x]))
                        start += size
                    }
                case "Cast":
                    let to = int(n, "to", 1)
                    switch env[n.input[0]] {
                    case .constant(var c)?:
                        // Integer types truncate toward zero, as numpy's astype; float keeps the values.
                        let floatTypes = [Onnx_TensorProto.DataType.float, .double, .float16, .bfloat16].map { $0.rawValue }
                        if !floatTypes.contains(to) { c.floats = c.floats.map { $0.rounded(.towardZero) }; c.ints = c.floats.map { Int64($0) } }
                        env[out] = .constant(c)
                    case .shape(let sh)? where [Onnx_TensorProto.DataType.int64, .int32].map(\.rawValue).contains(to):
                        env[out] = .shape(sh)
                    case .tensor? where to == Onnx_TensorProto.DataType.float.rawValue:
                        env[out] = env[n.input[0]]
                    default:
                        throw fail("Cast '\(n.name)': only casts of data to float (and of constants to any number type) are supported (to = \(to))")
                    }
                case "Softmax", "LogSoftmax":
                    env[out] = .tensor(try softmax(n, name))
                case "Softplus":
                    // softplus(x) = log(1 + eˣ): only as part of mish, which ONNX spells Softplus → Tanh → Mul.
                    throw fail("Softplus '\(n.name)' outside a mish pattern is not supported")
                case "Pad":
                    env[out] = .tensor(try pad(n, name))
                case "QuantizeLinear", "DequantizeLinear":
                    switch env[n.input[0]] {
                    case .tensor?:
                        // Simulated quantization of activations: the imported graph runs in fp32 (our
                        // INT8 engine and export --data_type int8 quantize it again from calibration).
                        env[out] = env[n.input[0]]
                        droppedQDQ += 1
                    case .constant(let x)?:
                        env[out] = .constant(try quantizeLinear(x, n, dequantize: n.opType == "DequantizeLinear"))
                    default:
                        throw fail("\(n.opType) '\(n.name)': needs a tensor or constant input")
                    }
                case "Resize", "Upsample":
                    env[out] = .tensor(try resize(n, name))
                default:
                    guard try convertMore(n, name) else { throw fail("unsupported ONNX op \(n.opType) ('\(n.name)')") }
                }
            }
        }

        /// QuantizeLinear (round(x / scale) + zero point, saturated to the zero point's type) or
        /// DequantizeLinear ((x − zero point) · scale) of a constant, per tensor or along `axis`.
        func quantizeLinear(_ x: Constant, _ n: Onnx_NodeProto, dequantize: Bool) throws -> Constant {
            let scale = try constant(n.input[1], n)
            let zero = n.input.count > 2 && !n.input[2].isEmpty ? try constant(n.input[2], n) : nil
            let axis = int(n, "axis", 1)
            let count = x.floats.count
            // Element k's scale: k / inner % channels along `axis` (one scale: always the first).
            var (inner, channels) = (count, 1)
            if scale.floats.count > 1 {
                let a = axis < 0 ? axis + x.dims.count : axis
                guard a >= 0, a < x.dims.count, x.dims[a] == scale.floats.count else {
                    throw fail("\(n.opType) '\(n.name)': \(scale.floats.count) scales for axis \(axis) of a constant of shape \(x.dims)")
                }
                (inner, channels) = (x.dims[(a + 1)...].reduce(1, *), x.dims[a])
            }
            // The quantized type's range: the zero point's (uint8 without one).
            let signed = n.input.count > 2 && signedInt8.contains(n.input[2])
            let (lo, hi): (Float, Float) = signed ? (-128, 127) : (0, 255)
            let zeros = zero?.floats ?? [0]
            var out = [Float](repeating: 0, count: count)
            for k in 0..<count {
                let c = k / inner % channels
                let (sc, z) = (scale.floats[c], zeros[zeros.count > 1 ? c : 0])
                out[k] = dequantize ? (x.floats[k] - z) * sc : min(hi, max(lo, (x.floats[k] / sc).rounded() + z))
            }
            return Constant(dims: x.dims, floats: out, ints: out.map { Int64($0) })
        }

        /// A per-channel constant added right after a layer without bias (how some exporters write
        /// the bias of Conv and MatMul): the Add's index and output, and the bias values.
        func trailingBias(_ out: String, channels: Int, after index: Int, _ nodes: [Onnx_NodeProto], _ readers: [String: Int]) -> (Int, String, [Float])? {
            guard readers[out] == 1, let k = nodes.indices.first(where: { $0 > index && nodes[$0].input.contains(out) }),
                  nodes[k].opType == "Add", case .constant(let c)? = env[nodes[k].input.first { $0 != out } ?? ""],
                  c.floats.count == channels, c.dims.filter({ $0 != 1 }).count <= 1 else { return nil }
            return (k, nodes[k].output[0], c.floats)
        }

        mutating func flatten(_ x: ValueID, _ name: String) -> ValueID {
            b.shape(x).rank == 1 ? x : b.flatten(x, name)
        }

        /// Add, Mul, Sub or Div: of two constants, folded (numpy's broadcasting); of a tensor and a
        /// scalar constant, a linear activation (c / x: c·x⁻¹); of a [C,H,W] tensor and a per-channel
        /// constant ([C,1,1] or [1,C,1,1]), a depthwise 1×1 convolution with bias; of two tensors, an
        /// add or multiply (x − y = x + (−y), x / y = x · y⁻¹).
        mutating func arithmetic(_ n: Onnx_NodeProto, _ name: String) throws -> Value {
            let op = n.opType
            switch (env[n.input[0]], env[n.input[1]]) {
            case (.constant(let a)?, .constant(let c)?):
                let f: (Float, Float) -> Float
                switch op {
                case "Add": f = { $0 + $1 }
                case "Sub": f = { $0 - $1 }
                case "Mul": f = { $0 * $1 }
                default: f = { $0 / $1 }
                }
                guard let r = Self.broadcast(a, c, f) else { throw fail("\(op) '\(n.name)': constants of shapes \(a.dims) and \(c.dims) do not broadcast") }
                return .constant(r)
            case (.tensor(let x)?, .tensor(let y)?):
                switch op {
                case "Add": return .tensor(b.add(x, y, name))
                case "Mul": return .tensor(b.mul(x, y, name))
                case "Sub": return .tensor(b.add(x, b.activation(y, .linear(alpha: -1, beta: 0), "\(name).negate"), name))
                default: return .tensor(b.mul(x, b.activation(y, .pow(scale: 1, exponent: -1), "\(name).reciprocal"), name))
                }
            case (.tensor(let x)?, .constant(let c)?):
                // x − c = x + (−c); x / c = x · (1/c).
                let v = op == "Sub" ? c.floats.map { -$0 } : op == "Div" ? c.floats.map { 1 / $0 } : c.floats
                return .tensor(try affine(x, Constant(dims: c.dims, floats: v, ints: []), add: op == "Add" || op == "Sub", name, n))
            case (.constant(let c)?, .tensor(let x)?):
                switch op {
                case "Add", "Mul": return .tensor(try affine(x, c, add: op == "Add", name, n))
                case "Sub":   // c − x = (−1)·x + c
                    let negated = try affine(x, Constant(dims: [1], floats: [-1], ints: []), add: false, "\(name).negate", n)
                    return .tensor(try affine(negated, c, add: true, name, n))
                default:
                    guard c.floats.count == 1 else { throw fail("Div '\(n.name)': a constant divided by data needs a scalar constant, got \(c.dims)") }
                    return .tensor(b.activation(x, .pow(scale: c.floats[0], exponent: -1), name))
                }
            default:
                throw fail("\(op) '\(n.name)': needs data or constant inputs")
            }
        }

        /// A constant's axes reordered: output axis k is input axis perm[k].
        static func transpose(_ c: Constant, _ perm: [Int]) -> Constant {
            let dims = perm.map { c.dims[$0] }
            var strides = [Int](repeating: 1, count: c.dims.count)
            for k in stride(from: c.dims.count - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * c.dims[k + 1] }
            var floats = [Float](repeating: 0, count: c.floats.count)
            for i in 0..<floats.count {
                var rest = i, src = 0
                for k in stride(from: dims.count - 1, through: 0, by: -1) { src += (rest % dims[k]) * strides[perm[k]]; rest /= dims[k] }
                floats[i] = c.floats[src]
            }
            return Constant(dims: dims, floats: floats, ints: floats.map { Int64($0) })
        }

        /// Numpy broadcasting of two constants under `f`; nil when the shapes do not broadcast.
        static func broadcast(_ a: Constant, _ c: Constant, _ f: (Float, Float) -> Float) -> Constant? {
            let rank = max(a.dims.count, c.dims.count)
            let da = [Int](repeating: 1, count: rank - a.dims.count) + a.dims, dc = [Int](repeating: 1, count: rank - c.dims.count) + c.dims
            var dims: [Int] = []
            for k in 0..<rank {
                guard da[k] == dc[k] || da[k] == 1 || dc[k] == 1 else { return nil }
                dims.append(da[k] == 1 ? dc[k] : da[k])
            }
            func strides(_ d: [Int]) -> [Int] {
                var s = [Int](repeating: 0, count: rank), acc = 1
                for k in stride(from: rank - 1, through: 0, by: -1) { s[k] = d[k] == 1 ? 0 : acc; acc *= d[k] }
                return s
            }
            let (sa, sc) = (strides(da), strides(dc))
            let count = dims.reduce(1, *)
            var out = [Float](repeating: 0, count: count)
            for i in 0..<count {
                var rest = i, ia = 0, ic = 0
                for k in stride(from: rank - 1, through: 0, by: -1) {
                    let idx = rest % dims[k]; rest /= dims[k]
                    ia += idx * sa[k]; ic += idx * sc[k]
                }
                out[i] = f(a.floats[ia], c.floats[ic])
            }
            return Constant(dims: dims, floats: out, ints: out.map { Int64($0) })
        }

        /// x·c or x + c with a scalar constant c: a linear activation (none when it does nothing).
        mutating func affine(_ x: ValueID, _ c: Constant, add: Bool, _ name: String, _ n: Onnx_NodeProto) throws -> ValueID {
            if c.floats.count == 1 {
                let v = c.floats[0]
                if !add && v == 1 || add && v == 0 { notes.append("removed the no-op \(n.opType) '\(n.name)' by \(v)"); return x }
                return b.activation(x, add ? .linear(alpha: 1, beta: v) : .linear(alpha: v, beta: 0), name)
            }
            // A per-channel constant on [C,H,W]: a depthwise 1×1 convolution (weight 1 and bias c, or weight c).
            let shape = b.shape(x), channels = shape.rank == 3 ? shape[0] : 0
            let squeezed = Array(c.dims.drop { $0 == 1 })
            if channels > 0, c.floats.count == channels, squeezed.first == channels, squeezed.dropFirst().allSatisfy({ $0 == 1 }), squeezed.count <= 3 {
                let w = parameter("\(name).weight", Constant(dims: [channels, 1, 1, 1], floats: add ? [Float](repeating: 1, count: channels) : c.floats, ints: []), role: .convWeight)
                let bias = parameter("\(name).bias", Constant(dims: [channels], floats: add ? c.floats : [Float](repeating: 0, count: channels), ints: []), role: .convBias)
                notes.append("\(n.opType) '\(n.name)' by a per-channel constant runs as a depthwise 1×1 convolution")
                return b.node(name, .conv2d(Conv2D(outChannels: channels, kernel: [1, 1], stride: [1, 1], dilation: [1, 1], padding: .zero, groups: channels, hasBias: true)),
                              [x, w, bias])
            }
            throw fail("\(n.opType) '\(n.name)' of data \(shape) with a constant of shape \(c.dims) is not supported (a scalar, or one value per channel of [N,C,H,W])")
        }
    }
}
