import XCTest
import TaoGraph
@testable import TaoRuntime

/// Every op against the reference (values) and finite differences (gradients), over odd shapes.
final class OpTests: XCTestCase {
    func testConv3x3Padded() throws {
        try Harness.check(batch: 2) { b in b.conv2d(b.input("x", [3, 7, 7]), "c", out: 5, kernel: 3) }
    }
    func testConvStride2OddSizeWithBiasGradientMatchesFiniteDifference() throws {
        try Harness.check(batch: 3) { b in b.conv2d(b.input("x", [4, 9, 11]), "c", out: 6, kernel: 3, stride: 2, bias: true) }
    }
    func testConvAsymmetricPaddingAndDilation() throws {
        try Harness.check(batch: 1) { b in
            b.node("c", .conv2d(Conv2D(outChannels: 3, kernel: [3, 2], stride: [1, 2], dilation: [2, 1],
                                       padding: Padding2D(top: 0, left: 1, bottom: 2, right: 0))),
                   [b.input("x", [2, 8, 7]), b.parameter("c.weight", [3, 2, 3, 2], role: .convWeight)])
        }
    }
    func testGroupedConv() throws {
        try Harness.check(batch: 2) { b in b.conv2d(b.input("x", [6, 6, 6]), "c", out: 9, kernel: 3, groups: 3) }
    }
    func testDepthwiseConvStride2() throws {
        try Harness.check(batch: 2) { b in b.conv2d(b.input("x", [8, 9, 9]), "c", out: 8, kernel: 3, stride: 2, groups: 8) }
    }
    /// Depthwise convolutions on 1×1 and 2×2 maps, where oneDNN has no JIT backward-weights kernel
    /// and the runtime computes weight and bias gradients itself.
    func testDepthwiseConvOnTinyMaps() throws {
        try Harness.check(batch: 3) { b in b.conv2d(b.input("x", [16, 2, 2]), "c", out: 16, kernel: 3, groups: 16, bias: true) }
        try Harness.check(batch: 2) { b in b.conv2d(b.input("x", [16, 1, 1]), "c", out: 16, kernel: 3, groups: 16) }
        try Harness.check(batch: 2) { b in b.conv2d(b.input("x", [16, 3, 3]), "c", out: 16, kernel: 3, stride: 2, groups: 16, bias: true) }
        var b = GraphBuilder()
        let y = b.conv2d(b.input("x", [32, 2, 2]), "c", out: 32, kernel: 3, groups: 32)
        let g = try b.build(outputs: [y])
        let e = try Executor(graph: g, batch: 4, mode: .training, parameters: ParameterStore(graph: g, seed: 1))
        XCTAssertFalse(e.implementations.contains { $0.contains("gemm") }, "\(e.implementations)")
    }
    func testPointwiseConvBatch1() throws {
        try Harness.check(batch: 1) { b in b.conv2d(b.input("x", [16, 5, 5]), "c", out: 24, kernel: 1) }
    }
    func testConvTranspose() throws {
        try Harness.check(batch: 2) { b in b.convTranspose2d(b.input("x", [3, 4, 5]), "t", out: 4, kernel: 3, stride: 2, padding: Padding2D(1), outputPadding: 1, bias: true) }
    }
    /// UNet's decoders: Keras's 'same' 4×4 and 2×2 transposed convolutions at stride 2 (padding 1 / 0),
    /// concatenated with a skip, then a batch norm over the joined channels.
    func testUNetDecoderBlock() throws {
        for (k, pad) in [(4, Padding2D(1)), (2, Padding2D.zero), (3, Padding2D(top: 0, left: 0, bottom: 1, right: 1))] {
            try Harness.check(batch: 2) { b in
                let x = b.input("x", [3, 3, 4]), skip = b.input("skip", [2, 6, 8])
                let up = b.convTranspose2d(x, "up", out: 4, kernel: k, stride: 2, padding: pad, bias: true)
                return b.batchNorm(b.concat([up, skip], "cat"), "bn")
            }
        }
    }
    /// The same with channels in whole blocks (16 and 16): the maps are joined in their blocked
    /// layout (nChw8c or nChw16c), the up-sampling as a convolution and a pixel shuffle.
    func testUNetDecoderBlockOfBlockedMaps() throws {
        for training in [true, false] {
            try Harness.check(batch: 2, training: training) { b in
                let skip = b.relu(b.conv2d(b.input("skip", [3, 6, 8]), "c", out: 16, kernel: 3), "r")
                let up = b.convTranspose2d(b.input("x", [8, 3, 4]), "up", out: 16, kernel: 4, stride: 2, padding: Padding2D(1), bias: true)
                return b.conv2d(b.relu(b.batchNorm(b.concat([up, skip], "cat"), "bn"), "r2"), "head", out: 3, kernel: 1)
            }
        }
    }
    func testBatchNormTraining() throws {
        try Harness.check(batch: 3) { b in b.batchNorm(b.input("x", [5, 4, 3]), "bn") }
    }
    /// freeze_bn: running statistics in training too, gradients through them as constants.
    func testFrozenBatchNormGradients() throws {
        try Harness.check(batch: 3, frozenBatchNorm: ["bn"]) { b in b.batchNorm(b.input("x", [5, 4, 3]), "bn") }
        try Harness.check(batch: 2, frozenBatchNorm: ["bn"]) { b in
            b.relu(b.batchNorm(b.conv2d(b.input("x", [3, 6, 6]), "c", out: 4, kernel: 3), "bn"), "r")
        }
    }
    func testBatchNormInference() throws {
        try Harness.check(batch: 2, training: false) { b in b.batchNorm(b.input("x", [5, 4, 3]), "bn") }
    }
    func testBatchNormOnFeatures() throws {
        try Harness.check(batch: 4) { b in b.batchNorm(b.input("x", [6]), "bn") }
    }
    func testActivations() throws {
        let all: [Activation] = [.relu, .relu6, .leakyRelu(alpha: 0.1), .elu(alpha: 0.7), .sigmoid, .tanh, .swish, .hardSwish, .mish,
                                 .linear(alpha: -0.7, beta: 0.3), .clip(lower: -1.5, upper: 2)]
        for a in all {
            // Inputs with std 4 reach both bends of relu6 (0 and 6) and hard-swish (-3 and 3).
            try Harness.check(batch: 2, inputScale: 4) { b in b.activation(b.input("x", [3, 5, 4]), a, "act") }
        }
    }
    /// The activations ONNX import maps onto (Abs, Exp, Softplus, Gelu, Erf, Pow, Sqrt, Log, Reciprocal);
    /// those defined for positive inputs only take them through exp.
    func testActivationsOfImportedModels() throws {
        for a: Activation in [.abs, .exp, .softplus, .gelu, .erf, .pow(scale: 0.5, exponent: 2), .pow(scale: -1.5, exponent: 3)] {
            try Harness.check(batch: 2, inputScale: 1.5) { b in b.activation(b.input("x", [3, 5, 4]), a, "act") }
        }
        for a: Activation in [.sqrt, .log, .pow(scale: 1, exponent: -1), .pow(scale: 2, exponent: 0.5), .pow(scale: 0.7, exponent: -2.5)] {
            try Harness.check(batch: 2) { b in b.activation(b.activation(b.input("x", [3, 5, 4]), .exp, "positive"), a, "act") }
        }
    }
    /// Strided slices (YOLOX's Focus: every other row and column, from 0 or 1), values and gradients.
    func testStridedSlices() throws {
        try Harness.check(batch: 2) { b in
            let x = b.activation(b.input("x", [3, 7, 6]), .tanh, "pre")
            let rows = b.node("rows", .slice(Slice(axis: 2, start: 1, end: 7, step: 2)), [x])
            let cols = b.node("cols", .slice(Slice(axis: 3, start: 0, end: 6, step: 3)), [rows])
            let chans = b.node("chans", .slice(Slice(axis: 1, start: 0, end: 3, step: 2)), [cols])
            return b.dense(b.flatten(chans, "flat"), "fc", out: 3)
        }
    }
    /// ONNX's Transpose: axes reordered (the batch axis stays), through oneDNN reorders both ways.
    /// Softmax and log-softmax over axis 1: the features of [F], the channels of [C,H,W] (a dense
    /// layer after weighs each output differently, so the gradient reaches every element).
    func testSoftmaxAndLogSoftmaxOverAxisOne() throws {
        for op in [Op.softmax, .logSoftmax] {
            for shape: Shape in [[6], [4, 3, 5]] {
                try Harness.check(batch: 2) { b in
                    let x = b.activation(b.input("x", shape), .linear(alpha: 3, beta: 0), "scaled")
                    let s = b.node("s", op, [x])
                    return b.dense(shape.rank == 1 ? s : b.flatten(s, "flat"), "fc", out: 3)
                }
            }
        }
    }
    /// ONNX's Resize by taps (align_corners linear to another size, cubic by fractional scales with
    /// and without exclude_outside, nearest downscaling): gradients against finite differences.
    func testResize() throws {
        let cases = [Resize(mode: .linear, coordinates: "align_corners", size: [7, 4], scale: [7.0 / 5, 4.0 / 6]),
                     Resize(mode: .cubic, coordinates: "half_pixel", size: [7, 9], scale: [1.5, 1.5]),
                     Resize(mode: .cubic, coordinates: "pytorch_half_pixel", cubicA: -0.5, excludeOutside: true, size: [3, 4], scale: [0.6, 0.7]),
                     Resize(mode: .nearest, coordinates: "asymmetric", rounding: "ceil", size: [2, 3], scale: [0.5, 0.5])]
        for r in cases {
            try Harness.check(batch: 2) { b in
                let x = b.activation(b.input("x", [2, 5, 6]), .tanh, "pre")
                return b.dense(b.flatten(b.node("resize", .resize(r), [x]), "flat"), "fc", out: 3)
            }
        }
    }
    func testTranspose() throws {
        for perm in [[0, 2, 1], [0, 1, 3, 2], [0, 3, 1, 2], [0, 2, 3, 1]] {
            // A dense layer after it weighs each position differently, so a misplaced element shows.
            try Harness.check(batch: 2) { b in
                let x = b.activation(b.input("x", perm.count == 3 ? [5, 7] : [3, 4, 5]), .tanh, "pre")
                let t = b.node("t", .transpose(perm: perm), [x])
                return b.dense(b.flatten(t, "flat"), "fc", out: 4)
            }
        }
    }
    func testMaxPoolOverlappingPadded() throws {
        try Harness.check(batch: 2) { b in b.maxPool(b.input("x", [3, 9, 9]), "p", kernel: 3, stride: 2, padding: 1) }
    }
    func testAvgPoolExcludeAndIncludePad() throws {
        try Harness.check(batch: 2) { b in b.avgPool(b.input("x", [3, 7, 8]), "p", kernel: 3, stride: 2, padding: 1) }
        try Harness.check(batch: 2) { b in b.avgPool(b.input("x", [3, 7, 8]), "p", kernel: 3, stride: 2, padding: 1, countIncludePad: true) }
    }
    /// Keras's 'same' padding as TAO's templates pool: more padding after than before, and (average)
    /// windows that overhang the map by different amounts on each side.
    func testPoolsWithAsymmetricPadding() throws {
        let same = Padding2D(top: 0, left: 1, bottom: 1, right: 2)
        try Harness.check(batch: 2) { b in b.node("p", .pool2d(Pool2D(.max, kernel: [3, 3], stride: [2, 2], padding: same)), [b.input("x", [3, 8, 9])]) }
        try Harness.check(batch: 2) { b in
            b.node("p", .pool2d(Pool2D(.average, kernel: [4, 4], stride: [3, 3], padding: same, countIncludePad: false)), [b.input("x", [3, 8, 9])])
        }
    }
    func testGlobalAveragePoolAndDense() throws {
        try Harness.check(batch: 3) { b in b.dense(b.globalAveragePool(b.input("x", [7, 5, 3]), "gap"), "fc", out: 4) }
    }
    func testDenseWithoutBias() throws {
        try Harness.check(batch: 2) { b in b.dense(b.input("x", [10]), "fc", out: 3, bias: false) }
    }
    func testAddSameShapeAndReusedInput() throws {
        try Harness.check(batch: 2) { b in
            let x = b.input("x", [4, 5, 5])
            let c = b.conv2d(x, "c", out: 4, kernel: 3)
            return b.add(c, x, "res")   // x feeds both the conv and the add: gradients accumulate
        }
    }
    func testMulBroadcastSqueezeExcite() throws {
        try Harness.check(batch: 2) { b in
            let x = b.input("x", [8, 5, 5])
            let s = b.node("s", .reshape([8, 1, 1]), [b.activation(b.dense(b.globalAveragePool(x, "gap"), "fc", out: 8), .sigmoid, "sig")])
            return b.mul(x, s, "scale")
        }
    }
    func testAddBroadcast() throws {
        try Harness.check(batch: 2) { b in
            b.add(b.input("x", [4, 3, 3]), b.input("y", [4, 1, 1]), "add")
        }
    }
    func testConcatChannelsAndSlice() throws {
        try Harness.check(batch: 2) { b in
            let x = b.input("x", [3, 5, 5])
            let c = b.concat([b.conv2d(x, "a", out: 5, kernel: 3), x], "cat")
            return b.node("sl", .slice(Slice(axis: 1, start: 2, end: 7)), [c])
        }
    }
    func testReshapeFlattenPadUpsample() throws {
        try Harness.check(batch: 2) { b in
            let x = b.input("x", [2, 4, 3])
            let p = b.node("pad", .pad2d(Padding2D(top: 1, left: 0, bottom: 2, right: 1)), [x])
            return b.flatten(b.node("up", .upsample(Upsample(.nearest, scale: [2, 2])), [p]), "flat")
        }
        try Harness.check(batch: 2) { b in
            b.node("up", .upsample(Upsample(.bilinear, scale: [2, 3])), [b.input("x", [2, 4, 3])])
        }
    }
    func testSoftmax() throws {
        try Harness.check(batch: 3) { b in b.node("sm", .softmax, [b.input("x", [6])]) }
    }

    func testDropoutMasksAndScalesConsistently() throws {
        var b = GraphBuilder()
        let out = b.dropout(b.input("x", [1000]), "drop", rate: 0.3)
        let g = try b.build(outputs: [out])
        let exec = try Executor(graph: g, batch: 2, mode: .training, parameters: ParameterStore(graph: g, seed: 1), inputGradients: true)
        try exec.setInput(0, Tensor(repeating: 1, shape: [2, 1000]))
        exec.forward()
        let y = exec.output().scalars
        let kept = y.filter { $0 != 0 }
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 }, "kept values are scaled by 1/(1-rate)")
        XCTAssertEqual(Double(kept.count) / 2000, 0.7, accuracy: 0.04)
        for i in 0..<2000 { exec.outputGradientPointer()[i] = 1 }
        exec.backward()
        XCTAssertEqual(exec.inputGradient()!.scalars, y, "the gradient goes through the same mask")
        let inference = try Executor(graph: g, batch: 2, mode: .inference, parameters: ParameterStore(graph: g, seed: 1))
        try inference.setInput(0, Tensor(repeating: 1, shape: [2, 1000]))
        inference.forward()
        XCTAssertEqual(inference.output().scalars, [Float](repeating: 1, count: 2000), "dropout is the identity at inference")
    }
}
