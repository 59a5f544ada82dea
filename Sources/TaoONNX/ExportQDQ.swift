import Foundation
import TaoGraph

extension ONNXExport {
    /// The model in QDQ form, the INT8 format onnxruntime, TensorRT and OpenVINO read: batch norms
    /// folded into their convolutions; each convolution's (and transposed convolution's) input quantized and dequantized
    /// (QuantizeLinear → DequantizeLinear, int8, zero point 0, scale range/127 from calibration),
    /// its weights stored as int8 with per-output-channel scales, its bias as int32 at the input
    /// scale × weight scale, each behind a DequantizeLinear. Everything else stays fp32, as in our
    /// INT8 engine. `ranges`: calibration ranges by value name (`Int8Calibration.measure`);
    /// convolutions named in `fp32Layers` stay fp32 (mixed precision, as the engine runs them).
    public static func qdqModel(_ graph: Graph, _ store: ParameterStore, ranges: [String: Float], fp32Layers: Set<String> = [],
                                metadata: [String: String] = [:], outputNames: [String] = ["logits"]) throws -> Onnx_ModelProto {
        let f = try BatchNormFolding.fold(graph, store)
        let g = f.graph
        var byNode: [Int: Float] = [:]
        for (k, n) in g.nodes.enumerated() where !fp32Layers.contains(n.name) {
            switch n.op { case .conv2d, .convTranspose2d: break; default: continue }
            let v = n.inputs[0]
            let name: String
            switch g.source(of: v) {
            case .input(let input): name = input
            case .node(let k): name = f.folded[g.nodes[k].name] ?? g.nodes[k].name   // a folded convolution gives its batch norm's output
            case .parameter: throw ONNXError("convolution '\\(n.name)' reads a parameter as its input")
            }
            guard let m = ranges[name] else { throw ONNXError("no calibration range for '\\(name)' (the input of '\\(n.name)'): recalibrate for this model") }
            byNode[k] = m
        }
        return try model(g, f.parameters, metadata: metadata, outputNames: outputNames, quantized: byNode)
    }

    public static func writeQDQ(_ graph: Graph, _ store: ParameterStore, ranges: [String: Float], fp32Layers: Set<String> = [], to path: String,
                                metadata: [String: String] = [:], outputNames: [String] = ["logits"]) throws {
        try AtomicFile.write(try qdqModel(graph, store, ranges: ranges, fp32Layers: fp32Layers, metadata: metadata, outputNames: outputNames).serializedData(), to: path)
    }
}

extension ONNXExport.Writer {
    /// x → QuantizeLinear → DequantizeLinear (once per value), int8 weights and int32 bias behind
    /// DequantizeLinear, then the convolution in fp32 on the dequantized values.
    mutating func emitQuantizedConv(_ n: Node, _ store: ParameterStore, range: Float?) throws {
        let c: (outChannels: Int, hasBias: Bool)
        switch n.op {
        case .conv2d(let conv): c = (conv.outChannels, conv.hasBias)
        case .convTranspose2d(let t): c = (t.outChannels, t.hasBias)
        default: return try emit(n)
        }
        guard let range else { return try emit(n) }
        let x = names[n.inputs[0].index]!
        let sx = max(range, 1e-6) / 127
        let dq = "\(x).dequantized"
        if !quantizedInputs.contains(x) {
            quantizedInputs.insert(x)
            let scale = constant("\(x).scale", float: sx)
            var zero = ONNXExport.tensor("\(x).zero_point", dims: [], [Int8(0)], type: .int8); zero.dims = []
            initializers.append(zero)
            node("QuantizeLinear", [x, scale, zero.name], "\(x).quantized", name: "\(x).quantize")
            node("DequantizeLinear", ["\(x).quantized", scale, zero.name], dq, name: "\(x).dequantize")
        }
        let firstParam = graph.inputs.count
        let w = store[n.inputs[1].index - firstParam].scalars
        let bias = c.hasBias ? store[n.inputs[2].index - firstParam].scalars : [Float](repeating: 0, count: c.outChannels)
        let wShape = graph.parameters[n.inputs[1].index - firstParam].shape.dims
        // Per output channel: axis 0 of a convolution's [O, I, KH, KW], axis 1 of a transposed one's [I, O, KH, KW].
        let transposed = n.op.kind == "conv_transpose2d"
        let (wq, sw) = transposed ? PerChannelInt8.quantizeTransposed(w, inChannels: wShape[0], outChannels: c.outChannels)
                                  : PerChannelInt8.quantize(w, channels: c.outChannels)
        let bq = (0..<c.outChannels).map { o in Int32(max(-2_147_483_647, min(2_147_483_647, (Double(bias[o]) / Double(sx * sw[o])).rounded()))) }
        let wName = names[n.inputs[1].index]!
        initializers.append(ONNXExport.tensor("\(wName).quantized", dims: wShape, wq, type: .int8))
        initializers.append(ONNXExport.tensor("\(wName).scale", dims: [c.outChannels], sw, type: .float))
        initializers.append(ONNXExport.tensor("\(wName).zero_point", dims: [c.outChannels], [Int8](repeating: 0, count: c.outChannels), type: .int8))
        node("DequantizeLinear", ["\(wName).quantized", "\(wName).scale", "\(wName).zero_point"], wName, name: "\(wName).dequantize", [int("axis", transposed ? 1 : 0)])
        let bName = c.hasBias ? names[n.inputs[2].index]! : "\(n.name).bias"
        initializers.append(ONNXExport.tensor("\(bName).quantized", dims: [c.outChannels], bq, type: .int32))
        initializers.append(ONNXExport.tensor("\(bName).scale", dims: [c.outChannels], sw.map { $0 * sx }, type: .float))
        initializers.append(ONNXExport.tensor("\(bName).zero_point", dims: [c.outChannels], [Int32](repeating: 0, count: c.outChannels), type: .int32))
        node("DequantizeLinear", ["\(bName).quantized", "\(bName).scale", "\(bName).zero_point"], bName, name: "\(bName).dequantize", [int("axis", 0)])
        switch n.op {
        case .convTranspose2d(let t):
            node("ConvTranspose", [dq, wName, bName], names[n.output.index]!, name: n.name,
                 [ints("kernel_shape", t.kernel), ints("strides", t.stride), ints("dilations", t.dilation), ints("pads", pads(t.padding)), ints("output_padding", t.outputPadding)])
        case .conv2d(let k):
            node("Conv", [dq, wName, bName], names[n.output.index]!, name: n.name,
                 [ints("kernel_shape", k.kernel), ints("strides", k.stride), ints("dilations", k.dilation), ints("pads", pads(k.padding)), int("group", k.groups)])
        default: break
        }
    }
}
