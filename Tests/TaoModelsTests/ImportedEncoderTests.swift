import XCTest
import TaoGraph
@testable import TaoModels
import TaoRuntime

/// A backbone cut from another model by its shapes alone: the stride walk stops where a neck
/// begins, the cut keeps only what the maps need, and the UNet built on it computes the same maps.
final class ImportedEncoderTests: XCTestCase {
    /// A small detector in the file order an exporter writes: three stride-2 stages (a
    /// squeeze-and-excitation gate on the second), then an FPN neck — a lateral 1×1 convolution on
    /// the stride-4 map, one on the stride-8 map, the deeper one upsampled and added — and a head.
    func detector(height: Int = 32, width: Int = 48, neck: Bool = true) throws -> (Graph, [String], ParameterStore) {
        var b = GraphBuilder()
        let x = b.input("images", [3, height, width])
        let c1 = b.relu(b.conv2d(x, "stage1", out: 8, kernel: 3, stride: 2, bias: true), "stage1.relu")
        var c2 = b.relu(b.conv2d(c1, "stage2", out: 12, kernel: 3, stride: 2, bias: true), "stage2.relu")
        let gate = b.activation(b.conv2d(b.node("se.reshape", .reshape([12, 1, 1]), [b.globalAveragePool(c2, "se.pool")]), "se.fc", out: 12, kernel: 1, bias: true), .sigmoid, "se.gate")
        c2 = b.mul(c2, gate, "se.scale")
        let c3 = b.relu(b.conv2d(c2, "stage3", out: 16, kernel: 3, stride: 2, bias: true), "stage3.relu")
        guard neck else {
            let order = b.nodeNames, g = try b.build(outputs: [c3])
            return (g, order, ParameterStore(graph: g, seed: 7))
        }
        let l2 = b.conv2d(c2, "neck.lateral4", out: 8, kernel: 1, bias: true)
        let l3 = b.conv2d(c3, "neck.lateral8", out: 8, kernel: 1, bias: true)
        let up = b.node("neck.up", .upsample(Upsample(.nearest, scale: [2, 2])), [l3])
        let head = b.conv2d(b.add(l2, up, "neck.sum"), "head", out: 1, kernel: 3, bias: true)
        let order = b.nodeNames
        let g = try b.build(outputs: [head])
        return (g, order, ParameterStore(graph: g, seed: 7))
    }

    func testFindsTheBackbonesMapsAndStopsAtTheNeck() throws {
        let (g, order, _) = try detector()
        let e = try ImportedEncoder(graph: g, order: order, source: "detector.onnx")
        let names = e.features.map { f in g.nodes.first { $0.output == f.value }!.name }
        XCTAssertEqual(e.features.map(\.stride), [2, 4, 8])
        XCTAssertEqual(names, ["stage1.relu", "se.scale", "stage3.relu"], e.summary)
        XCTAssertEqual(e.deepestStride, 8)

        // The UNet on it holds the backbone (with the gate) and none of the neck or head.
        let u = try UNet.build(UNetModelConfig(encoder: .imported(e), inputShape: [3, 32, 48], classes: 3))
        let kept = Set(u.nodes.map(\.name))
        XCTAssertTrue(["stage1", "stage2", "se.fc", "se.scale", "stage3"].allSatisfy(kept.contains))
        XCTAssertFalse(kept.contains { $0.hasPrefix("neck") } || kept.contains("head.bias"))
        XCTAssertFalse(u.parameters.contains { $0.name.hasPrefix("neck") || $0.name == "head.weight" && $0.shape[0] == 1 })
        XCTAssertEqual(u.shape(of: u.outputs[0]).dims, [3, 32, 48])
        XCTAssertEqual(u.nodes.filter { $0.op.kind == "concat" }.map { u.shape(of: $0.output)[0] }, [64 + 12, 64 + 8], "the stride-4 and stride-2 maps are the skips")
    }

    /// The cut computes what the whole model computes at the maps: the stride-8 map of the UNet
    /// (the imported weights copied by name) equals the detector's own, to the bit.
    func testTheCutComputesTheModelsMaps() throws {
        let (g, order, store) = try detector()
        let e = try ImportedEncoder(graph: g, order: order, source: "detector.onnx")
        var b = GraphBuilder()
        let image = b.input("image", [3, 32, 48])
        let maps = b.append(g, inputs: [image], outputs: e.features.map(\.value))
        let cut = try b.build(outputs: maps)
        let cutStore = ParameterStore(graph: cut, seed: 1)
        for (i, p) in cut.parameters.enumerated() { cutStore[i] = store[g.parameterIndex(named: p.name)!] }
        var whole = g
        whole = try Graph(inputs: [("images", [3, 32, 48])], parameters: g.parameters, nodes: g.nodes, outputs: e.features.map(\.value))
        let input = (0..<(3 * 32 * 48)).map { Float(sin(Double($0) * 0.37)) }
        let a = try Executor(graph: whole, batch: 1, mode: .inference, parameters: store)
        let c = try Executor(graph: cut, batch: 1, mode: .inference, parameters: cutStore)
        for ex in [a, c] { input.withUnsafeBufferPointer { ex.inputPointer(0).update(from: $0.baseAddress!, count: $0.count) }; ex.forward() }
        for k in 0..<3 {
            let n = g.shape(of: e.features[k].value).count
            XCTAssertEqual(Array(UnsafeBufferPointer(start: a.outputPointer(k), count: n)), Array(UnsafeBufferPointer(start: c.outputPointer(k), count: n)))
        }
    }

    /// An input the backbone cannot halve evenly is named with the size that works.
    func testAnInputThatIsNoMultipleOfTheStridesIsAnError() throws {
        let (g, order, _) = try detector(height: 36, width: 36, neck: false)   // 18, 9, then 5 at stride 8: not a fraction of 36
        XCTAssertThrowsError(try ImportedEncoder(graph: g, order: order, source: "detector.onnx")) { error in
            let m = "\(error)"
            XCTAssertTrue(m.contains("detector.onnx") && m.contains("'stage3'") && m.contains("multiples of 8"), m)
        }
    }
}
