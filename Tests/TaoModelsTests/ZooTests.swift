import XCTest
import TaoGraph
@testable import TaoModels
import TaoRuntime

final class ZooTests: XCTestCase {
    /// One training forward and backward pass at batch 2: finite logits of the right shape, and a
    /// gradient that reaches the first parameter.
    static func checkTrainingStep(_ name: String, res: Int) throws {
        let g = try Zoo.build(name, classes: 5, inputShape: [3, res, res])
        let exec = try Executor(graph: g, batch: 2, mode: .training, parameters: ParameterStore(graph: g, seed: 1))
        var rng = SplitMix64(seed: 2)
        try exec.setInput(0, Tensor.randomNormal([2, 3, res, res], rng: &rng))
        exec.forward()
        XCTAssertEqual(exec.outputShape(), [2, 5], name)
        XCTAssertTrue(exec.output().scalars.allSatisfy(\.isFinite), name)
        for i in 0..<10 { exec.outputGradientPointer()[i] = 1 }
        exec.backward()
        let first = g.parameters[0].name
        XCTAssertGreaterThan(exec.parameterGradient(first)!.scalars.map(abs).max()!, 0, "\(name): \(first) got no gradient")
    }

    /// Parameter counts and multiply-accumulates as torchvision reports them for 1000 classes at 224².
    func testResNet18MatchesTorchvisionParameterCountAndMACs() throws {
        let g = try Zoo.build("resnet18", classes: 1000, inputShape: [3, 224, 224])
        XCTAssertEqual(g.trainableParameterCount, 11_689_512)
        XCTAssertEqual(Double(g.macsPerSample) / 1e9, 1.814, accuracy: 0.001)
        XCTAssertNotNil(g.parameterIndex(named: "layer2.0.downsample.0.weight"))
    }

    func testMobileNetV2MatchesTorchvisionParameterCountAndMACs() throws {
        let g = try Zoo.build("mobilenet_v2", classes: 1000, inputShape: [3, 224, 224])
        XCTAssertEqual(g.trainableParameterCount, 3_504_872)
        XCTAssertEqual(Double(g.macsPerSample) / 1e9, 0.301, accuracy: 0.002)
        XCTAssertNotNil(g.parameterIndex(named: "features.17.conv.2.weight"))
    }

    func testResNet50AndDeeperParameterCounts() throws {
        XCTAssertEqual(try Zoo.build("resnet34", classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount, 21_797_672)
        XCTAssertEqual(try Zoo.build("resnet50", classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount, 25_557_032)
        XCTAssertEqual(try Zoo.build("resnet101", classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount, 44_549_160)
    }

    func testUnknownModelNamesTheAlternatives() {
        XCTAssertThrowsError(try Zoo.build("resnet19", classes: 10, inputShape: [3, 32, 32])) { e in
            XCTAssertTrue("\(e)".contains("resnet18"), "\(e)")
        }
    }

    /// Each model runs forward and backward at a small resolution and gives finite, non-zero gradients everywhere.
    func testModelsTrainForwardAndBackward() throws {
        for name in ["resnet18", "mobilenet_v2", "resnet50"] {
            let g = try Zoo.build(name, classes: 10, inputShape: [3, 64, 64])
            let store = ParameterStore(graph: g, seed: 3)
            let exec = try Executor(graph: g, batch: 2, mode: .training, parameters: store)
            var rng = SplitMix64(seed: 1)
            try exec.setInput(0, Tensor.randomNormal([2, 3, 64, 64], rng: &rng))
            exec.forward()
            let y = exec.output()
            XCTAssertEqual(y.shape, [2, 10])
            XCTAssertTrue(y.scalars.allSatisfy(\.isFinite), name)
            for i in 0..<20 { exec.outputGradientPointer()[i] = Float(i % 3) - 1 }
            exec.backward()
            for p in g.parameters where p.role.isTrainable {
                let gp = exec.parameterGradient(p.name)!
                XCTAssertTrue(gp.scalars.allSatisfy(\.isFinite), "\(name) \(p.name)")
                XCTAssertGreaterThan(gp.scalars.map(abs).max()!, 0, "\(name) \(p.name) got no gradient")
            }
        }
    }
}

extension ZooTests {
    /// The fused inference plan equals the unfused one on whole networks, with and without Winograd,
    /// down to 2×2 feature maps (a Winograd in-place accumulation bug showed only there).
    func testFusedInferenceEqualsUnfusedOnResNet18AndMobileNetV2() throws {
        var cfg = ResNetConfig(depth: 18, classes: 10, inputShape: [1, 28, 28], stemMaxPool: false)
        cfg.bnEpsilon = 1e-3
        let graphs = [try ResNet.build(cfg), try MobileNetV2.build(MobileNetV2Config(classes: 10, inputShape: [3, 32, 32]))]
        for g in graphs {
            let store = ParameterStore(graph: g, seed: 2)
            var rng = SplitMix64(seed: 3)
            for (i, p) in g.parameters.enumerated() where [.bnMean, .bnVariance, .bnScale, .bnShift].contains(p.role) {
                store[i] = Tensor.randomUniform(p.shape, 0.5, 1.5, rng: &rng)
            }
            let input = Tensor.randomNormal(g.shape(of: g.inputs[0]).batched(4), rng: &rng)
            let plain = try Executor(graph: g, batch: 4, mode: .inference, parameters: store, fuse: false, winograd: false)
            try plain.setInput(0, input); plain.forward()
            let scale = plain.output().scalars.map(abs).max()!
            for wino in [false, true] {
                let fused = try Executor(graph: g, batch: 4, mode: .inference, parameters: store, winograd: wino)
                try fused.setInput(0, input); fused.forward()
                XCTAssertLessThan(fused.output().maxAbsDifference(plain.output()) / scale, 1e-4, "\(g.parameters[0].name) winograd \(wino)")
            }
        }
    }
}

extension ZooTests {
    /// Published parameter counts: torchvision (VGG, AlexNet, SqueezeNet 1.0: TAO's template has its layers,
    /// with a dense classifier of the same size as its 1×1 convolution) and Keras (MobileNet trainable weights).
    func testMoreBackbonesMatchPublishedParameterCounts() throws {
        let expected: [(String, Int)] = [("vgg16", 138_357_544), ("vgg19", 143_667_240), ("alexnet", 61_100_840),
                                         ("squeezenet", 1_248_424), ("mobilenet_v1", 4_231_976)]
        for (name, count) in expected {
            XCTAssertEqual(try Zoo.build(name, classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount, count, name)
        }
        XCTAssertEqual(try VGG.build(VGGConfig(depth: 16, batchNorm: true)).trainableParameterCount, 138_365_992, "vgg16_bn")
        XCTAssertEqual(try SqueezeNet.build().shape(of: ValueID(0)), [3, 224, 224])
        // Keras's 'same' padding: 224 → 112 (conv1) → 56 (pool1) → 28 (pool4) → 14 (pool8), as TAO's model.
        let sq = try SqueezeNet.build()
        XCTAssertEqual(sq.nodes.filter { ["conv1", "pool1", "pool4", "pool8", "fire9"].contains($0.name) }.map { sq.shape(of: $0.output).dims },
                       [[96, 112, 112], [96, 56, 56], [256, 28, 28], [512, 14, 14], [512, 14, 14]])
        XCTAssertTrue(sq.parameters.filter { $0.role == .convWeight || $0.role == .denseWeight }.allSatisfy { $0.initializer == .glorotUniform })
    }

    func testMoreBackbonesTrainForwardAndBackward() throws {
        for (name, res) in [("vgg16", 32), ("alexnet", 96), ("squeezenet", 64), ("mobilenet_v1", 64), ("resnet10", 32)] {
            try Self.checkTrainingStep(name, res: res)
        }
    }
}

/// The backbones built after TAO's Keras templates (GoogLeNet, DarkNet, CSPDarkNet, EfficientNet).
final class TAOBackboneTests: XCTestCase {
    /// A conv-BN unit's parameters: k·k·cin·cout weights plus BN scale and shift.
    func unit(_ k: Int, _ cin: Int, _ cout: Int) -> Int { k * k * cin * cout + 2 * cout }
    func head(_ features: Int, _ classes: Int = 1000) -> Int { features * classes + classes }

    func count(_ name: String) throws -> Int { try Zoo.build(name, classes: 1000, inputShape: [3, 224, 224]).trainableParameterCount }

    /// Published counts: timm's darknet53 (41.61 M) and cspdarknet53 (27.64 M), torchvision's EfficientNet B0/B1.
    func testPublishedParameterCounts() throws {
        XCTAssertEqual(try count("darknet53"), 41_609_928)
        XCTAssertEqual(try count("cspdarknet53"), 27_642_184)
        XCTAssertEqual(try count("efficientnet_b0"), 5_288_548)
        XCTAssertEqual(try count("efficientnet_b1"), 7_794_184)
    }

    /// Counts recomputed from the layer tables (the GoogLeNet paper's table 1, YOLO9000's table 6,
    /// TAO's CSPDarkNet-19 and YOLOv4-tiny layouts), independently of the builders.
    func testParameterCountsFromTheLayerTables() throws {
        var g = unit(7, 3, 64) + unit(1, 64, 64) + unit(3, 64, 192)
        var cin = 192
        for (_, f) in GoogLeNet.blocks {
            g += unit(1, cin, f[0]) + unit(1, cin, f[1]) + unit(3, f[1], f[2]) + unit(1, cin, f[3]) + unit(5, f[3], f[4]) + unit(1, cin, f[5])
            cin = f[0] + f[2] + f[4] + f[5]
        }
        XCTAssertEqual(cin, 1024)
        XCTAssertEqual(try count("googlenet"), g + head(1024))

        // DarkNet-19: 3×3s double the width after each pooling, 1×1s halve it in between.
        let d19 = unit(3, 3, 32) + unit(3, 32, 64) + unit(3, 64, 128) + unit(1, 128, 64) + unit(3, 64, 128)
            + unit(3, 128, 256) + unit(1, 256, 128) + unit(3, 128, 256)
            + unit(3, 256, 512) + 2 * (unit(1, 512, 256) + unit(3, 256, 512))
            + unit(3, 512, 1024) + 2 * (unit(1, 1024, 512) + unit(3, 512, 1024))
        XCTAssertEqual(try count("darknet19"), d19 + head(1024))

        var csp19 = unit(3, 3, 32) + unit(3, 32, 64)
        for (c, pairs) in [(128, 1), (256, 1), (512, 2), (1024, 2)] {
            let h = c / 2
            csp19 += unit(3, c / 2, c) + 2 * unit(1, c, h) + pairs * (unit(1, h, h) + unit(3, h, h)) + unit(1, h, h) + unit(1, c, c)
        }
        XCTAssertEqual(try count("cspdarknet19"), csp19 + head(1024))

        var tiny = unit(3, 3, 32) + unit(3, 32, 64)
        var c = 64
        for f in [64, 128, 256] {
            tiny += unit(3, c, f) + 2 * unit(3, f / 2, f / 2) + unit(1, f, f)
            c = 2 * f
        }
        tiny += unit(3, 512, 512)
        XCTAssertEqual(try count("cspdarknet_tiny"), tiny + head(512))
    }

    func testShapesAndTAOFreezeBlockNames() throws {
        // Stride 32 for every backbone at 224 (7×7 before pooling); names carry TAO's block index.
        for name in ["googlenet", "darknet19", "darknet53", "cspdarknet19", "cspdarknet53", "cspdarknet_tiny", "efficientnet_b0"] {
            let g = try Zoo.build(name, classes: 10, inputShape: [3, 224, 224])
            let pool = g.nodes.last { $0.op == .globalAveragePool }!
            XCTAssertEqual(g.shape(of: pool.inputs[0]).dims.suffix(2), [7, 7], name)
            XCTAssertTrue(g.parameters.dropLast(2).allSatisfy { $0.name.hasPrefix("block") || $0.name.hasPrefix("top.") }, name)
        }
        // Odd sizes pool as Keras "same" does: ⌈n/2⌉.
        let odd = try Zoo.build("darknet19", classes: 3, inputShape: [1, 45, 45])
        XCTAssertEqual(odd.shape(of: odd.nodes.first { $0.op == .globalAveragePool }!.inputs[0]).dims.suffix(2), [2, 2])
    }

    func testTrainForwardAndBackward() throws {
        for name in ["googlenet", "darknet19", "darknet53", "cspdarknet19", "cspdarknet53", "cspdarknet_tiny", "efficientnet_b0", "efficientnet_b1"] {
            try ZooTests.checkTrainingStep(name, res: 32)
        }
    }
}
