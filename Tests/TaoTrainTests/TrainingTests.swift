import XCTest
import TaoGraph
import TaoRuntime
import TaoTrain

final class TrainingTests: XCTestCase {
    /// A small CNN with every kind of layer the zoo uses: conv, BN, ReLU, pooling, residual add, GAP, dense.
    func smallNet(classes: Int) throws -> Graph {
        var b = GraphBuilder()
        var x = b.input("image", [3, 16, 16])
        x = b.relu(b.batchNorm(b.conv2d(x, "conv1", out: 16, kernel: 3), "bn1"), "relu1")
        x = b.maxPool(x, "pool", kernel: 2, stride: 2)
        let y = b.batchNorm(b.conv2d(b.relu(b.batchNorm(b.conv2d(x, "c2", out: 16, kernel: 3), "bn2"), "r2"), "c3", out: 16, kernel: 3), "bn3")
        x = b.relu(b.add(y, x, "res"), "relu2")
        x = b.dense(b.globalAveragePool(x, "gap"), "fc", out: classes)
        return try b.build(outputs: [x])
    }

    func fixedBatch(_ n: Int, classes: Int) -> (Tensor, [Int]) {
        var rng = SplitMix64(seed: 11)
        return (Tensor.randomNormal([n, 3, 16, 16], rng: &rng), (0..<n).map { $0 % classes })
    }

    func train(steps: Int, seed: UInt64, optimizer: any Optimizer, lr: Float, frozen: Set<String> = []) throws -> ([Float], ParameterStore) {
        let g = try smallNet(classes: 4)
        let store = ParameterStore(graph: g, seed: seed)
        let exec = try Executor(graph: g, batch: 8, mode: .training, parameters: store, frozen: frozen)
        let (x, labels) = fixedBatch(8, classes: 4)
        try exec.setInput(0, x)
        let trainer = Trainer(executor: exec, optimizer: optimizer, learningRate: lr)
        return ((0..<steps).map { _ in try! trainer.step(labels: labels) }, store)
    }

    func testSmallNetworkOverfitsAFixedBatch() throws {
        let (losses, _) = try train(steps: 150, seed: 5, optimizer: SGD(momentum: 0.9), lr: 0.05)
        XCTAssertGreaterThan(losses[0], 1.0)
        XCTAssertLessThan(losses.last!, 0.02, "loss curve: \(losses.enumerated().filter { $0.offset % 25 == 0 }.map(\.element))")
    }

    func testAdamAlsoOverfits() throws {
        let (losses, _) = try train(steps: 150, seed: 5, optimizer: Adam(), lr: 0.01)
        XCTAssertLessThan(losses.last!, 0.02)
    }

    func testSameSeedGivesTheSameLossCurve() throws {
        let a = try train(steps: 20, seed: 9, optimizer: SGD(momentum: 0.9), lr: 0.05).0
        let b = try train(steps: 20, seed: 9, optimizer: SGD(momentum: 0.9), lr: 0.05).0
        let c = try train(steps: 20, seed: 10, optimizer: SGD(momentum: 0.9), lr: 0.05).0
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testFrozenParametersDoNotChange() throws {
        let g = try smallNet(classes: 4)
        let before = ParameterStore(graph: g, seed: 5)
        let frozen: Set<String> = ["conv1.weight", "bn1.weight", "bn1.bias"]
        let (_, after) = try train(steps: 5, seed: 5, optimizer: SGD(momentum: 0.9), lr: 0.05, frozen: frozen)
        for name in frozen { XCTAssertEqual(after[name]!.scalars, before[name]!.scalars, name) }
        XCTAssertNotEqual(after["c2.weight"]!.scalars, before["c2.weight"]!.scalars)
    }

    func testFrozenBatchNormKeepsRunningStatistics() throws {
        let g = try smallNet(classes: 4)
        let store = ParameterStore(graph: g, seed: 5)
        let exec = try Executor(graph: g, batch: 8, mode: .training, parameters: store, frozenBatchNorm: ["bn1"])
        try exec.setInput(0, fixedBatch(8, classes: 4).0)
        exec.forward()
        XCTAssertEqual(store["bn1.running_mean"]!.scalars, [Float](repeating: 0, count: 16))
        XCTAssertNotEqual(store["bn2.running_mean"]!.scalars, [Float](repeating: 0, count: 16))
    }

    func testGradientClippingBoundsTheGlobalNorm() throws {
        let g = try smallNet(classes: 4)
        let store = ParameterStore(graph: g, seed: 5)
        let exec = try Executor(graph: g, batch: 8, mode: .training, parameters: store)
        try exec.setInput(0, fixedBatch(8, classes: 4).0)
        let trainer = Trainer(executor: exec, optimizer: SGD(), learningRate: 0, clipNorm: 0.01)
        try trainer.step(labels: [0, 1, 2, 3, 0, 1, 2, 3])
        var sq: Double = 0
        for (i, p) in g.parameters.enumerated() {
            guard let gp = exec.parameterGradientPointer(i) else { continue }
            for k in 0..<p.shape.count { sq += Double(gp[k] * gp[k]) }
        }
        XCTAssertEqual(sq.squareRoot(), 0.01, accuracy: 1e-5)
    }
}
