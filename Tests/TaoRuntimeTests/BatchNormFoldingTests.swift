import XCTest
import TaoGraph
import TaoModels
@testable import TaoRuntime

final class BatchNormFoldingTests: XCTestCase {
    /// Folding removes every batch norm that follows a convolution and changes no output.
    func testFoldedGraphsComputeTheSame() throws {
        for name in ["resnet18", "mobilenet_v2", "googlenet"] {
            let g = try Zoo.build(name, classes: 5, inputShape: [3, 32, 32])
            let s = ParameterStore(graph: g, seed: 4)
            var rng = SplitMix64(seed: 5)
            for (i, p) in g.parameters.enumerated() where [.bnScale, .bnShift, .bnMean, .bnVariance].contains(p.role) {
                let lo: Float = p.role == .bnVariance ? 0.5 : -0.5
                s[i] = Tensor(shape: p.shape, values: (0..<p.shape.count).map { _ in lo + rng.nextFloat() })
            }
            let f = try BatchNormFolding.fold(g, s)
            let bns = { (g: Graph) in g.nodes.filter { if case .batchNorm = $0.op { return true }; return false }.count }
            XCTAssertGreaterThan(bns(g), 0, name)
            XCTAssertEqual(bns(f.graph), 0, "\(name): every batch norm follows a convolution")
            XCTAssertEqual(f.folded.count, bns(g), name)
            let x = Tensor.randomNormal([4, 3, 32, 32], rng: &rng)
            func run(_ g: Graph, _ s: ParameterStore) throws -> [Float] {
                let e = try Executor(graph: g, batch: 4, mode: .inference, parameters: s, fuse: false)
                try e.setInput(0, x)
                e.forward()
                return e.output().scalars
            }
            let (a, b) = (try run(g, s), try run(f.graph, f.parameters))
            let scale = a.map(abs).max()!
            let diff = zip(a, b).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-5 * max(1, scale), "\(name): folded differs by \(diff) at logits up to \(scale)")
        }
    }
}
