import XCTest
import TaoGraph
@testable import TaoModels
import TaoRuntime

final class UNetModelTests: XCTestCase {
    /// TAO's ResNet-18 UNet (resnet_unet.py with layers.py's upsample_block_other) has the parameters
    /// and multiply-adds that shared/bench/det_bench.py counts for its PyTorch copy (unet_resnet18,
    /// 2 classes, 320×320, all_projections: 15,575,938 parameters, 19.2332 GMACs), and full-size logits.
    func testResNet18UNetMatchesTheBenchmarksNetwork() throws {
        var c = UNetModelConfig(encoder: .resnet(depth: 18), inputShape: [3, 320, 320], classes: 2)
        c.allProjections = true   // as TAO's examples and the benchmark
        let g = try UNet.build(c)
        XCTAssertEqual(g.trainableParameterCount, 15_575_938)
        XCTAssertEqual(Double(g.macsPerSample) / 1e9, 19.2332, accuracy: 0.0001)
        XCTAssertEqual(g.shape(of: g.outputs[0]).dims, [2, 320, 320])
        // The skips TAO reads: the stem's activation, block_1b, block_2b, concatenated after each upsampling.
        let concats = g.nodes.filter { $0.op.kind == "concat" }
        XCTAssertEqual(concats.map { g.shape(of: $0.output).dims }, [[384, 40, 40], [192, 80, 80], [128, 160, 160]])
    }

    /// Every encoder of TAO's table builds and gives logits of the input's size (vanilla_unet: 388²
    /// out of 572², as TAO's), and a training step reaches the first layer.
    func testEveryEncoderBuildsAndTrains() throws {
        let cases: [(UNetModelConfig.Encoder, [Int], [Int])] = [
            (.resnet(depth: 10), [3, 32, 48], [3, 32, 48]), (.resnet(depth: 34), [3, 32, 48], [3, 32, 48]), (.resnet(depth: 50), [3, 32, 32], [3, 32, 32]),
            (.vgg(depth: 16), [3, 32, 64], [3, 32, 64]), (.vgg(depth: 19), [3, 32, 32], [3, 32, 32]),
            (.vanillaDynamic, [1, 32, 32], [3, 32, 32]), (.efficientnetB0, [3, 32, 64], [3, 32, 64]),
        ]
        for (encoder, input, output) in cases {
            let g = try UNet.build(UNetModelConfig(encoder: encoder, inputShape: Shape(input), classes: 3))
            XCTAssertEqual(g.shape(of: g.outputs[0]).dims, output, "\(encoder)")
            let exec = try Executor(graph: g, batch: 2, mode: .training, parameters: ParameterStore(graph: g, seed: 1))
            var rng = SplitMix64(seed: 2)
            try exec.setInput(0, Tensor.randomNormal(Shape([2] + input), rng: &rng))
            exec.forward()
            XCTAssertTrue(exec.output().scalars.allSatisfy(\.isFinite), "\(encoder)")
            for i in 0..<40 { exec.outputGradientPointer()[i * 7] = 1 }
            exec.backward()
            XCTAssertGreaterThan(exec.parameterGradient(g.parameters[0].name)!.scalars.map(abs).max()!, 0, "\(encoder)")
        }
        let v = try UNet.build(UNetModelConfig(encoder: .vanilla, inputShape: [1, 572, 572], classes: 2))
        XCTAssertEqual(v.shape(of: v.outputs[0]).dims, [2, 388, 388])
        XCTAssertEqual(UNet.outputSize(.vanilla, height: 572, width: 572).height, 388)
        XCTAssertThrowsError(try UNet.build(UNetModelConfig(encoder: .resnet(depth: 18), inputShape: [3, 40, 64], classes: 2))) {
            XCTAssertTrue("\($0)".contains("multiples of 16"), "\($0)")
        }
    }

    /// Keras's 'same' transposed convolution at stride 2 doubles the size for TAO's kernels (2, 3, 4).
    func testTransposedSamePaddingDoubles() throws {
        for k in [2, 3, 4] {
            var b = GraphBuilder()
            let x = b.input("x", [4, 5, 7])
            let y = b.convTranspose2d(x, "t", out: 2, kernel: k, stride: 2, padding: UNet.transposedSame(kernel: k))
            XCTAssertEqual(b.shape(y).dims, [2, 10, 14], "kernel \(k)")
        }
    }
}
