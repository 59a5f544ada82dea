import TaoGraph

/// Re-estimation of batch-norm running statistics from data, with every other parameter fixed.
///
/// After pruning, each batch norm's running mean and variance describe channels that no longer
/// receive the same inputs (whole filters upstream are gone), so a pruned model evaluates near
/// chance until retrained. Measuring the statistics again on training images, as in "adaptive
/// batch norm" pruning evaluation, gives the accuracy the pruned weights really have.
public enum BatchNormStatistics {
    /// Sets each batch norm's running mean and variance in `store` to the average of its batch
    /// statistics over `batches` (training-mode forward passes, dropout off: each layer sees its
    /// inputs normalized as in training). Returns how many batch norms were updated.
    @discardableResult
    public static func reestimate(_ g: Graph, _ store: ParameterStore, batches: [Tensor]) throws -> Int {
        var rest = batches[...]
        return try reestimate(g, store) { rest.popFirst() }
    }

    /// The same, with batches made one at a time by `next` (nil: no more), so that a large sample
    /// of images need not be held in memory at once.
    @discardableResult
    public static func reestimate(_ g: Graph, _ store: ParameterStore, next: () throws -> Tensor?) throws -> Int {
        // momentum 0: one forward leaves the batch's own statistics in the running buffers.
        var norms: [(mean: Int, variance: Int)] = []
        let nodes = g.nodes.map { n -> Node in
            switch n.op {
            case .batchNorm(var b):
                b.momentum = 0
                norms.append((n.inputs[3].index - g.inputs.count, n.inputs[4].index - g.inputs.count))
                return Node(name: n.name, op: .batchNorm(b), inputs: n.inputs, output: n.output)
            case .dropout: return Node(name: n.name, op: .dropout(rate: 0), inputs: n.inputs, output: n.output)
            default: return n
            }
        }
        guard !norms.isEmpty else { return 0 }
        guard let first = try next() else { throw RuntimeError.badInput("batch-norm re-estimation needs at least one batch") }
        let once = try Graph(inputs: Array(zip(g.inputNames, g.inputs.map { g.shape(of: $0) })), parameters: g.parameters,
                             nodes: nodes, outputs: g.outputs)
        let exec = try Executor(graph: once, batch: first.shape[0], mode: .training, parameters: store)
        var sums = norms.map { (mean: [Double](repeating: 0, count: store[$0.mean].shape.count),
                                variance: [Double](repeating: 0, count: store[$0.variance].shape.count)) }
        var count = 0, current: Tensor? = first
        while let batch = current {
            guard batch.shape == first.shape else {
                throw RuntimeError.badInput("batch-norm re-estimation batches must share one shape: \(batch.shape) vs \(first.shape)")
            }
            try exec.setInput(0, batch)
            exec.forward()
            for (k, (m, v)) in norms.enumerated() {
                for (i, x) in store[m].scalars.enumerated() { sums[k].mean[i] += Double(x) }
                for (i, x) in store[v].scalars.enumerated() { sums[k].variance[i] += Double(x) }
            }
            count += 1
            current = try next()
        }
        for (k, (m, v)) in norms.enumerated() {
            store[m] = Tensor(shape: store[m].shape, values: sums[k].mean.map { Float($0 / Double(count)) })
            store[v] = Tensor(shape: store[v].shape, values: sums[k].variance.map { Float($0 / Double(count)) })
        }
        return norms.count
    }
}
