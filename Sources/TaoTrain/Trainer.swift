import Foundation
import TaoGraph
import TaoRuntime

/// One training run's moving parts: the executor, the optimizer, the regularizer and (for
/// classifiers) the softmax cross-entropy.
///
/// `step` runs forward, the task's loss over every output, backward, regularization, optional
/// clipping and the update.
public final class Trainer {
    /// The executor the steps run; another one on the same graph and parameters (the graph at
    /// another input size, for multi-scale training) may take its place between steps.
    public var executor: Executor
    public var optimizer: any Optimizer
    /// The loss of `step(labels:soft:)`; tasks with other outputs pass their loss to `step(loss:)`.
    public var loss: SoftmaxCrossEntropy
    public var regularizer: Regularizer?
    /// Clip the global gradient norm to this value when set.
    public var clipNorm: Float?
    public var learningRate: Float
    /// The regularization term of the last step (part of the loss it returned).
    public private(set) var lastRegularization: Float = 0
    /// The ranks of a data-parallel run: each step's gradients (and loss) are averaged over them
    /// before the update, so every rank applies the same one.
    public var collective: any Collective = SingleProcess()
    /// Gradients travel in buckets of this many floats (Horovod's fusion buffer; 16 MiB).
    public var bucketFloats = 4 << 20
    /// What the last step's averaging sent (bytes each rank contributed) and how long it took.
    public private(set) var lastCommunication: (bytes: Int, seconds: Double) = (0, 0)
    private let trainable: [Int]
    private var staging: [Float] = []

    public init(executor: Executor, optimizer: any Optimizer, learningRate: Float, loss: SoftmaxCrossEntropy = .init(),
                regularizer: Regularizer? = nil, clipNorm: Float? = nil) {
        self.executor = executor
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.loss = loss
        self.regularizer = regularizer
        self.clipNorm = clipNorm
        trainable = executor.graph.parameters.indices.filter { executor.parameterGradientPointer($0) != nil }
    }

    /// One classifier step (softmax cross-entropy on output 0) on a batch whose images are already
    /// in the executor's input 0. Returns the batch loss (regularization included).
    @discardableResult
    public func step(labels: [Int]? = nil, soft: [Float]? = nil) throws -> Float {
        try step { ex in
            let shape = ex.outputShape()
            return self.loss(logits: ex.outputPointer(), grad: ex.outputGradientPointer(), batch: shape[0], classes: shape[1], labels: labels, soft: soft)
        }
    }

    /// One optimization step on a batch already in the executor's inputs: forward, then `loss`,
    /// which reads the outputs, writes d(loss)/d(output) for every output and returns the loss;
    /// then backward, regularization, clipping and the update. Returns the loss with regularization.
    @discardableResult
    public func step(loss: (Executor) -> Float) throws -> Float {
        let ex = executor
        ex.forward()
        var total = loss(ex)
        ex.backward()
        let params = ex.parameters
        if collective.size > 1 { total = try averageGradients(loss: total) }
        lastRegularization = 0
        if let reg = regularizer {
            for i in trainable where reg.scope.contains(params.infos[i].role) {
                let r = reg.apply(weights: params.pointer(i), grads: ex.parameterGradientPointer(i)!, count: params.infos[i].shape.count)
                total += r
                lastRegularization += r
            }
        }
        if let clip = clipNorm {
            var sq: Double = 0
            for i in trainable {
                let g = ex.parameterGradientPointer(i)!
                for k in 0..<params.infos[i].shape.count { sq += Double(g[k] * g[k]) }
            }
            let norm = Float(sq.squareRoot())
            if norm > clip {
                let s = clip / norm
                for i in trainable {
                    let g = ex.parameterGradientPointer(i)!
                    for k in 0..<params.infos[i].shape.count { g[k] *= s }
                }
            }
        }
        for i in trainable {
            optimizer.update(index: i, weights: params.pointer(i), grads: ex.parameterGradientPointer(i)!, count: params.infos[i].shape.count, lr: learningRate)
        }
        params.touch()
        return total
    }

    /// Replaces every trainable gradient by its mean over the ranks, in buckets of `bucketFloats`
    /// (the loss rides in the last one); returns the mean loss.
    private func averageGradients(loss: Float) throws -> Float {
        let ex = executor, infos = ex.parameters.infos
        let total = trainable.reduce(0) { $0 + infos[$1].shape.count } + 1
        if staging.count != total { staging = [Float](repeating: 0, count: total) }
        let t0 = Date()
        let scale = 1 / Float(collective.size)
        let mean: Float = try staging.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            var offset = 0
            for i in trainable {
                let n = infos[i].shape.count
                base.advanced(by: offset).update(from: ex.parameterGradientPointer(i)!, count: n)
                offset += n
            }
            base[offset] = loss
            var start = 0
            while start < total {
                let n = min(bucketFloats, total - start)
                try collective.allreduceSum(base.advanced(by: start), count: n)
                start += n
            }
            offset = 0
            for i in trainable {
                let n = infos[i].shape.count, g = ex.parameterGradientPointer(i)!
                for k in 0..<n { g[k] = base[offset + k] * scale }
                offset += n
            }
            return base[offset] * scale
        }
        lastCommunication = (total * 4, Date().timeIntervalSince(t0))
        return mean
    }
}
