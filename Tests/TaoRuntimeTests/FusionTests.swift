import XCTest
import TaoGraph
@testable import TaoRuntime
import TaoModels
import TaoKernels

/// Fused plans (conv+BN+activation+add at inference, BN+ReLU in training) against the reference
/// and against the unfused plan.
final class FusionTests: XCTestCase {
    func basicBlock(_ b: inout GraphBuilder, _ x: ValueID, _ name: String, act: Activation = .relu) -> ValueID {
        var y = b.activation(b.batchNorm(b.conv2d(x, "\(name).c1", out: 8, kernel: 3), "\(name).bn1"), act, "\(name).a1")
        y = b.batchNorm(b.conv2d(y, "\(name).c2", out: 8, kernel: 3), "\(name).bn2")
        return b.activation(b.add(y, x, "\(name).add"), act, "\(name).a2")
    }

    func testFusedResidualBlockMatchesReferenceAtInference() throws {
        try Harness.check(batch: 2, training: false) { b in
            let x = b.relu(b.conv2d(b.input("x", [3, 9, 9]), "stem", out: 8, kernel: 3), "stem.relu")
            return basicBlock(&b, basicBlock(&b, x, "l1"), "l2")
        }
    }

    func testFusedDepthwiseRelu6AndBiasAtInference() throws {
        try Harness.check(batch: 3, training: false) { b in
            let x = b.input("x", [8, 7, 7])
            let d = b.activation(b.batchNorm(b.conv2d(x, "dw", out: 8, kernel: 3, stride: 2, groups: 8, bias: true), "bn"), .relu6, "r6")
            return b.activation(b.conv2d(d, "pw", out: 4, kernel: 1, bias: true), .swish, "sw")
        }
    }

    func testAddendStillNeededLaterIsNotOverwritten() throws {
        try Harness.check(batch: 2, training: false) { b in
            let x = b.conv2d(b.input("x", [4, 5, 5]), "stem", out: 4, kernel: 3)
            let y = b.add(b.conv2d(x, "c", out: 4, kernel: 3), x, "add")   // x is read again below
            return b.add(y, b.activation(x, .sigmoid, "later"), "add2")
        }
    }

    /// Transposed convolutions at inference: as a convolution and a pixel shuffle (kernel a multiple
    /// of the stride: 4×4 and 2×2 at stride 2 as UNet's, 6×6 at stride 3; 8 output channels in
    /// nChw8c, 3 plain; odd and even maps), or oneDNN's deconvolution (3×3 at stride 2, stride 1),
    /// each alone and with its batch norm and activation fused, against the float64 reference.
    func testTransposedConvolutionTailsAtInference() throws {
        let cases: [(k: Int, s: Int, pad: Padding2D, outPad: Int, out: Int)] = [
            (4, 2, Padding2D(1), 0, 8), (4, 2, Padding2D(1), 0, 3), (2, 2, .zero, 0, 8), (2, 2, .zero, 0, 3),
            (6, 3, Padding2D(top: 1, left: 2, bottom: 2, right: 1), 0, 8), (4, 2, .zero, 0, 8),
            (3, 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1), 0, 8), (3, 1, Padding2D(1), 0, 3),
        ]
        for c in cases {
            for tail in [false, true] {
                try Harness.check(batch: 2, training: false) { b in
                    let x = b.input("x", [5, 5, 6])
                    let t = b.convTranspose2d(x, "t", out: c.out, kernel: c.k, stride: c.s, padding: c.pad, outputPadding: c.outPad, bias: !tail)
                    return tail ? b.relu(b.batchNorm(t, "bn"), "r") : b.activation(t, .sigmoid, "sig")
                }
            }
        }
        let sub = SubPixelDeconvolution(input: [2, 5, 5, 6], output: [2, 8, 10, 12], kernel: [4, 4], stride: [2, 2], dilation: [1, 1], padTop: 1, padLeft: 1)
        XCTAssertEqual(sub?.convWeightDims, [32, 5, 2, 2])
        XCTAssertEqual(sub?.convOutputDims, [2, 32, 6, 7])
        XCTAssertNil(SubPixelDeconvolution(input: [2, 5, 5, 6], output: [2, 8, 11, 13], kernel: [3, 3], stride: [2, 2], dilation: [1, 1], padTop: 0, padLeft: 0))
    }

    func testBatchNormReLUFusionGradientsInTraining() throws {
        try Harness.check(batch: 2, samples: 8) { b in
            let x = b.input("x", [3, 5, 5])
            return basicBlock(&b, b.relu(b.batchNorm(b.conv2d(x, "stem", out: 8, kernel: 3), "bn0"), "r0"), "l1")
        }
    }

    /// The fused and the unfused inference plan of `g` run on `input`; their outputs agree within 1e-4.
    func fusedAndPlain(_ g: Graph, _ store: ParameterStore, _ input: Tensor, file: StaticString = #filePath, line: UInt = #line) throws -> (fused: Executor, plain: Executor) {
        let fused = try Executor(graph: g, batch: input.shape[0], mode: .inference, parameters: store)
        let plain = try Executor(graph: g, batch: input.shape[0], mode: .inference, parameters: store, fuse: false)
        for e in [fused, plain] { try e.setInput(0, input); e.forward() }
        XCTAssertLessThan(fused.output().maxAbsDifference(plain.output()), 1e-4, file: file, line: line)
        return (fused, plain)
    }

    func testFusedPlanHasFewerStepsAndEqualsUnfused() throws {
        var b = GraphBuilder()
        var x = b.relu(b.batchNorm(b.conv2d(b.input("x", [3, 16, 16]), "stem", out: 8, kernel: 3), "bn"), "r")
        x = basicBlock(&b, basicBlock(&b, x, "l1"), "l2")
        let logits = b.dense(b.globalAveragePool(x, "gap"), "fc", out: 5)
        let g = try b.build(outputs: [logits])
        let store = ParameterStore(graph: g, seed: 2)
        var rng = SplitMix64(seed: 3)
        for (i, p) in g.parameters.enumerated() where p.role == .bnMean || p.role == .bnVariance || p.role == .bnScale {
            store[i] = Tensor.randomUniform(p.shape, 0.5, 1.5, rng: &rng)
        }
        let (fused, plain) = try fusedAndPlain(g, store, Tensor.randomNormal([4, 3, 16, 16], rng: &rng))
        XCTAssertLessThan(fused.stepCounts.forward, plain.stepCounts.forward - 10, "\(fused.stepCounts) vs \(plain.stepCounts)")
        // Changing a parameter refolds the batch norms on the next forward.
        store[store.index(of: "l2.bn2.weight")!] = Tensor(repeating: 2, shape: [8])
        for e in [fused, plain] { e.forward() }
        XCTAssertLessThan(fused.output().maxAbsDifference(plain.output()), 1e-4)
    }
}

extension FusionTests {
    func testResidualOfTheConvolutionsOwnInputIsNotComputedInPlace() throws {
        try Harness.check(batch: 2, training: false) { b in
            let x = b.relu(b.input("x", [4, 6, 6]), "r")
            return b.relu(b.add(b.conv2d(x, "c", out: 4, kernel: 3), x, "add"), "r2")   // conv(x) + x, x read by the conv itself
        }
    }
}

extension FusionTests {
    /// Fused plans with Winograd-sized convolutions (≥ 16 channels, 3×3 stride 1) equal the unfused plan.
    func testFusedWinogradResidualNetworkEqualsUnfused() throws {
        var b = GraphBuilder()
        var x = b.relu(b.batchNorm(b.conv2d(b.input("x", [1, 14, 14]), "stem", out: 32, kernel: 3), "bn"), "r")
        for i in 0..<2 {
            var y = b.relu(b.batchNorm(b.conv2d(x, "b\(i).c1", out: 32, kernel: 3), "b\(i).bn1"), "b\(i).r1")
            y = b.batchNorm(b.conv2d(y, "b\(i).c2", out: 32, kernel: 3), "b\(i).bn2")
            x = b.relu(b.add(y, x, "b\(i).add"), "b\(i).r2")
        }
        let logits = b.dense(b.globalAveragePool(x, "gap"), "fc", out: 5)
        let g = try b.build(outputs: [logits])
        let store = ParameterStore(graph: g, seed: 2)
        var rng = SplitMix64(seed: 3)
        for (i, p) in g.parameters.enumerated() where p.role == .bnMean || p.role == .bnVariance || p.role == .bnScale || p.role == .bnShift {
            store[i] = Tensor.randomUniform(p.shape, 0.5, 1.5, rng: &rng)
        }
        let input = Tensor.randomNormal([8, 1, 14, 14], rng: &rng)
        let plain = try Executor(graph: g, batch: 8, mode: .inference, parameters: store, fuse: false, winograd: false)
        try plain.setInput(0, input); plain.forward()
        let scale = plain.output().scalars.map(abs).max()!
        for wino in [false, true] {
            let fused = try Executor(graph: g, batch: 8, mode: .inference, parameters: store, winograd: wino)
            try fused.setInput(0, input); fused.forward()
            XCTAssertLessThan(fused.output().maxAbsDifference(plain.output()) / scale, 1e-4, "winograd \(wino)")
        }
    }
}

extension FusionTests {
    /// Each inference rewrite on its own, by the primitives it removes: batch norm folded into the
    /// convolution, an activation as its post-op, a residual add (and the activation after it) as a
    /// sum post-op; the outputs stay those of the unfused plan.
    func testEachFusionRuleRemovesItsPrimitives() throws {
        func kinds(_ build: (inout GraphBuilder, ValueID) -> ValueID) throws -> (fused: [String: Int], plain: [String: Int]) {
            var b = GraphBuilder()
            let x = b.input("x", [8, 6, 6])
            let out = build(&b, x)
            let g = try b.build(outputs: [out])
            let store = ParameterStore(graph: g, seed: 1)
            var rng = SplitMix64(seed: 2)
            for (i, p) in g.parameters.enumerated() where p.role == .bnMean || p.role == .bnVariance {
                store[i] = Tensor.randomUniform(p.shape, 0.5, 1.5, rng: &rng)
            }
            let (fused, plain) = try fusedAndPlain(g, store, Tensor.randomNormal([2, 8, 6, 6], rng: &rng))
            return (fused.forwardKinds, plain.forwardKinds)
        }
        let bn = try kinds { b, x in b.batchNorm(b.conv2d(x, "c", out: 8, kernel: 3), "bn") }
        XCTAssertEqual(bn.plain["batch_normalization"], 1)
        XCTAssertNil(bn.fused["batch_normalization"], "\(bn.fused)")
        XCTAssertEqual(bn.fused["convolution"], 1)

        let act = try kinds { b, x in b.activation(b.batchNorm(b.conv2d(x, "c", out: 8, kernel: 3), "bn"), .relu6, "r6") }
        XCTAssertEqual(act.plain["eltwise"], 1)
        XCTAssertNil(act.fused["eltwise"], "\(act.fused)")

        let residual = try kinds { b, x in b.relu(b.add(b.batchNorm(b.conv2d(x, "c", out: 8, kernel: 3), "bn"), x, "add"), "r") }
        XCTAssertEqual(residual.plain["binary"], 1)
        XCTAssertEqual(residual.plain["eltwise"], 1)
        XCTAssertNil(residual.fused["binary"], "\(residual.fused)")
        XCTAssertNil(residual.fused["eltwise"], "\(residual.fused)")
        XCTAssertEqual(residual.fused["convolution"], 1)
    }

    /// Two outputs from one trunk (DetectNet_v2's shape: a sigmoid map and a linear map): values and
    /// gradients of a loss over both against the Double reference.
    func testTwoHeadsOnOneTrunkGradientsMatchFiniteDifferences() throws {
        try Harness.checkOutputs(batch: 2) { b in
            let x = b.input("x", [3, 6, 6])
            let t = b.activation(b.batchNorm(b.conv2d(x, "trunk", out: 4, kernel: 3), "trunk_bn"), .relu, "trunk_relu")
            let cov = b.activation(b.conv2d(t, "output_cov", out: 2, kernel: 1, padding: .zero, bias: true), .sigmoid, "output_cov.sigmoid")
            let bbox = b.conv2d(t, "output_bbox", out: 8, kernel: 1, padding: .zero, bias: true)
            return [cov, bbox]
        }
    }

    /// DetectNet_v2 (ResNet-10 trunk) planned for inference, with every fusion: both outputs equal the reference.
    func testDetectNetV2FusedInferenceMatchesReference() throws {
        try Harness.checkOutputs(batch: 1, training: false, tolerance: .init(forward: 1e-3)) { b in
            let cfg = ResNetConfig(depth: 10, classes: 1, inputShape: [3, 32, 48], stemMaxPool: false)
            let top = try! ResNet.detectionBackbone(&b, b.input("image", cfg.inputShape), cfg).last!.value
            let cov = b.activation(b.conv2d(top, "output_cov", out: 2, kernel: 1, padding: .zero, bias: true), .sigmoid, "output_cov.sigmoid")
            return [cov, b.conv2d(top, "output_bbox", out: 8, kernel: 1, padding: .zero, bias: true)]
        }
    }
}
