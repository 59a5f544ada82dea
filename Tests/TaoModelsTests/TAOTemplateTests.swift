import XCTest
import TaoGraph
@testable import TaoModels
import TaoRuntime
import TaoTensor

/// ResNet, VGG, AlexNet and the rest as TAO's Keras templates build them (nvidia_tao_tf1/core/templates with
/// TAO classification's average-pool and dense head): strides, Keras 'same' padding and parameter
/// counts worked out by hand from the templates' layer lists.
final class TAOTemplateTests: XCTestCase {
    func node(_ g: Graph, _ name: String) -> Node { g.nodes.first { $0.name == name }! }
    func shape(_ g: Graph, _ name: String) -> [Int] { g.shape(of: node(g, name).output).dims }
    func conv(_ g: Graph, _ name: String) -> Conv2D {
        guard case .conv2d(let c) = node(g, name).op else { fatalError("\(name) is not a convolution") }
        return c
    }
    func pool(_ g: Graph, _ name: String) -> Pool2D {
        guard case .pool2d(let p) = node(g, name).op else { fatalError("\(name) is not a pooling") }
        return p
    }

    func taoResNet(_ depth: Int, pooling: Bool, input: Shape = [3, 224, 224]) throws -> Graph {
        var cfg = ResNetConfig(depth: depth, classes: 1000, inputShape: input, stemMaxPool: pooling)
        cfg.template = .tao
        return try ResNet.build(cfg)
    }

    /// use_pooling false: no max pool, stages strided 2, 2, 2, 1 (stride 16); the stem's 7×7/2 and the
    /// first strided 3×3 padded as Keras's 'same' on even sizes (2 before, 3 after; 0 before, 1 after).
    func testResNetWithoutPoolingStridesLikeTAO() throws {
        let g = try taoResNet(18, pooling: false)
        XCTAssertEqual(conv(g, "conv1").padding, Padding2D(top: 2, left: 2, bottom: 3, right: 3))
        XCTAssertEqual(conv(g, "layer1.0.conv1").stride, [2, 2])
        XCTAssertEqual(conv(g, "layer1.0.conv1").padding, Padding2D(top: 0, left: 0, bottom: 1, right: 1))
        XCTAssertEqual(["layer1.1.relu2", "layer2.1.relu2", "layer3.1.relu2", "layer4.1.relu2"].map { shape(g, $0) },
                       [[64, 56, 56], [128, 28, 28], [256, 14, 14], [512, 14, 14]])
        XCTAssertFalse(g.nodes.contains { $0.name == "maxpool" || $0.name == "avgpool_7x7" })
        // An odd size pads alike on both sides, as PyTorch would.
        XCTAssertEqual(conv(try taoResNet(10, pooling: false, input: [1, 27, 27]), "conv1").padding, Padding2D(3))
    }

    /// use_pooling true: a 3×3/2 'same' max pool, stages strided 1, 2, 2, 2, and TAO's 7×7 'same'
    /// average pool (stride 7) before the classifier's global average.
    func testResNetWithPoolingEndsInTAOsAveragePool() throws {
        let g = try taoResNet(18, pooling: true)
        XCTAssertEqual(pool(g, "maxpool").padding, Padding2D(top: 0, left: 0, bottom: 1, right: 1))
        XCTAssertEqual(shape(g, "layer1.1.relu2"), [64, 56, 56])
        XCTAssertEqual(shape(g, "layer4.1.relu2"), [512, 7, 7])
        XCTAssertEqual(shape(g, "avgpool_7x7"), [512, 1, 1])
        let tall = try taoResNet(18, pooling: true, input: [3, 448, 288])
        XCTAssertEqual(shape(tall, "layer4.1.relu2"), [512, 14, 9])
        XCTAssertEqual(shape(tall, "avgpool_7x7"), [512, 2, 2])
        XCTAssertEqual(pool(tall, "avgpool_7x7").padding, Padding2D(top: 0, left: 2, bottom: 0, right: 3))
        XCTAssertFalse(pool(tall, "avgpool_7x7").countIncludePad)
    }

    /// Every stage's first block projects its shortcut in TAO's template (torchvision's does only where
    /// the shape changes: not in ResNet-18's first stage after the max pool); a bottleneck strides its
    /// first 1×1 (ResNet v1), not the 3×3.
    func testResNetProjectionsAndBottleneckStrideFollowTAO() throws {
        let torchvision18 = 11_689_512, projection = 64 * 64 + 2 * 64
        XCTAssertEqual(try taoResNet(18, pooling: true).trainableParameterCount, torchvision18 + projection)
        XCTAssertEqual(try taoResNet(18, pooling: false).trainableParameterCount, torchvision18 + projection)
        let r50 = try taoResNet(50, pooling: false)
        XCTAssertEqual(r50.trainableParameterCount, 25_557_032)   // every first block already projects in ResNet-50
        XCTAssertEqual(conv(r50, "layer2.0.conv1").stride, [2, 2])
        XCTAssertEqual(conv(r50, "layer2.0.conv2").stride, [1, 1])
        XCTAssertEqual(shape(r50, "layer4.2.relu3"), [2048, 14, 14])
    }

    /// TAO's average pool with 'same' padding divides by the pixels inside the image (TensorFlow's
    /// rule): checked against sums worked out directly on a 9×11 map (windows of 5 and 4 rows, 6 and 5
    /// columns, as the padding falls).
    func testSameAveragePoolDividesByTheValidPixels() throws {
        var b = GraphBuilder()
        let x = b.input("x", [2, 9, 11])
        let y = b.avgPoolSame(x, "pool", kernel: 7, stride: 7)
        let g = try b.build(outputs: [y])
        XCTAssertEqual(g.shape(of: y).dims, [2, 2, 2])
        var rng = SplitMix64(seed: 4)
        let input = Tensor.randomNormal([1, 2, 9, 11], rng: &rng)
        let exec = try Executor(graph: g, batch: 1, mode: .inference, parameters: ParameterStore(graph: g, seed: 1))
        try exec.setInput(0, input); exec.forward()
        let out = exec.output().scalars, v = input.scalars
        // 'same': rows padded 2 before / 3 after (total (2 − 1)·7 + 7 − 9 = 5), columns 1 / 2 (total 3).
        for c in 0..<2 { for oy in 0..<2 { for ox in 0..<2 {
            let rows = max(oy * 7 - 2, 0)..<min(oy * 7 - 2 + 7, 9), cols = max(ox * 7 - 1, 0)..<min(ox * 7 - 1 + 7, 11)
            var sum = 0.0
            for r in rows { for q in cols { sum += Double(v[(c * 9 + r) * 11 + q]) } }
            let expected = sum / Double(rows.count * cols.count)
            XCTAssertEqual(Double(out[(c * 2 + oy) * 2 + ox]), expected, accuracy: 1e-5 * max(1, abs(expected)), "c\(c) y\(oy) x\(ox)")
        } } }
    }

    /// TAO's VGG: 3×3 'same' convolutions with bias (and batch norm), either 2×2 max pools after blocks
    /// 1–4 or a stride-2 first convolution in blocks 2–5; global average pool and one dense layer.
    func testVGGAsTAOBuildsIt() throws {
        func vgg(_ depth: Int, pooling: Bool, bn: Bool) throws -> Graph {
            var cfg = VGGConfig(depth: depth, classes: 1000, batchNorm: bn, dropout: 0, template: .tao)
            cfg.usePooling = pooling
            return try VGG.build(cfg)
        }
        // Convolutions with bias: VGG-16's 13 (14,714,688 parameters), VGG-19's 16 (20,024,384); head 512·1000 + 1000.
        XCTAssertEqual(try vgg(16, pooling: false, bn: false).trainableParameterCount, 14_714_688 + 513_000)
        XCTAssertEqual(try vgg(19, pooling: true, bn: false).trainableParameterCount, 20_024_384 + 513_000)
        let channels16 = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512
        XCTAssertEqual(try vgg(16, pooling: false, bn: true).trainableParameterCount, 14_714_688 + 2 * channels16 + 513_000)
        let strided = try vgg(16, pooling: false, bn: true)
        XCTAssertEqual(conv(strided, "block2.conv1.conv").stride, [2, 2])
        XCTAssertEqual(conv(strided, "block2.conv1.conv").padding, Padding2D(top: 0, left: 0, bottom: 1, right: 1))
        XCTAssertEqual(conv(strided, "block2.conv2.conv").stride, [1, 1])
        XCTAssertEqual(shape(strided, "block5.conv3.act"), [512, 14, 14])
        let pooled = try vgg(16, pooling: true, bn: false)
        XCTAssertEqual(["block1.pool", "block4.pool", "block5.conv3.act"].map { shape(pooled, $0) }, [[64, 112, 112], [512, 14, 14], [512, 14, 14]])
        XCTAssertFalse(pooled.nodes.contains { $0.name == "block5.pool" })
    }

    /// TAO's AlexNet: 96 11×11/4, 256 5×5, 384, 384, 256 3×3, 'same' padding, two 3×3/2 max pools;
    /// global average pool and one dense layer.
    func testAlexNetAsTAOBuildsIt() throws {
        let g = try AlexNet.build(classes: 1000, dropout: 0, template: .tao)
        let layers: [(out: Int, cin: Int, k: Int)] = [(96, 3, 11), (256, 96, 5), (384, 256, 3), (384, 384, 3), (256, 384, 3)]
        var convs = 0
        for l in layers { convs += l.out * l.cin * l.k * l.k + l.out }
        XCTAssertEqual(g.trainableParameterCount, convs + 256 * 1000 + 1000)
        XCTAssertEqual(g.trainableParameterCount, 4_004_200)
        XCTAssertEqual(["conv1.act", "pool1", "conv2.act", "pool2", "conv5.act"].map { shape(g, $0) },
                       [[96, 56, 56], [96, 28, 28], [256, 28, 28], [256, 14, 14], [256, 14, 14]])
        XCTAssertEqual(conv(g, "conv1.conv").padding, Padding2D(top: 3, left: 3, bottom: 4, right: 4))
    }

    /// The other Keras templates: DarkNet, CSPDarkNet, GoogLeNet and EfficientNet pad their stride-2
    /// convolutions as Keras's 'same' (EfficientNet's `correct_pad` is the same rule): on an even size
    /// one pixel less before than after, on an odd one alike; TAO's MobileNet V1 pads every 3×3 by
    /// one on each side (explicit ZeroPadding2D((1, 1)), then 'valid').
    func testStrideTwoPaddingOfTheOtherTemplates() throws {
        let even = Padding2D(top: 0, left: 0, bottom: 1, right: 1)
        let darknet = try DarkNet.build(DarkNetConfig(.darknet, depth: 53))
        XCTAssertEqual(conv(darknet, "block1.conv2.conv").stride, [2, 2])
        XCTAssertEqual(conv(darknet, "block1.conv2.conv").padding, even)
        XCTAssertEqual(conv(darknet, "block0.conv1.conv").padding, Padding2D(1))
        let csp = try DarkNet.build(DarkNetConfig(.cspDarknet, depth: 53))
        XCTAssertEqual(conv(csp, "block1.conv2.conv").padding, even)
        let tiny = try DarkNet.build(DarkNetConfig(.cspDarknetTiny, inputShape: [3, 225, 225]))
        XCTAssertEqual(conv(tiny, "block0.conv_0.conv").padding, Padding2D(1), "odd sizes pad alike on both sides")
        XCTAssertEqual(shape(tiny, "block0.conv_0.act"), [32, 113, 113])
        let googlenet = try GoogLeNet.build(GoogLeNetConfig())
        XCTAssertEqual(conv(googlenet, "block0.conv1.conv").padding, Padding2D(top: 2, left: 2, bottom: 3, right: 3))
        XCTAssertEqual(shape(googlenet, "block0.conv1.act"), [64, 112, 112])
        let b0 = try EfficientNet.build(EfficientNetConfig(variant: 0))
        XCTAssertEqual(conv(b0, "block0.stem.conv").padding, even)
        XCTAssertEqual(conv(b0, "block2.0.dwconv.conv").padding, even)                              // 3×3 / 2
        XCTAssertEqual(conv(b0, "block3.0.dwconv.conv").padding, Padding2D(top: 1, left: 1, bottom: 2, right: 2))   // 5×5 / 2
        XCTAssertEqual(conv(b0, "block3.1.dwconv.conv").padding, Padding2D(2))                      // 5×5 / 1
        let mobilenet = try MobileNetV1.build()
        XCTAssertEqual(conv(mobilenet, "conv1").padding, Padding2D(1))
        XCTAssertEqual(conv(mobilenet, "conv_dw_2").padding, Padding2D(1))
        XCTAssertEqual(conv(mobilenet, "conv_dw_2").stride, [2, 2])
        XCTAssertEqual(shape(mobilenet, "conv_pw_13_relu"), [1024, 7, 7])
    }

    /// Each template trains: finite outputs, gradients down to the first layer.
    func testTAOTemplatesTrainForwardAndBackward() throws {
        var r = ResNetConfig(depth: 10, classes: 5, inputShape: [3, 36, 36], stemMaxPool: true)
        r.template = .tao
        var v = VGGConfig(depth: 16, classes: 5, inputShape: [3, 32, 32], batchNorm: true, dropout: 0, template: .tao)
        v.usePooling = false
        for g in [try ResNet.build(r), try VGG.build(v), try AlexNet.build(classes: 5, inputShape: [3, 64, 64], dropout: 0, template: .tao)] {
            let exec = try Executor(graph: g, batch: 2, mode: .training, parameters: ParameterStore(graph: g, seed: 1))
            var rng = SplitMix64(seed: 2)
            try exec.setInput(0, Tensor.randomNormal(g.shape(of: g.inputs[0]).batched(2), rng: &rng))
            exec.forward()
            XCTAssertEqual(exec.outputShape(), [2, 5])
            XCTAssertTrue(exec.output().scalars.allSatisfy(\.isFinite))
            for i in 0..<10 { exec.outputGradientPointer()[i] = Float(i % 3) - 1 }
            exec.backward()
            let first = g.parameters[0].name
            XCTAssertGreaterThan(exec.parameterGradient(first)!.scalars.map(abs).max()!, 0, "\(first) got no gradient")
        }
    }
}
