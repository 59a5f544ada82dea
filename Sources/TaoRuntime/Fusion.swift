import TaoGraph

/// A convolution and the ops after it that one oneDNN primitive can run (inference only):
/// conv → [batch norm, folded into the weights] → [activation] → [add, as a sum post-op] → [activation];
/// a transposed convolution → [batch norm] → [activation].
struct ConvTail {
    var batchNorm: Node?
    var activation: Activation?
    var add: Node?
    var addend: ValueID?
    var postActivation: Activation?
    /// Nodes absorbed into the convolution, and the value the fused primitive produces.
    var absorbed: [Int] = []
    var output: ValueID
}

/// Finds the fusible tails of convolutions, and in training the batch norms followed by a ReLU.
struct FusionPlan {
    var convTails: [Int: ConvTail] = [:]
    /// Batch-norm node index → index of the ReLU node folded into it (oneDNN's fuse_norm_relu).
    var bnReLU: [Int: Int] = [:]
    var absorbed: Set<Int> = []

    /// No fusion.
    init() {}

    init(graph g: Graph, mode: Mode, frozenBatchNorm: Set<String> = []) {
        let consumers = g.consumers()
        let outputs = Set(g.outputs)
        /// The single node reading `v`, if exactly one does and `v` is not a graph output.
        func sole(_ v: ValueID) -> Int? {
            guard !outputs.contains(v), consumers[v.index].count == 1 else { return nil }
            return consumers[v.index][0]
        }
        func fusibleActivation(_ a: Activation) -> Bool {
            switch a { case .relu, .relu6, .leakyRelu, .elu, .sigmoid, .tanh, .swish, .hardSwish, .linear, .clip: true
                      case .mish, .abs, .sqrt, .exp, .log, .softplus, .pow, .gelu, .erf: false }
        }

        if mode == .training {
            for (i, n) in g.nodes.enumerated() {
                guard case .batchNorm = n.op, !frozenBatchNorm.contains(n.name), let j = sole(n.output), case .activation(.relu) = g.nodes[j].op else { continue }
                bnReLU[i] = j
                absorbed.insert(j)
            }
            return
        }
        for (i, n) in g.nodes.enumerated() {
            // Transposed convolutions take a batch norm and an activation, not a residual add.
            let transposed: Bool
            switch n.op { case .conv2d: transposed = false; case .convTranspose2d: transposed = true; default: continue }
            var tail = ConvTail(output: n.output)
            var cur = n.output
            if let j = sole(cur), case .batchNorm = g.nodes[j].op {
                tail.batchNorm = g.nodes[j]; tail.absorbed.append(j); cur = g.nodes[j].output
            }
            if let j = sole(cur), case .activation(let a) = g.nodes[j].op, fusibleActivation(a) {
                tail.activation = a; tail.absorbed.append(j); cur = g.nodes[j].output
            }
            if !transposed, let j = sole(cur), case .add = g.nodes[j].op {
                let other = g.nodes[j].inputs[0] == cur ? g.nodes[j].inputs[1] : g.nodes[j].inputs[0]
                // The addend must exist before the convolution runs and have the same shape.
                let ready: Bool = {
                    switch g.source(of: other) {
                    case .node(let p): return p < i
                    case .input, .parameter: return true
                    }
                }()
                if ready, g.shape(of: other) == g.shape(of: cur), other != cur {
                    tail.add = g.nodes[j]; tail.addend = other; tail.absorbed.append(j); cur = g.nodes[j].output
                    if let k = sole(cur), case .activation(let a) = g.nodes[k].op, fusibleActivation(a) {
                        tail.postActivation = a; tail.absorbed.append(k); cur = g.nodes[k].output
                    }
                }
            }
            guard !tail.absorbed.isEmpty else { continue }
            tail.output = cur
            convTails[i] = tail
            absorbed.formUnion(tail.absorbed)
        }
    }
}
