import XCTest
import TaoGraph
import TaoModels
import TaoRuntime
@testable import TaoPrune

final class PrunerTests: XCTestCase {
    /// Options that keep exactly the filters with a non-zero norm.
    var exact: PruneOptions {
        var o = PruneOptions()
        o.threshold = 0.01; o.minFilters = 1; o.granularity = 1
        return o
    }

    func randomStore(_ g: Graph, seed: UInt64 = 1) -> ParameterStore {
        let s = ParameterStore(graph: g, seed: seed)
        var rng = SplitMix64(seed: seed &+ 99)
        for (i, p) in g.parameters.enumerated() where p.role != .convWeight && p.role != .denseWeight {
            // Non-trivial biases and batch-norm statistics, so that only truly dead channels are harmless.
            let v = (0..<p.shape.count).map { _ in p.role == .bnVariance ? 0.5 + rng.nextFloat() : rng.nextFloat() - 0.5 }
            s[i] = Tensor(shape: p.shape, values: v)
        }
        return s
    }

    /// Makes filters `dead` of layer `conv` produce zeros after its batch norm `bn` (if any).
    func kill(_ s: ParameterStore, _ conv: String, _ dead: [Int], bn: String? = nil) {
        let i = s.index(of: conv + ".weight")!
        var w = s[i].scalars
        let per = w.count / s.infos[i].shape[0]
        for f in dead { for k in 0..<per { w[f * per + k] = 0 } }
        s[i] = Tensor(shape: s.infos[i].shape, values: w)
        if let j = s.index(of: conv + ".bias") { var b = s[j].scalars; for f in dead { b[f] = 0 }; s[j] = Tensor(shape: s.infos[j].shape, values: b) }
        if let bn {
            for p in ["bias", "running_mean"] {
                let j = s.index(of: "\(bn).\(p)")!
                var b = s[j].scalars
                for f in dead { b[f] = 0 }
                s[j] = Tensor(shape: s.infos[j].shape, values: b)
            }
        }
    }

    func run(_ g: Graph, _ s: ParameterStore, _ x: Tensor) throws -> [Float] {
        let e = try Executor(graph: g, batch: x.shape[0], mode: .inference, parameters: s)
        try e.setInput(0, x)
        e.forward()
        return e.output().scalars
    }

    /// Prunes, checks the outputs are unchanged and returns the result.
    @discardableResult
    func pruneExactly(_ g: Graph, _ s: ParameterStore, options: PruneOptions? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> (Graph, ParameterStore, PruneReport) {
        var rng = SplitMix64(seed: 7)
        let x = Tensor.randomNormal(g.shape(of: g.inputs[0]).batched(3), rng: &rng)
        let before = try run(g, s, x)
        let (p, ps, report) = try Pruner.prune(g, s, options ?? exact)
        let after = try run(p, ps, x)
        XCTAssertLessThan(p.trainableParameterCount, g.trainableParameterCount, file: file, line: line)
        XCTAssertLessThan(p.macsPerSample, g.macsPerSample, file: file, line: line)
        let scale = before.map(abs).max()!
        for (a, b) in zip(before, after) { XCTAssertEqual(a, b, accuracy: 2e-5 * scale, file: file, line: line) }
        return (p, ps, report)
    }

    func shape(_ g: Graph, _ name: String) -> [Int] { g.parameters[g.parameterIndex(named: name)!].shape.dims }

    func testPlainChain() throws {
        var b = GraphBuilder()
        var x = b.input("x", [3, 12, 12])
        x = b.relu(b.batchNorm(b.conv2d(x, "c1", out: 12, kernel: 3), "bn1"), "r1")
        x = b.relu(b.batchNorm(b.conv2d(x, "c2", out: 10, kernel: 3, stride: 2), "bn2"), "r2")
        x = b.dense(b.flatten(x, "flat"), "fc", out: 4)
        let g = try b.build(outputs: [x])
        let s = randomStore(g)
        kill(s, "c1", [0, 3, 4, 11], bn: "bn1")
        kill(s, "c2", [1, 2], bn: "bn2")
        let (p, _, report) = try pruneExactly(g, s)
        XCTAssertEqual(shape(p, "c1.weight"), [8, 3, 3, 3])
        XCTAssertEqual(shape(p, "bn1.running_var"), [8])
        XCTAssertEqual(shape(p, "c2.weight"), [8, 8, 3, 3])
        XCTAssertEqual(shape(p, "fc.weight"), [4, 8 * 36], "flatten drops each removed channel's 6×6 features")
        XCTAssertEqual(report.layers.map(\.after), [8, 8, 4])
        XCTAssertTrue(report.pinned.contains { $0.0 == "fc" }, "the head is never pruned")
    }

    func residualGraph(projection: Bool) throws -> Graph {
        var b = GraphBuilder()
        let x = b.input("x", [3, 8, 8])
        let stem = b.relu(b.batchNorm(b.conv2d(x, "stem", out: 16, kernel: 3), "stem_bn"), "stem_r")
        var y = b.relu(b.batchNorm(b.conv2d(stem, "a", out: 16, kernel: 3), "a_bn"), "a_r")
        y = b.batchNorm(b.conv2d(y, "b", out: 16, kernel: 3), "b_bn")
        let short = projection ? b.batchNorm(b.conv2d(stem, "proj", out: 16, kernel: 1, padding: .zero), "proj_bn") : stem
        let out = b.relu(b.add(y, short, "add"), "out_r")
        let head = b.dense(b.globalAveragePool(out, "gap"), "fc", out: 5)
        return try b.build(outputs: [head])
    }

    func testResidualAddKeepsBothSidesAligned() throws {
        let g = try residualGraph(projection: false)
        let s = randomStore(g)
        kill(s, "stem", [2, 5], bn: "stem_bn")
        kill(s, "b", [2, 5, 9], bn: "b_bn")       // 9 is alive in the stem: union keeps it
        kill(s, "a", [0, 1, 2, 3], bn: "a_bn")
        let (p, _, report) = try pruneExactly(g, s)
        XCTAssertEqual(shape(p, "stem.weight")[0], 14)
        XCTAssertEqual(shape(p, "b.weight"), [14, 12, 3, 3])
        XCTAssertEqual(shape(p, "a.weight"), [12, 14, 3, 3])
        XCTAssertEqual(shape(p, "fc.weight"), [5, 14])
        let groups = Dictionary(grouping: report.layers, by: \.group)
        XCTAssertEqual(Set(groups[report.layers.first { $0.name == "stem" }!.group]!.map(\.name)), ["stem", "b"])
    }

    func testResidualAddWithProjection() throws {
        let g = try residualGraph(projection: true)
        let s = randomStore(g)
        kill(s, "stem", [0, 1, 2, 3, 4, 5, 6, 7], bn: "stem_bn")
        kill(s, "b", [15], bn: "b_bn"); kill(s, "proj", [15], bn: "proj_bn")
        let (p, _, _) = try pruneExactly(g, s)
        XCTAssertEqual(shape(p, "stem.weight")[0], 8)
        XCTAssertEqual(shape(p, "proj.weight"), [15, 8, 1, 1])
        XCTAssertEqual(shape(p, "b.weight")[0], 15)
        // Intersection keeps a channel only when every joined layer would keep it.
        let s2 = randomStore(g)
        kill(s2, "b", [15], bn: "b_bn")
        var o = exact; o.equalization = .intersection
        let (p2, _, _) = try Pruner.prune(g, s2, o)
        XCTAssertEqual(shape(p2, "proj.weight")[0], 15)
        o.equalization = .union
        XCTAssertEqual(shape(try Pruner.prune(g, s2, o).0, "proj.weight")[0], 16)
    }

    func testDepthwiseSeparableBlock() throws {
        var b = GraphBuilder()
        var x = b.input("x", [4, 10, 10])
        x = b.activation(b.batchNorm(b.conv2d(x, "expand", out: 24, kernel: 1, padding: .zero), "expand_bn"), .relu6, "r1")
        x = b.activation(b.batchNorm(b.conv2d(x, "dw", out: 24, kernel: 3, stride: 2, groups: 24), "dw_bn"), .relu6, "r2")
        x = b.batchNorm(b.conv2d(x, "project", out: 8, kernel: 1, padding: .zero), "project_bn")
        let head = b.dense(b.globalAveragePool(x, "gap"), "fc", out: 3)
        let g = try b.build(outputs: [head])
        let s = randomStore(g)
        kill(s, "expand", Array(0..<8), bn: "expand_bn")
        kill(s, "dw", Array(0..<8), bn: "dw_bn")
        let (p, _, report) = try pruneExactly(g, s)
        XCTAssertEqual(shape(p, "expand.weight"), [16, 4, 1, 1])
        XCTAssertEqual(shape(p, "dw.weight"), [16, 1, 3, 3])
        XCTAssertEqual(shape(p, "project.weight"), [8, 16, 1, 1])
        XCTAssertEqual(p.nodes.first { $0.name == "dw" }!.op, .conv2d(Conv2D(outChannels: 16, kernel: [3, 3], stride: [2, 2], padding: Padding2D(1), groups: 16)))
        XCTAssertFalse(report.layers.contains { $0.name == "dw" && $0.group != report.layers.first { $0.name == "expand" }!.group })
    }

    func testSqueezeExcite() throws {
        var b = GraphBuilder()
        let x = b.input("x", [3, 8, 8])
        let y = b.activation(b.batchNorm(b.conv2d(x, "c", out: 16, kernel: 3), "bn"), .swish, "act")
        var gate = b.node("se.reshape", .reshape([16, 1, 1]), [b.globalAveragePool(y, "se.pool")])
        gate = b.relu(b.conv2d(gate, "se.reduce", out: 4, kernel: 1, padding: .zero, bias: true), "se.r")
        gate = b.activation(b.conv2d(gate, "se.expand", out: 16, kernel: 1, padding: .zero, bias: true), .sigmoid, "se.gate")
        let z = b.mul(y, gate, "se.scale")
        let head = b.dense(b.globalAveragePool(z, "gap"), "fc", out: 3)
        let g = try b.build(outputs: [head])
        let s = randomStore(g)
        kill(s, "c", [1, 4, 7, 9], bn: "bn")
        kill(s, "se.expand", [1, 4, 7, 9])
        let (p, _, _) = try pruneExactly(g, s)
        XCTAssertEqual(shape(p, "c.weight")[0], 12)
        XCTAssertEqual(shape(p, "se.reduce.weight"), [4, 12, 1, 1])
        XCTAssertEqual(shape(p, "se.expand.weight"), [12, 4, 1, 1])
        XCTAssertEqual(shape(p, "se.expand.bias"), [12])
    }

    func testConcatAndSlice() throws {
        var b = GraphBuilder()
        let x = b.input("x", [3, 8, 8])
        let a = b.relu(b.conv2d(x, "a", out: 8, kernel: 3, bias: true), "ra")
        let c = b.relu(b.conv2d(x, "c", out: 16, kernel: 3, bias: true), "rc")
        let half = b.node("split", .slice(Slice(axis: 1, start: 8, end: 16)), [c])
        let cat = b.concat([a, c, half], "cat")      // 8 + 16 + 8 channels
        let y = b.relu(b.conv2d(cat, "mix", out: 8, kernel: 1, padding: .zero), "rm")
        let head = b.dense(b.globalAveragePool(y, "gap"), "fc", out: 2)
        let g = try b.build(outputs: [head])
        let s = randomStore(g)
        kill(s, "a", [0, 7])
        kill(s, "c", [2, 3, 10, 11])
        let (p, _, _) = try pruneExactly(g, s)
        XCTAssertEqual(shape(p, "mix.weight"), [8, 6 + 12 + 6, 1, 1])
        XCTAssertEqual(p.nodes.first { $0.name == "split" }!.op, .slice(Slice(axis: 1, start: 6, end: 12)))
    }

    func testWholeBackbonesPruneAndRun() throws {
        for name in ["resnet18", "mobilenet_v2", "efficientnet_b0", "cspdarknet_tiny", "googlenet", "vgg16"] {
            let g = try Zoo.build(name, classes: 10, inputShape: [3, 32, 32])
            let s = ParameterStore(graph: g, seed: 3)
            // Filter f scaled by (f mod 4 + 1)/4: scores near 0.25, 0.5, 0.75 and 1.
            for (i, p) in g.parameters.enumerated() where p.role == .convWeight {
                let per = p.shape.count / p.shape[0]
                s[i] = Tensor(shape: p.shape, values: s[i].scalars.enumerated().map { $1 * Float($0 / per % 4 + 1) / 4 })
            }
            var o = PruneOptions(); o.threshold = 0.6
            let (p, ps, report) = try Pruner.prune(g, s, o)
            XCTAssertLessThan(report.parametersAfter, report.parametersBefore, name)
            XCTAssertEqual(report.parametersAfter, p.trainableParameterCount, name)
            var rng = SplitMix64(seed: 1)
            let out = try run(p, ps, Tensor.randomNormal([2, 3, 32, 32], rng: &rng))
            XCTAssertEqual(out.count, 20, name)
            XCTAssertTrue(out.allSatisfy(\.isFinite), name)
            // Granularity and the minimum hold for every pruned layer.
            for l in report.layers where l.after < l.before { XCTAssertTrue(l.after % 8 == 0 && l.after >= 16, "\(name) \(l.name): \(l.after)") }
        }
    }

    func testBadOptionsAreClearErrors() throws {
        let g = try residualGraph(projection: false)
        let s = randomStore(g)
        var o = PruneOptions(); o.threshold = 1.5
        XCTAssertThrowsError(try Pruner.prune(g, s, o)) { XCTAssertTrue("\($0)".contains("would remove everything"), "\($0)") }
        o = PruneOptions(); o.excludedLayers = ["layer9.conv"]
        XCTAssertThrowsError(try Pruner.prune(g, s, o)) { XCTAssertTrue("\($0)".contains("excluded layer 'layer9.conv' does not exist"), "\($0)") }
        o = exact; o.minFilters = 0; o.threshold = 0.01
        kill(s, "a", Array(0..<16), bn: "a_bn")
        XCTAssertThrowsError(try Pruner.prune(g, s, o)) { XCTAssertTrue("\($0)".contains("would remove every filter of 'a'"), "\($0)") }
        // Excluding a layer keeps its whole group.
        o = exact; o.excludedLayers = ["a"]
        XCTAssertEqual(shape(try Pruner.prune(g, s, o).0, "a.weight")[0], 16)
    }
}
