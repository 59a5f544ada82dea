import Foundation
import SwiftProtobuf
import TaoGraph

/// Errors reading or writing ONNX files, naming the file and what is wrong.
public struct ONNXError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Graph → ONNX ModelProto (opset 17, dynamic batch). Each of our ops becomes one or a few
/// standard ONNX ops; parameters become initializers (batch-norm statistics included).
public enum ONNXExport {
    public static let opset: Int64 = 17

    /// The ONNX model of `graph` with `store`'s values; `metadata` goes to metadata_props
    /// (class labels, preprocessing, …).
    public static func model(_ graph: Graph, _ store: ParameterStore, metadata: [String: String] = [:],
                             outputNames: [String] = ["logits"]) throws -> Onnx_ModelProto {
        try model(graph, store, metadata: metadata, outputNames: outputNames, quantized: nil)
    }

    /// `quantized`: for each convolution to write in QDQ form (batch norms folded in first), the
    /// per-tensor range of its input, by node index; the other convolutions stay fp32.
    static func model(_ graph: Graph, _ store: ParameterStore, metadata: [String: String], outputNames: [String],
                      quantized ranges: [Int: Float]?) throws -> Onnx_ModelProto {
        var w = Writer(graph: graph)
        // In QDQ form convolution weights and biases are written quantized, by the convolution.
        var skip = Set<Int>()
        if ranges != nil {
            for (k, n) in graph.nodes.enumerated() where ranges?[k] != nil { for v in n.inputs.dropFirst() { skip.insert(v.index) } }
        }
        for (i, p) in graph.parameters.enumerated() {
            w.names[graph.parameterValue(i).index] = p.name
            if !skip.contains(graph.parameterValue(i).index) {
                w.initializers.append(tensor(p.name, dims: p.shape.dims, floats: store[i].scalars))
            }
        }
        for (i, v) in graph.inputs.enumerated() { w.names[v.index] = graph.inputNames[i] }
        // Final outputs take the requested names; every other value is named after its node.
        var outputFor: [Int: String] = [:]
        for (k, o) in graph.outputs.enumerated() { outputFor[o.index] = k < outputNames.count ? outputNames[k] : "output\(k)" }
        // (A node named like an output that is not that output — DetectNet_v2's `output_cov`
        // convolution before its sigmoid, whose output is named `output_cov` — gets a suffix: ONNX
        // value names are unique.)
        let taken = Set(outputFor.values)
        for n in graph.nodes { w.names[n.output.index] = outputFor[n.output.index] ?? (taken.contains(n.name) ? n.name + "/value" : n.name) }
        for (k, n) in graph.nodes.enumerated() {
            if let range = ranges?[k] {
                try w.emitQuantizedConv(n, store, range: range)
            } else {
                try w.emit(n)
            }
        }

        var g = Onnx_GraphProto()
        g.name = "tao_swift"
        g.node = w.nodes
        g.initializer = w.initializers
        g.input = graph.inputs.map { valueInfo(w.names[$0.index]!, graph.shape(of: $0)) }
        g.output = graph.outputs.map { valueInfo(w.names[$0.index]!, graph.shape(of: $0)) }
        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.producerName = "tao-swift"
        m.producerVersion = "0.1"
        var op = Onnx_OperatorSetIdProto()
        op.domain = ""; op.version = opset
        m.opsetImport = [op]
        m.graph = g
        m.metadataProps = metadata.sorted { $0.key < $1.key }.map { var e = Onnx_StringStringEntryProto(); e.key = $0.key; e.value = $0.value; return e }
        return m
    }

    /// Writes the model; `outputNames` name the graph's outputs in order (a classifier's one is "logits").
    public static func write(_ graph: Graph, _ store: ParameterStore, to path: String, metadata: [String: String] = [:],
                             outputNames: [String] = ["logits"]) throws {
        let data = try model(graph, store, metadata: metadata, outputNames: outputNames).serializedData()
        try AtomicFile.write(data, to: path)
    }

    static func valueInfo(_ name: String, _ shape: Shape) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var s = Onnx_TensorShapeProto()
        var batch = Onnx_TensorShapeProto.Dimension(); batch.dimParam = "batch"
        s.dim = [batch] + shape.dims.map { var d = Onnx_TensorShapeProto.Dimension(); d.dimValue = Int64($0); return d }
        t.shape = s
        v.type.tensorType = t
        return v
    }

    static func tensor(_ name: String, dims: [Int], floats: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.rawData = floats.withUnsafeBufferPointer { Data(buffer: $0) }
        return t
    }

    static func tensor<T>(_ name: String, dims: [Int], _ values: [T], type: Onnx_TensorProto.DataType) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map(Int64.init)
        t.dataType = Int32(type.rawValue)
        t.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        return t
    }

    static func tensor(_ name: String, int64s: [Int64]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = [Int64(int64s.count)]
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.rawData = int64s.withUnsafeBufferPointer { Data(buffer: $0) }
        return t
    }

    /// Emits nodes and constants with unique names.
    struct Writer {
        let graph: Graph
        var names: [Int: String] = [:]
        var nodes: [Onnx_NodeProto] = []
        var initializers: [Onnx_TensorProto] = []
        /// Values already quantized and dequantized (QDQ form), by name.
        var quantizedInputs = Set<String>()

        init(graph: Graph) { self.graph = graph }

        mutating func node(_ type: String, _ inputs: [String], _ output: String, name: String, _ attrs: [Onnx_AttributeProto] = []) {
            var n = Onnx_NodeProto()
            n.opType = type; n.input = inputs; n.output = [output]; n.name = name; n.attribute = attrs
            nodes.append(n)
        }

        mutating func constant(_ name: String, int64s: [Int64]) -> String {
            initializers.append(ONNXExport.tensor(name, int64s: int64s)); return name
        }

        mutating func constant(_ name: String, float: Float) -> String {
            var t = ONNXExport.tensor(name, dims: [], floats: [float]); t.dims = []
            initializers.append(t); return name
        }

        mutating func emit(_ n: Node) throws {
            let ins = n.inputs.map { names[$0.index]! }
            let out = names[n.output.index]!
            let x = ins[0]
            switch n.op {
            case .conv2d(let c):
                node("Conv", ins, out, name: n.name, [ints("kernel_shape", c.kernel), ints("strides", c.stride), ints("dilations", c.dilation),
                                                      ints("pads", pads(c.padding)), int("group", c.groups)])
            case .convTranspose2d(let c):
                node("ConvTranspose", ins, out, name: n.name, [ints("kernel_shape", c.kernel), ints("strides", c.stride), ints("dilations", c.dilation),
                                                               ints("pads", pads(c.padding)), ints("output_padding", c.outputPadding)])
            case .batchNorm(let b):
                node("BatchNormalization", ins, out, name: n.name, [float("epsilon", b.epsilon), float("momentum", b.momentum)])
            case .activation(let a):
                switch a {
                case .relu: node("Relu", [x], out, name: n.name)
                case .relu6:
                    node("Clip", [x, constant("\(n.name).min", float: 0), constant("\(n.name).max", float: 6)], out, name: n.name)
                case .leakyRelu(let alpha): node("LeakyRelu", [x], out, name: n.name, [float("alpha", alpha)])
                case .elu(let alpha): node("Elu", [x], out, name: n.name, [float("alpha", alpha)])
                case .sigmoid: node("Sigmoid", [x], out, name: n.name)
                case .tanh: node("Tanh", [x], out, name: n.name)
                case .hardSwish: node("HardSwish", [x], out, name: n.name)
                case .swish:
                    node("Sigmoid", [x], "\(n.name).sigmoid", name: "\(n.name).sigmoid")
                    node("Mul", [x, "\(n.name).sigmoid"], out, name: n.name)
                case .linear(let a, let b):
                    node("Mul", [x, constant("\(n.name).alpha", float: a)], "\(n.name).scaled", name: "\(n.name).scale")
                    node("Add", ["\(n.name).scaled", constant("\(n.name).beta", float: b)], out, name: n.name)
                case .clip(let lo, let hi):
                    node("Clip", [x, constant("\(n.name).min", float: lo), constant("\(n.name).max", float: hi)], out, name: n.name)
                case .abs: node("Abs", [x], out, name: n.name)
                case .sqrt: node("Sqrt", [x], out, name: n.name)
                case .exp: node("Exp", [x], out, name: n.name)
                case .log: node("Log", [x], out, name: n.name)
                case .softplus: node("Softplus", [x], out, name: n.name)
                case .pow(let scale, let exponent):
                    node("Pow", [x, constant("\(n.name).exponent", float: exponent)], "\(n.name).pow", name: "\(n.name).pow")
                    node("Mul", ["\(n.name).pow", constant("\(n.name).scale", float: scale)], out, name: n.name)
                case .erf: node("Erf", [x], out, name: n.name)
                case .gelu:
                    // x · ½ · (1 + erf(x / √2)), as exporters write it below opset 20.
                    node("Mul", [x, constant("\(n.name).rsqrt2", float: Float(0.5.squareRoot()))], "\(n.name).scaled", name: "\(n.name).scale")
                    node("Erf", ["\(n.name).scaled"], "\(n.name).erf", name: "\(n.name).erf")
                    node("Add", ["\(n.name).erf", constant("\(n.name).one", float: 1)], "\(n.name).plus1", name: "\(n.name).plus1")
                    node("Mul", [x, "\(n.name).plus1"], "\(n.name).product", name: "\(n.name).product")
                    node("Mul", ["\(n.name).product", constant("\(n.name).half", float: 0.5)], out, name: n.name)
                case .mish:
                    node("Softplus", [x], "\(n.name).softplus", name: "\(n.name).softplus")
                    node("Tanh", ["\(n.name).softplus"], "\(n.name).tanh", name: "\(n.name).tanh")
                    node("Mul", [x, "\(n.name).tanh"], out, name: n.name)
                }
            case .pool2d(let p):
                var attrs = [ints("kernel_shape", p.kernel), ints("strides", p.stride), ints("pads", pads(p.padding))]
                if p.kind == .average { attrs.append(int("count_include_pad", p.countIncludePad ? 1 : 0)) }
                node(p.kind == .max ? "MaxPool" : "AveragePool", [x], out, name: n.name, attrs)
            case .globalAveragePool:
                node("GlobalAveragePool", [x], "\(n.name).pooled", name: n.name)
                node("Flatten", ["\(n.name).pooled"], out, name: "\(n.name).flatten", [int("axis", 1)])
            case .dense:
                node("Gemm", ins, out, name: n.name, [int("transB", 1)])
            case .add: node("Add", ins, out, name: n.name)
            case .compare(let c):
                // ONNX's comparisons give booleans; ours 1 and 0.
                node(c.rawValue, ins, "\(n.name).bool", name: "\(n.name).compare")
                node("Cast", ["\(n.name).bool"], out, name: n.name, [int("to", Int(Onnx_TensorProto.DataType.float.rawValue))])
            case .mul: node("Mul", ins, out, name: n.name)
            case .concat(let axis): node("Concat", ins, out, name: n.name, [int("axis", axis)])
            case .transpose(let perm):
                node("Transpose", [x], out, name: n.name, [ints("perm", perm)])
            case .slice(let s):
                node("Slice", [x, constant("\(n.name).starts", int64s: [Int64(s.start)]), constant("\(n.name).ends", int64s: [Int64(s.end)]),
                               constant("\(n.name).axes", int64s: [Int64(s.axis)])] + (s.step == 1 ? [] : [constant("\(n.name).steps", int64s: [Int64(s.step)])]),
                     out, name: n.name)
            case .reshape(let shape):
                node("Reshape", [x, constant("\(n.name).shape", int64s: [0] + shape.dims.map(Int64.init))], out, name: n.name)
            case .flatten:
                node("Flatten", [x], out, name: n.name, [int("axis", 1)])
            case .pad2d(let p):
                node("Pad", [x, constant("\(n.name).pads", int64s: [0, 0, p.top, p.left, 0, 0, p.bottom, p.right].map(Int64.init))], out, name: n.name)
            case .upsample(let u):
                let scales = "\(n.name).scales"
                var t = ONNXExport.tensor(scales, dims: [4], floats: [1, 1, Float(u.scale[0]), Float(u.scale[1])]); t.name = scales
                initializers.append(t)
                let attrs = u.mode == .nearest
                    ? [string("mode", "nearest"), string("coordinate_transformation_mode", "asymmetric"), string("nearest_mode", "floor")]
                    : [string("mode", "linear"), string("coordinate_transformation_mode", "half_pixel")]
                node("Resize", [x, "", scales], out, name: n.name, attrs)
            case .resize(let r):
                // Scales whose product with the input's size truncates to the output's (as onnxruntime sizes it).
                let input = graph.shape(of: n.inputs[0])
                let scales = (0..<2).map { k -> Float in
                    var f = r.scale[k]
                    while Int(Float(input[k + 1]) * f) < r.size[k] { f = f.nextUp }
                    return f
                }
                let name = "\(n.name).scales"
                var t = ONNXExport.tensor(name, dims: [4], floats: [1, 1] + scales); t.name = name
                initializers.append(t)
                var a = Onnx_AttributeProto(); a.name = "cubic_coeff_a"; a.type = .float; a.f = r.cubicA
                node("Resize", [x, "", name], out, name: n.name, [string("mode", r.mode.rawValue), string("coordinate_transformation_mode", r.coordinates),
                                                                  string("nearest_mode", r.rounding), a, int("exclude_outside", r.excludeOutside ? 1 : 0)])
            case .dropout:
                node("Identity", [x], out, name: n.name)
            case .softmax:
                node("Softmax", [x], out, name: n.name, [int("axis", 1)])
            case .logSoftmax:
                node("LogSoftmax", [x], out, name: n.name, [int("axis", 1)])
            }
        }

        func pads(_ p: Padding2D) -> [Int] { [p.top, p.left, p.bottom, p.right] }
        func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto(); a.name = name; a.type = .ints; a.ints = v.map(Int64.init); return a
        }
        func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto(); a.name = name; a.type = .int; a.i = Int64(v); return a
        }
        func float(_ name: String, _ v: Float) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto(); a.name = name; a.type = .float; a.f = v; return a
        }
        func string(_ name: String, _ v: String) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto(); a.name = name; a.type = .string; a.s = Data(v.utf8); return a
        }
    }
}
