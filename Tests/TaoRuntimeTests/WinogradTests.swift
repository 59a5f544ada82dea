import XCTest
import TaoGraph
import TaoKernels
@testable import TaoRuntime

/// Winograd convolutions (the default for 3×3 stride 1) against the reference, finite differences and
/// direct convolution. oneDNN 2.6 has fp32 Winograd kernels on AVX-512 processors only; on AVX2 ones
/// our own kernel (`WinogradConvolution`) computes the forward pass, the data gradient and the
/// weight gradient, with the same results.
final class WinogradTests: XCTestCase {
    let available = Kernels.hasWinograd
    /// Whether our own kernel takes oneDNN's place here.
    let ours = !Kernels.hasWinograd && WinogradConvolution.available

    func testOursFromSixteenTilesInTrainingAndInference() throws {
        var b = GraphBuilder()
        let y = b.conv2d(b.input("x", [16, 12, 12]), "c", out: 16, kernel: 3)
        let g = try b.build(outputs: [y])
        let store = ParameterStore(graph: g, seed: 1)
        for mode in [Mode.training, .inference] {
            XCTAssertEqual(try Executor(graph: g, batch: 1, mode: mode, parameters: store).ownWinogradConvolutions, 0, "\(mode): 9 tiles")
            XCTAssertEqual(try Executor(graph: g, batch: 2, mode: mode, parameters: store).ownWinogradConvolutions, ours ? 1 : 0, "\(mode): 18 tiles")
        }
    }

    func testWinogradConvMatchesReferenceAndFiniteDifferences() throws {
        try Harness.check(batch: 2, tolerance: .init(forward: 5e-4, gradient: 3e-3), samples: 10) { b in
            b.conv2d(b.input("x", [16, 12, 12]), "c", out: 16, kernel: 3, bias: true)
        }
        // Unpadded and asymmetric padding: the data gradient's own padding is 2 − p.
        try Harness.check(batch: 2, tolerance: .init(forward: 5e-4, gradient: 3e-3), samples: 10) { b in
            let x = b.conv2d(b.input("x", [8, 17, 11]), "valid", out: 16, kernel: 3, padding: Padding2D(0), bias: true)
            return b.conv2d(x, "skewed", out: 8, kernel: 3, padding: Padding2D(top: 2, left: 0, bottom: 0, right: 2))
        }
        var b = GraphBuilder()
        let y = b.conv2d(b.input("x", [16, 12, 12]), "c", out: 16, kernel: 3, bias: true)
        let g = try b.build(outputs: [y])
        let e = try Executor(graph: g, batch: 2, mode: .training, parameters: ParameterStore(graph: g, seed: 1), inputGradients: true)
        XCTAssertEqual(e.implementations.filter { $0.contains("wino") }.count, available ? 3 : ours ? 2 : 0,
                       "forward, backward data and weights use oneDNN's Winograd where it has it (here: \(available)), "
                       + "forward and backward data ours on AVX2 (here: \(ours)), the weights' with the bias oneDNN's: \(e.implementations)")
        // Without a bias ours computes the weight gradient too.
        var nb = GraphBuilder()
        let z = nb.conv2d(nb.input("x", [16, 12, 12]), "c", out: 16, kernel: 3)
        let h = try nb.build(outputs: [z])
        let f = try Executor(graph: h, batch: 2, mode: .training, parameters: ParameterStore(graph: h, seed: 1), inputGradients: true)
        XCTAssertEqual(f.implementations.filter { $0.contains("wino") }.count, available || ours ? 3 : 0, "\(f.implementations)")
    }

    /// Inference with our own Winograd kernel where oneDNN has none (AVX2): a conv → BN → leaky ReLU
    /// → add → ReLU chain, fused into the kernel's output transform, against the float64 reference.
    func testInferenceOnOurWinogradMatchesReference() throws {
        try Harness.check(batch: 3, training: false, tolerance: .init(forward: 2e-4)) { b in
            let x = b.input("x", [16, 10, 9])
            let y = b.activation(b.batchNorm(b.conv2d(x, "c", out: 16, kernel: 3, bias: true), "bn"), .leakyRelu(alpha: 0.1), "lr")
            return b.relu(b.add(y, x, "add"), "r")
        }
        var b = GraphBuilder()
        let y = b.conv2d(b.input("x", [16, 10, 9]), "c", out: 24, kernel: 3)
        let g = try b.build(outputs: [y])
        let e = try Executor(graph: g, batch: 2, mode: .inference, parameters: ParameterStore(graph: g, seed: 1))
        XCTAssertEqual(e.ownWinogradConvolutions, ours ? 1 : 0, "\(e.implementations)")
        // A batch of fewer than 16 tiles stays direct (the matmul's fixed cost outweighs the saving).
        let small = try Executor(graph: g, batch: 1, mode: .inference, parameters: ParameterStore(graph: g, seed: 1))
        XCTAssertEqual(small.ownWinogradConvolutions, 0)
    }

    /// Maps under 4×4 take direct convolution: Winograd's 4×4 tiles would mostly compute padding.
    /// (Ours also needs 16 tiles in the batch, hence batch 16.)
    func testSmallMapsUseDirectConvolution() throws {
        for (side, wino) in [(3, false), (4, available || ours)] {
            var b = GraphBuilder()
            let y = b.conv2d(b.input("x", [16, side, side]), "c", out: 16, kernel: 3)
            let g = try b.build(outputs: [y])
            let e = try Executor(graph: g, batch: 16, mode: .training, parameters: ParameterStore(graph: g, seed: 1))
            XCTAssertEqual(e.implementations.contains { $0.contains("wino") }, wino, "\(side)×\(side): \(e.implementations)")
        }
    }

    func testWinogradAndDirectAgreeOnAResidualStack() throws {
        var b = GraphBuilder()
        var x = b.relu(b.batchNorm(b.conv2d(b.input("x", [16, 20, 20]), "c0", out: 32, kernel: 3), "bn0"), "r0")
        for i in 1...3 { x = b.relu(b.add(b.batchNorm(b.conv2d(x, "c\(i)", out: 32, kernel: 3), "bn\(i)"), x, "add\(i)"), "r\(i)") }
        let out = b.dense(b.globalAveragePool(x, "gap"), "fc", out: 7)
        let g = try b.build(outputs: [out])
        let store = ParameterStore(graph: g, seed: 4)
        var rng = SplitMix64(seed: 5)
        let input = Tensor.randomNormal([4, 16, 20, 20], rng: &rng)
        for mode in [Mode.training, .inference] {
            let w = try Executor(graph: g, batch: 4, mode: mode, parameters: store, winograd: true)
            XCTAssertEqual(w.implementations.contains { $0.contains("wino") }, available || ours, "\(mode): \(w.implementations)")
            XCTAssertEqual(w.ownWinogradConvolutions, ours ? 4 : 0)
            let d = try Executor(graph: g, batch: 4, mode: mode, parameters: store, winograd: false)
            for e in [w, d] { try e.setInput(0, input); e.forward() }
            let scale = d.output().scalars.map(abs).max()!
            XCTAssertLessThan(w.output().maxAbsDifference(d.output()) / scale, 1e-4, "\(mode)")
            if mode == .training {
                for e in [w, d] { for i in 0..<28 { e.outputGradientPointer()[i] = Float(i % 5) - 2 }; e.backward() }
                let gw = w.parameterGradient("c1.weight")!, gd = d.parameterGradient("c1.weight")!
                XCTAssertLessThan(gw.maxAbsDifference(gd) / gd.scalars.map(abs).max()!, 1e-3)
            }
        }
    }
}
