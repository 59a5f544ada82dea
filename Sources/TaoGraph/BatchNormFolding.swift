import TaoTensor

/// Folds each batch norm that is a convolution's only reader into that convolution's weights and
/// bias (inference only: the running statistics become constants), giving a graph with fewer
/// nodes that computes the same function.
public enum BatchNormFolding {
    public struct Result {
        public let graph: Graph
        public let parameters: ParameterStore
        /// Folded convolution name → the batch norm folded into it (whose output it now gives).
        public let folded: [String: String]
    }

    public static func fold(_ g: Graph, _ store: ParameterStore) throws -> Result {
        let consumers = g.consumers(), outputs = Set(g.outputs)
        var bnOf: [Int: Int] = [:]   // conv node index → batch-norm node index
        for (i, n) in g.nodes.enumerated() {
            guard case .conv2d = n.op, !outputs.contains(n.output), consumers[n.output.index].count == 1 else { continue }
            let j = consumers[n.output.index][0]
            if case .batchNorm = g.nodes[j].op, g.nodes[j].inputs[0] == n.output { bnOf[i] = j }
        }
        let foldedBN = Set(bnOf.values)
        var b = GraphBuilder()
        var map: [Int: ValueID] = [:], values: [Tensor] = [], folded: [String: String] = [:]
        for (k, v) in g.inputs.enumerated() { map[v.index] = b.input(g.inputNames[k], g.shape(of: v)) }
        func scalars(_ v: ValueID) -> [Float] { store[v.index - g.inputs.count].scalars }
        func value(_ v: ValueID) -> ValueID {
            if let m = map[v.index] { return m }
            let i = v.index - g.inputs.count, p = g.parameters[i]   // not yet added: a parameter
            let id = b.parameter(p.name, p.shape, role: p.role)
            values.append(store[i])
            map[v.index] = id
            return id
        }
        for (i, n) in g.nodes.enumerated() where !foldedBN.contains(i) {
            guard let j = bnOf[i], case .conv2d(var c) = n.op, case .batchNorm(let bn) = g.nodes[j].op else {
                map[n.output.index] = b.node(n.name, n.op, n.inputs.map(value))
                continue
            }
            let m = g.nodes[j]
            var w = scalars(n.inputs[1])
            var bias = c.hasBias ? scalars(n.inputs[2]) : [Float](repeating: 0, count: c.outChannels)
            let (gamma, beta, mean, variance) = (scalars(m.inputs[1]), scalars(m.inputs[2]), scalars(m.inputs[3]), scalars(m.inputs[4]))
            let per = w.count / c.outChannels
            for o in 0..<c.outChannels {
                let f = gamma[o] / (variance[o] + bn.epsilon).squareRoot()
                for k in 0..<per { w[o * per + k] *= f }
                bias[o] = (bias[o] - mean[o]) * f + beta[o]
            }
            let weight = g.parameters[n.inputs[1].index - g.inputs.count]
            let wID = b.parameter(weight.name, weight.shape, role: .convWeight)
            values.append(Tensor(shape: weight.shape, values: w))
            let biasName = c.hasBias ? g.parameters[n.inputs[2].index - g.inputs.count].name : "\(n.name).bias"
            let bID = b.parameter(biasName, [c.outChannels], role: .convBias)
            values.append(Tensor(shape: [c.outChannels], values: bias))
            c.hasBias = true
            let out = b.node(n.name, .conv2d(c), [value(n.inputs[0]), wID, bID])
            map[n.output.index] = out
            map[m.output.index] = out
            folded[n.name] = m.name
        }
        let graph = try b.build(outputs: g.outputs.map { map[$0.index]! })
        let s = ParameterStore(graph: graph, seed: 0)
        for (i, t) in values.enumerated() { s[i] = t }
        return Result(graph: graph, parameters: s, folded: folded)
    }
}

/// Symmetric per-output-channel int8 quantization of weights laid out output channel first.
public enum PerChannelInt8 {
    /// `steps[o]`: the real value of one int8 step of channel o (its largest magnitude / 127; 1 for
    /// an all-zero channel); `values`: round(w / step), within ±127.
    public static func quantize(_ w: [Float], channels: Int) -> (values: [Int8], steps: [Float]) {
        let per = w.count / channels
        var q = [Int8](repeating: 0, count: w.count), steps = [Float](repeating: 1, count: channels)
        for o in 0..<channels {
            let m = w[(o * per)..<((o + 1) * per)].reduce(Float(0)) { max($0, abs($1)) }
            steps[o] = m > 0 ? m / 127 : 1
            for k in 0..<per { q[o * per + k] = Int8(max(-127, min(127, (w[o * per + k] / steps[o]).rounded()))) }
        }
        return (q, steps)
    }

    /// A transposed convolution's weights [I, O, KH, KW] quantized per output channel (axis 1):
    /// values in the same [I, O, KH, KW] order, steps per O.
    public static func quantizeTransposed(_ w: [Float], inChannels: Int, outChannels: Int) -> (values: [Int8], steps: [Float]) {
        let k = w.count / (inChannels * outChannels)
        var oi = [Float](repeating: 0, count: w.count)   // [O, I, K]
        for i in 0..<inChannels { for o in 0..<outChannels { for t in 0..<k { oi[(o * inChannels + i) * k + t] = w[(i * outChannels + o) * k + t] } } }
        let (q, steps) = quantize(oi, channels: outChannels)
        var back = [Int8](repeating: 0, count: w.count)
        for i in 0..<inChannels { for o in 0..<outChannels { for t in 0..<k { back[(i * outChannels + o) * k + t] = q[(o * inChannels + i) * k + t] } } }
        return (back, steps)
    }
}
