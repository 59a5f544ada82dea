import Foundation
import XCTest
import TaoGraph
import TaoRuntime
import TaoTrain

/// Data parallelism on ranks that are threads (`LocalGroup`): the collectives themselves, and that
/// ranks averaging their gradients train exactly like one process of their summed batch.
final class DataParallelTests: XCTestCase {
    /// Runs `body(rank)` on `n` threads at once; rethrows the first error.
    func onRanks(_ n: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        let errors = Errors()
        let group = DispatchGroup()
        for r in 0..<n {
            group.enter()
            Thread {
                do { try body(r) } catch { errors.add(error) }
                group.leave()
            }.start()
        }
        group.wait()
        if let e = errors.first { throw e }
    }
    final class Errors: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [Error] = []
        func add(_ e: Error) { lock.lock(); list.append(e); lock.unlock() }
        var first: Error? { lock.lock(); defer { lock.unlock() }; return list.first }
    }
    final class Box<T>: @unchecked Sendable { var value: T; init(_ v: T) { value = v } }

    func testLocalGroupSumsAndBroadcasts() throws {
        let group = LocalGroup(size: 3, timeout: 10)
        let sums = Box([[Float]](repeating: [], count: 3)), got = Box([[UInt8]](repeating: [], count: 3))
        try onRanks(3) { r in
            let comm = group.ranks[r]
            var v: [Float] = [Float(r), 1, Float(r * r)]
            try v.withUnsafeMutableBufferPointer { try comm.allreduceSum($0.baseAddress!, count: 3) }
            let bytes = try comm.broadcast(r == 1 ? [7, 8, 9, 10] : [UInt8](repeating: 0, count: r), root: 1)
            sums.value[r] = v; got.value[r] = bytes
        }
        XCTAssertEqual(sums.value, Array(repeating: [3, 3, 5], count: 3))
        XCTAssertEqual(got.value, Array(repeating: [7, 8, 9, 10], count: 3), "rank 1's bytes, whatever the others held")
    }

    /// A rank that never joins: the others stop with an error naming the waiting rank, not a hang.
    func testARankThatStopsAnsweringStopsTheOthers() throws {
        let group = LocalGroup(size: 2, timeout: 0.5)
        let t0 = Date()
        var x: [Float] = [1]
        XCTAssertThrowsError(try x.withUnsafeMutableBufferPointer { try group.ranks[0].allreduceSum($0.baseAddress!, count: 1) }) { e in
            XCTAssertTrue("\(e)".contains("rank 0 waited"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5)
        // Once broken, the group stays broken for everyone.
        XCTAssertThrowsError(try x.withUnsafeMutableBufferPointer { try group.ranks[1].allreduceSum($0.baseAddress!, count: 1) })
    }

    /// Conv, ReLU, pooling, a residual add, GAP and dense, without batch norm (whose batch
    /// statistics would differ between a batch of 16 and two of 8).
    func net() throws -> Graph {
        var b = GraphBuilder()
        var x = b.input("image", [3, 12, 12])
        x = b.relu(b.conv2d(x, "conv1", out: 8, kernel: 3), "relu1")
        x = b.maxPool(x, "pool", kernel: 2, stride: 2)
        let y = b.conv2d(b.relu(b.conv2d(x, "c2", out: 8, kernel: 3), "r2"), "c3", out: 8, kernel: 3)
        x = b.relu(b.add(y, x, "res"), "relu2")
        x = b.dense(b.globalAveragePool(x, "gap"), "fc", out: 4)
        return try b.build(outputs: [x])
    }

    /// `ranks` ranks of batch 16 / ranks, each on its slice of the same 16 samples, `steps` steps of
    /// SGD with momentum, L2 and clipping; the final weights and the losses.
    func train(ranks: Int, steps: Int, overlap: Bool = true) throws -> ([Float], [Float]) {
        let g = try net()
        var rng = SplitMix64(seed: 3)
        let x = Tensor.randomNormal([16, 3, 12, 12], rng: &rng).scalars
        let labels = (0..<16).map { ($0 * 7) % 4 }
        let group = LocalGroup(size: ranks, timeout: 60)
        let weights = Box([Float]()), losses = Box([Float]())
        let per = 16 / ranks
        try onRanks(ranks) { r in
            let store = ParameterStore(graph: g, seed: UInt64(9 + r))   // different starts: rank 0's weights are sent to all
            let exec = try Executor(graph: g, batch: per, mode: .training, parameters: store)
            try exec.setInput(0, Tensor(shape: [per, 3, 12, 12], values: Array(x[(r * per * 432)..<((r + 1) * per * 432)])))
            let comm = group.ranks[r]
            for i in 0..<store.count { try comm.broadcast(store.pointer(i), count: store.infos[i].shape.count) }
            store.touch()
            let trainer = Trainer(executor: exec, optimizer: SGD(momentum: 0.9), learningRate: 0.05,
                                  regularizer: Regularizer(.l2, weight: 1e-3), clipNorm: 5)
            trainer.collective = comm
            trainer.overlap = overlap
            trainer.bucketFloats = 1000   // several buckets
            var seen: [Float] = []
            for _ in 0..<steps {
                seen.append(try trainer.step(labels: Array(labels[(r * per)..<((r + 1) * per)])))
                if ranks > 1 {
                    XCTAssertEqual(trainer.lastCommunication.bytes, 4 * (g.trainableParameterCount + 1))
                    XCTAssertLessThanOrEqual(trainer.lastCommunication.exposed, trainer.lastCommunication.seconds + 0.05)
                }
            }
            if r == 0 {
                weights.value = (0..<store.count).flatMap { store[$0].scalars }
                losses.value = seen
            }
        }
        return (weights.value, losses.value)
    }

    func testTwoRanksOfBatch8TrainLikeOneOfBatch16() throws {
        let (one, oneLoss) = try train(ranks: 1, steps: 6)
        let (two, twoLoss) = try train(ranks: 2, steps: 6)
        let (four, _) = try train(ranks: 4, steps: 6)
        let scale = one.map(abs).max()!
        let moved = zip(one, try train(ranks: 1, steps: 0).0).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(moved, 1e-2 * scale, "the steps changed the weights")
        for (name, w) in [("2 ranks", two), ("4 ranks", four)] {
            let diff = zip(one, w).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(diff, 1e-4 * scale, "\(name): max |Δw| \(diff) (weights up to \(scale), moved \(moved))")
        }
        for (a, b) in zip(oneLoss, twoLoss) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(a)), "the mean loss over ranks") }
        // The exchange after backward sums the same buckets: the same weights to the bit.
        XCTAssertEqual(try train(ranks: 2, steps: 6, overlap: false).0, two)
    }

    /// `backward(ready:)` names every trainable parameter once, when its gradient is already final;
    /// a weight two convolutions share is final only after the second of its contributions.
    func testBackwardReportsEachGradientOnceWhenFinal() throws {
        var b = GraphBuilder()
        var x = b.input("image", [3, 12, 12])
        x = b.relu(b.conv2d(x, "conv1", out: 8, kernel: 3), "relu1")
        let shared = b.parameter("shared.weight", [8, 8, 3, 3], role: .convWeight)
        let conv = Conv2D(outChannels: 8, kernel: [3, 3], stride: [1, 1], dilation: [1, 1], padding: Padding2D(1), groups: 1, hasBias: false)
        x = b.relu(b.node("sharedA", .conv2d(conv), [x, shared]), "ra")
        x = b.relu(b.node("sharedB", .conv2d(conv), [x, shared]), "rb")
        x = b.relu(b.conv2d(x, "c2", out: 8, kernel: 3), "r2")
        x = b.dense(b.globalAveragePool(x, "gap"), "fc", out: 4)
        let g = try b.build(outputs: [x])
        let store = ParameterStore(graph: g, seed: 1)
        let exec = try Executor(graph: g, batch: 4, mode: .training, parameters: store, frozen: ["c2.weight"])
        var rng = SplitMix64(seed: 2)
        try exec.setInput(0, Tensor.randomNormal([4, 3, 12, 12], rng: &rng))
        exec.forward()
        for k in 0..<16 { exec.outputGradientPointer()[k] = Float(k % 5) - 2 }
        var early: [Int: [Float]] = [:]
        exec.backward { ready in
            for i in ready {
                XCTAssertNil(early[i], "parameter \(i) reported twice")
                early[i] = Array(UnsafeBufferPointer(start: exec.parameterGradientPointer(i)!, count: g.parameters[i].shape.count))
            }
        }
        let trainable = g.parameters.indices.filter { exec.parameterGradientPointer($0) != nil }
        XCTAssertEqual(early.keys.sorted(), trainable)
        XCTAssertFalse(trainable.contains(g.parameterIndex(named: "c2.weight")!), "frozen: no gradient")
        for i in trainable {
            XCTAssertEqual(early[i]!, Array(UnsafeBufferPointer(start: exec.parameterGradientPointer(i)!, count: g.parameters[i].shape.count)), g.parameters[i].name)
        }
        // Backward reports the head first: its gradients are final long before the first layer's.
        let order = exec.gradientsReadyAfter.atStart + exec.gradientsReadyAfter.steps.flatMap { $0 }
        XCTAssertLessThan(order.firstIndex(of: g.parameterIndex(named: "fc.weight")!)!, order.firstIndex(of: g.parameterIndex(named: "conv1.weight")!)!)
    }
}
