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
    /// Exchange gradient buckets on a communication thread while backward goes on (Horovod's design),
    /// where the collective may be called from another thread; else after backward
    /// (TAO_GRADIENT_OVERLAP=0 turns it off, to compare).
    public var overlap = ProcessInfo.processInfo.environment["TAO_GRADIENT_OVERLAP"] != "0"
    /// What the last step's averaging sent (bytes each rank contributed), how long the exchange took
    /// in all, and how much of it the step waited for after backward (the part not overlapped).
    public private(set) var lastCommunication: (bytes: Int, seconds: Double, exposed: Double) = (0, 0, 0)
    private var exchange: GradientExchange?
    deinit { exchange?.close() }
    private let trainable: [Int]

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
        if collective.size > 1 {
            // Overlapped on a communication thread where the collective allows it, else after backward.
            let background = overlap && collective.callableFromAnyThread
            if exchange?.executor !== ex || exchange?.bucketFloats != bucketFloats || exchange?.background != background {
                exchange?.close()
                exchange = GradientExchange(executor: ex, trainable: trainable, collective: collective, bucketFloats: bucketFloats, background: background)
            }
            let exchange = exchange!
            exchange.begin(loss: total)
            if background { ex.backward { exchange.ready($0) } } else { ex.backward(); exchange.ready(exchange.order) }
            total = try exchange.finish()
            lastCommunication = exchange.last
        } else {
            ex.backward()
        }
        let params = ex.parameters
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
}

/// One step's gradient averaging overlapped with backward. The trainable gradients are laid out in
/// the order backward finishes them and cut into buckets of about `bucketFloats`; a bucket is
/// copied and handed to the communication thread as soon as its last gradient is final, so that
/// its allreduce runs while backward computes the layers before it. The buckets become complete in
/// the same order on every rank (the order is the graph's), so every rank starts the same
/// collectives in the same order, as MPI requires. The loss rides in the last bucket. Without
/// `background` (no overlap, or a collective that must stay on one thread) `finish` runs the same
/// buckets itself, after backward.
final class GradientExchange: @unchecked Sendable {
    let executor: Executor
    let collective: any Collective
    let bucketFloats: Int
    let background: Bool
    /// The trainable parameters in the order backward finishes their gradients.
    let order: [Int]
    /// Each trainable parameter's offset and count in `base`, and its bucket.
    private var slots: [Int: (offset: Int, count: Int, bucket: Int)] = [:]
    private var buckets: [(start: Int, count: Int, parameters: Int)] = []
    private let base: UnsafeMutablePointer<Float>
    private let lossSlot: Int
    private var readyIn: [Int]
    private var nextToSend = 0
    private let cond = NSCondition()
    private var queue: [Int] = [], done = 0, failure: Error?
    private var exchangeSeconds = 0.0
    private(set) var last: (bytes: Int, seconds: Double, exposed: Double) = (0, 0, 0)

    init(executor: Executor, trainable: [Int], collective: any Collective, bucketFloats: Int, background: Bool) {
        self.executor = executor; self.collective = collective; self.bucketFloats = bucketFloats; self.background = background
        let wanted = Set(trainable)
        order = (executor.gradientsReadyAfter.atStart + executor.gradientsReadyAfter.steps.flatMap { $0 }).filter { wanted.contains($0) }
        var offset = 0, start = 0, members = 0
        for i in order {
            let n = executor.parameters.infos[i].shape.count
            slots[i] = (offset, n, buckets.count)
            offset += n; members += 1
            if offset - start >= bucketFloats { buckets.append((start, offset - start, members)); start = offset; members = 0 }
        }
        lossSlot = offset
        buckets.append((start, offset + 1 - start, members))   // the rest, and the loss
        base = .allocate(capacity: offset + 1)
        base.initialize(repeating: 0, count: offset + 1)
        readyIn = buckets.map { _ in 0 }
        guard background else { return }
        let thread = Thread { [weak self] in self?.serve() }
        thread.name = "gradient allreduce"
        thread.start()
    }

    deinit { base.deallocate() }

    /// Stops the communication thread (which holds this exchange until then).
    func close() { cond.lock(); done = -1; cond.broadcast(); cond.unlock() }

    func begin(loss: Float) {
        base[lossSlot] = loss
        for k in readyIn.indices { readyIn[k] = 0 }
        nextToSend = 0
        cond.lock(); done = 0; queue = []; failure = nil; exchangeSeconds = 0; cond.unlock()
        sendComplete()   // a last bucket with the loss alone
    }

    /// Called from backward with the parameters whose gradients just became final.
    func ready(_ params: [Int]) {
        for i in params {
            guard let s = slots[i] else { continue }
            base.advanced(by: s.offset).update(from: executor.parameterGradientPointer(i)!, count: s.count)
            readyIn[s.bucket] += 1
        }
        sendComplete()
    }

    private func sendComplete() {
        var send: [Int] = []
        while nextToSend < buckets.count, readyIn[nextToSend] == buckets[nextToSend].parameters {
            send.append(nextToSend); nextToSend += 1
        }
        guard !send.isEmpty else { return }
        cond.lock(); queue += send; cond.broadcast(); cond.unlock()
    }

    /// Waits for every bucket, writes the mean gradients back; returns the mean loss.
    func finish() throws -> Float {
        precondition(nextToSend == buckets.count, "a trainable gradient was never reported final")
        let t0 = Date()
        if !background {
            for k in queue { try collective.allreduceSum(base.advanced(by: buckets[k].start), count: buckets[k].count) }
            (queue, done, exchangeSeconds) = ([], buckets.count, Date().timeIntervalSince(t0))
        }
        cond.lock()
        while done < buckets.count && failure == nil { cond.wait() }
        let error = failure, seconds = exchangeSeconds
        cond.unlock()
        if let error { throw error }
        let scale = 1 / Float(collective.size)
        for (i, s) in slots {
            let g = executor.parameterGradientPointer(i)!
            for k in 0..<s.count { g[k] = base[s.offset + k] * scale }
        }
        last = ((lossSlot + 1) * 4, seconds, Date().timeIntervalSince(t0))
        return base[lossSlot] * scale
    }

    /// The communication thread: allreduces queued buckets in order.
    private func serve() {
        while true {
            cond.lock()
            while queue.isEmpty && done >= 0 { cond.wait() }
            if done < 0 { cond.unlock(); return }
            let k = queue.removeFirst()
            let failed = failure != nil
            cond.unlock()
            var error: Error?
            let t0 = Date()
            if !failed {
                do { try collective.allreduceSum(base.advanced(by: buckets[k].start), count: buckets[k].count) } catch let e { error = e }
            }
            cond.lock()
            exchangeSeconds += Date().timeIntervalSince(t0)
            if let error, failure == nil { failure = error }
            done += 1
            cond.broadcast()
            cond.unlock()
        }
    }
}
