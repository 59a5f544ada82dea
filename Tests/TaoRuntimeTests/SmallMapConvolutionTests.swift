import XCTest
import TaoGraph
import TaoKernels
@testable import TaoRuntime

/// Training convolutions on maps of at most 4 pixels, planned as one matrix product
/// (`SmallMapConvolution`): outputs against the float64 reference, input and weight gradients
/// against finite differences.
final class SmallMapConvolutionTests: XCTestCase {
    func testMatchesReferenceAndFiniteDifferences() throws {
        // 2×2 with padding 1 (every input pixel reached by every output pixel), 'same' stride 2
        // to 1×1, a 1×1 map (the centre tap alone), a 2×1 map, and a 1×3 map whose corner taps
        // never meet the far pixels (entries of W' that stay zero).
        let cases: [(Shape, Int, Padding2D)] = [([8, 2, 2], 1, Padding2D(1)), ([8, 2, 2], 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
                                                ([16, 1, 1], 1, Padding2D(1)), ([8, 2, 1], 1, Padding2D(1)), ([8, 1, 3], 1, Padding2D(1))]
        for (shape, stride, pad) in cases {
            func build(_ b: inout GraphBuilder) -> ValueID {
                let x = b.conv2d(b.input("x", shape), "a", out: 16, kernel: 3, stride: stride, padding: pad)
                return b.conv2d(x, "b", out: 8, kernel: 3, padding: Padding2D(1))
            }
            try Harness.check(batch: 3, samples: 20, build)
            var b = GraphBuilder()
            let out = build(&b)
            let g = try b.build(outputs: [out])
            let e = try Executor(graph: g, batch: 3, mode: .training, parameters: ParameterStore(graph: g, seed: 1), inputGradients: true)
            XCTAssertEqual(e.smallMapConvolutions, 2, "\(shape) stride \(stride)")
        }
    }

    /// Not for 1×1 kernels, biases, larger maps or inference.
    func testOnlyWhereItApplies() throws {
        var b = GraphBuilder()
        let x = b.input("x", [8, 2, 2])
        let y = b.conv2d(b.conv2d(b.conv2d(x, "pointwise", out: 8, kernel: 1, padding: .zero), "biased", out: 8, kernel: 3, bias: true),
                         "plain", out: 8, kernel: 3)
        let big = b.conv2d(b.input("z", [8, 3, 2]), "big", out: 8, kernel: 3)
        let g = try b.build(outputs: [y, big])
        let store = ParameterStore(graph: g, seed: 1)
        XCTAssertEqual(try Executor(graph: g, batch: 2, mode: .training, parameters: store).smallMapConvolutions, 1)
        XCTAssertEqual(try Executor(graph: g, batch: 2, mode: .inference, parameters: store).smallMapConvolutions, 0)
    }
}
