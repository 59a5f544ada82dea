import XCTest
import TaoGraph
import TaoModels
import TaoRuntime
import TaoTensor
import TaoTestSupport

/// Plans of the same graph must compute the same values, however memory was allocated before.
final class ExecutorPlanningTests: XCTestCase {
    /// EfficientNet-B1's squeeze-excite blocks on 1×1 maps plan many short-lived values (pooling,
    /// reshape, layout conversions). The planner cached conversions by the address of their source;
    /// a source freed during planning let a new value inherit its conversions, so about one plan in
    /// ten of these sub-graphs computed from a dead value's data (errors up to 0.6 of the output's
    /// scale, different from run to run). Every plan here must match the float64 reference within 1e-3 of
    /// the output's scale (the ONNX tests' bound; fp32 rounding here is ~1e-5).
    func testRepeatedPlansOfEfficientNetB1SubgraphsMatchTheReference() throws {
        let g = try Zoo.build("efficientnet_b1", classes: 7, inputShape: [3, 32, 32])
        let s = ONNXExportTests.store(g, seed: 5)
        try ONNXExportTests.normalize(g, s, channels: 3, res: 32)
        var rng = SplitMix64(seed: 2)
        let x = Tensor.randomNormal([2, 3, 32, 32], rng: &rng)
        var worst = 0.0
        for k in [317, 340, 359, g.nodes.count - 1] {
            let sub = try Graph(inputs: [("image", g.shape(of: g.inputs[0]))], parameters: g.parameters, nodes: Array(g.nodes.prefix(k + 1)),
                                outputs: [g.nodes[k].output])
            let exact = Reference.run(sub, inputs: [RefTensor(x)], params: (0..<s.count).map { RefTensor(s[$0]) }, training: false).flatMap(\.data)
            let scale = max(exact.map(abs).max()!, 1e-6)
            for _ in 0..<12 {
                let e = try Executor(graph: sub, batch: 2, mode: .inference, parameters: s)
                try e.setInput(0, x)
                e.forward()
                let err = zip(e.output().scalars, exact).map { abs(Double($0) - $1) }.max()! / scale
                worst = max(worst, err)
                XCTAssertLessThan(err, 1e-3, "plan of the sub-graph ending at \(g.nodes[k].name)")
            }
        }
        print("efficientnet_b1 sub-graphs: worst relative error over 48 plans \(worst)")
    }
}
