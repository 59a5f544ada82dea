import XCTest
import TaoGraph
import TaoModels
import TaoKernels
@testable import TaoRuntime

final class Int8EngineTests: XCTestCase {
    func store(_ g: Graph) -> ParameterStore {
        let s = ParameterStore(graph: g, seed: 3)
        var rng = SplitMix64(seed: 4)
        for (i, p) in g.parameters.enumerated() {
            let u = { (lo: Float, hi: Float) in (0..<p.shape.count).map { _ in lo + (hi - lo) * rng.nextFloat() } }
            switch p.role {
            case .bnScale, .bnVariance: s[i] = Tensor(shape: p.shape, values: u(0.8, 1.2))
            case .bnShift, .bnMean, .denseBias: s[i] = Tensor(shape: p.shape, values: u(-0.1, 0.1))
            default: break
            }
        }
        return s
    }

    /// INT8 against fp32 on held-out inputs: relative error of the logits and agreement of the top class.
    func compare(_ name: String, res: Int = 32, tactics: Int8Engine.Tactics = .timed) throws -> (relError: Float, agreement: Float, logits: [Float]) {
        let g = try Zoo.build(name, classes: 10, inputShape: [3, name == "squeezenet" ? 64 : res, name == "squeezenet" ? 64 : res])
        let res = g.shape(of: g.inputs[0])[1]
        let s = store(g)
        var rng = SplitMix64(seed: 9)
        let calib = (0..<4).map { _ in Tensor.randomNormal([8, 3, res, res], rng: &rng) }
        let ranges = try Int8Calibration.measure(g, s, batches: calib)
        let engine = try Int8Engine(graph: g, parameters: s, maxAbs: ranges, batch: 16, tactics: tactics)
        if tactics == .alternatives, DNNL.shared.isaName.hasPrefix("avx512_core") {
            // oneDNN's int8 Winograd kernel needs AVX-512, u8 sources (after a ReLU) and channel
            // counts in multiples of 16; on such a processor every such 3×3 stride-1 dense
            // convolution must have taken it.
            func nonNegative(_ v: ValueID) -> Bool {
                guard case .node(let k) = g.source(of: v) else { return false }
                switch g.nodes[k].op {
                case .activation(let a): return a == .relu || a == .relu6
                case .pool2d: return nonNegative(g.nodes[k].inputs[0])
                default: return false
                }
            }
            let eligible = g.nodes.filter { n in
                guard case .conv2d(let c) = n.op else { return false }
                return c.kernel == [3, 3] && c.stride == [1, 1] && c.groups == 1 && c.outChannels % 16 == 0
                    && g.shape(of: n.inputs[0])[0] % 16 == 0 && nonNegative(n.inputs[0])
            }
            XCTAssertEqual(engine.winogradConvolutions, eligible.count, name)
            if name == "resnet18" || name == "vgg16" { XCTAssertGreaterThan(eligible.count, 0, name) }
        }
        if tactics == .alternatives {
            // Every 3×3 depthwise convolution (padding 1) right after a pointwise convolution's
            // batch norm and ReLU-like activation runs inside that convolution.
            let pairs = g.nodes.filter { n in
                guard case .conv2d(let c) = n.op, c.groups > 1, c.groups == c.outChannels, c.kernel == [3, 3], c.padding.top == 1,
                      case .node(let k) = g.source(of: n.inputs[0]), case .activation = g.nodes[k].op,
                      case .node(let j) = g.source(of: g.nodes[k].inputs[0]), case .batchNorm = g.nodes[j].op,
                      case .node(let i) = g.source(of: g.nodes[j].inputs[0]), case .conv2d(let p) = g.nodes[i].op else { return false }
                return p.kernel == [1, 1] && p.stride == [1, 1] && p.groups == 1
            }
            XCTAssertEqual(engine.fusedDepthwise, pairs.count, name)
            if name == "mobilenet_v2" { XCTAssertEqual(pairs.count, 16) }
        }
        if tactics == .direct { XCTAssertEqual(engine.winogradConvolutions + engine.fusedDepthwise, 0, name) }
        XCTAssertEqual(engine.int8Convolutions, g.nodes.filter { if case .conv2d = $0.op { return true }; return false }.count, name)
        if name == "resnet18" { XCTAssertEqual(engine.inPlaceResiduals, 8, "every residual add of ResNet-18 is summed in place") }
        if name == "efficientnet_b0" {
            // Swish and the sigmoid gate run inside the convolutions, squeeze-excite scales int8
            // activations in int8, and global pooling reads int8: only [N, C] values are converted.
            let kinds = engine.stepKinds
            XCTAssertEqual(kinds["eltwise"], nil, "\(kinds)")
            XCTAssertEqual(kinds["binary"], 16, "\(kinds)")
            XCTAssertEqual(engine.int8Binaries, 16)
            XCTAssertLessThanOrEqual(kinds["reorder"] ?? 0, 2 * 16 + 2, "\(kinds)")
        }
        let x = Tensor.randomNormal([16, 3, res, res], rng: &rng)
        try engine.setInput(x)
        engine.forward()
        let q = engine.output().scalars
        let fp = try Executor(graph: g, batch: 16, mode: .inference, parameters: s)
        try fp.setInput(0, x)
        fp.forward()
        let f = fp.output().scalars
        let err = relativeError(q, f)
        var agree = 0
        for i in 0..<16 {
            let a = Array(q[(i * 10)..<(i * 10 + 10)]), b = Array(f[(i * 10)..<(i * 10 + 10)])
            if a.firstIndex(of: a.max()!) == b.firstIndex(of: b.max()!) { agree += 1 }
        }
        return (err, Float(agree) / 16, q)
    }

    func testInt8FollowsFP32() throws {
        for name in ["resnet18", "mobilenet_v2", "vgg16", "googlenet", "squeezenet", "darknet19", "efficientnet_b0", "cspdarknet_tiny"] {
            let (err, agree, _) = try compare(name)
            print("int8 \(name): relative error \(err), top-1 agreement \(agree)")
            XCTAssertLessThan(err, 0.1, name)
            XCTAssertGreaterThanOrEqual(agree, 0.75, name)
        }
    }

    /// A detector's two outputs (DetectNet_v2 on ResNet-10: sigmoid coverage, linear boxes) both
    /// come out of the INT8 engine close to fp32.
    func testInt8EngineRunsBothOutputsOfADetector() throws {
        let g = try DetectNetV2.build(DetectNetV2ModelConfig(backbone: ResNetConfig(depth: 10, classes: 1, inputShape: [3, 64, 96], stemMaxPool: false), classes: 2))
        let s = store(g)
        var rng = SplitMix64(seed: 9)
        let ranges = try Int8Calibration.measure(g, s, batches: (0..<4).map { _ in Tensor.randomNormal([4, 3, 64, 96], rng: &rng) })
        let engine = try Int8Engine(graph: g, parameters: s, maxAbs: ranges, batch: 4, tactics: .direct)
        XCTAssertEqual(engine.outputCount, 2)
        XCTAssertEqual(engine.outputShape(1), [4, 8, 4, 6])
        let x = Tensor.randomNormal([4, 3, 64, 96], rng: &rng)
        try engine.setInput(x)
        engine.forward()
        let fp = try Executor(graph: g, batch: 4, mode: .inference, parameters: s)
        try fp.setInput(0, x)
        fp.forward()
        for o in 0..<2 {
            let q = engine.output(o).scalars, f = fp.output(o).scalars
            let err = relativeError(q, f)
            print("int8 detectnet_v2 output \(o): relative error \(err)")
            XCTAssertLessThan(err, 0.05, "output \(o)")
        }
    }

    /// Each kernel choice follows fp32 on its own: the alternative kernels (Winograd, fused
    /// depthwise) forced wherever oneDNN has them, and the direct kernels everywhere.
    func testAlternativeAndDirectKernelsBothFollowFP32() throws {
        for name in ["resnet18", "vgg16", "cspdarknet_tiny", "mobilenet_v2"] {
            var logits: [[Float]] = []
            for tactics in [Int8Engine.Tactics.alternatives, .direct] {
                let (err, agree, q) = try compare(name, tactics: tactics)
                print("int8 \(name) \(tactics): relative error \(err), top-1 agreement \(agree)")
                XCTAssertLessThan(err, 0.1, "\(name) \(tactics)")
                XCTAssertGreaterThanOrEqual(agree, 0.75, "\(name) \(tactics)")
                logits.append(q)
            }
            if name == "mobilenet_v2" {
                // Fusing the depthwise convolutions changes no arithmetic.
                let diff = zip(logits[0], logits[1]).map { abs($0 - $1) }.max()!
                print("mobilenet_v2 fused vs unfused depthwise: max difference \(diff)")
                XCTAssertLessThanOrEqual(diff, 1e-5 * logits[1].map(abs).max()!)
            }
        }
    }

    /// Activations that are not ReLU-like (swish, sigmoid, hard-swish, mish) run inside the convolution
    /// on real values, before and after a residual sum summed in place or copied.
    func testNonReLUActivationsFuseWithResidualSums() throws {
        for (pre, post, reuse) in [(Activation.swish, Activation.sigmoid, false), (.hardSwish, .tanh, false), (.relu, .swish, false), (.mish, .relu, false), (.swish, .sigmoid, true)] {
            var b = GraphBuilder()
            let x = b.input("x", [16, 12, 12])
            let stem = b.activation(b.batchNorm(b.conv2d(x, "stem", out: 16, kernel: 3), "stem.bn"), pre, "stem.act")
            let y = b.activation(b.batchNorm(b.conv2d(stem, "c", out: 16, kernel: 3), "c.bn"), pre, "c.act")
            let sum = b.activation(b.add(b.batchNorm(b.conv2d(y, "d", out: 16, kernel: 3), "d.bn"), stem, "add"), post, "post")
            // Read again later, the addend cannot be summed in place: it is copied first.
            let last = reuse ? b.add(sum, stem, "again") : sum
            let out = b.dense(b.globalAveragePool(last, "gap"), "fc", out: 10)
            let g = try b.build(outputs: [out])
            let s = store(g)
            var rng = SplitMix64(seed: 8)
            let ranges = try Int8Calibration.measure(g, s, batches: (0..<3).map { _ in Tensor.randomNormal([8, 16, 12, 12], rng: &rng) })
            let engine = try Int8Engine(graph: g, parameters: s, maxAbs: ranges, batch: 8, tactics: .direct)
            XCTAssertEqual(engine.stepKinds["eltwise"], nil, "\(pre), \(post): every activation is a post-op")
            XCTAssertEqual(engine.stepKinds["binary"], reuse ? 1 : nil, "\(pre), \(post): the add is a sum post-op")
            XCTAssertEqual(engine.inPlaceResiduals, reuse ? 0 : 1)
            let input = Tensor.randomNormal([8, 16, 12, 12], rng: &rng)
            try engine.setInput(input)
            engine.forward()
            let fp = try Executor(graph: g, batch: 8, mode: .inference, parameters: s)
            try fp.setInput(0, input)
            fp.forward()
            let (q, f) = (engine.output().scalars, fp.output().scalars)
            let err = relativeError(q, f)
            print("int8 \(pre) … \(post)\(reuse ? ", addend copied" : ""): relative error \(err)")
            XCTAssertLessThan(err, 0.02, "\(pre), \(post)")
        }
    }

    func testUnsupportedOpsAndMissingRangesAreClearErrors() throws {
        let g = try Zoo.build("efficientnet_b0", classes: 3, inputShape: [3, 32, 32])
        XCTAssertThrowsError(try Int8Engine(graph: g, parameters: ParameterStore(graph: g, seed: 1), maxAbs: [:], batch: 1)) {
            XCTAssertTrue("\($0)".contains("no calibration range for 'block0.stem."), "\($0)")
        }
        var b = GraphBuilder()
        let x = b.input("x", [3, 8, 8])
        let conv = b.conv2d(x, "c", out: 4, kernel: 3)
        let r = b.relu(conv, "r")
        let up = b.node("up", .upsample(Upsample(.nearest, scale: [2, 2])), [r])   // runs in int8 (YOLO's necks)
        let pad = b.node("pad", .pad2d(Padding2D(1)), [up])
        let gap = b.globalAveragePool(pad, "gap")
        let fc = b.dense(gap, "fc", out: 2)
        let tiny = try b.build(outputs: [fc])
        let s = ParameterStore(graph: tiny, seed: 1)
        var rng = SplitMix64(seed: 1)
        let ranges = try Int8Calibration.measure(tiny, s, batches: [Tensor.randomNormal([2, 3, 8, 8], rng: &rng)])
        XCTAssertThrowsError(try Int8Engine(graph: tiny, parameters: s, maxAbs: ranges, batch: 1)) {
            XCTAssertTrue("\($0)".contains("does not support 'pad' (pad2d)"), "\($0)")
        }
        XCTAssertThrowsError(try Int8Calibration.measure(g, ParameterStore(graph: g, seed: 1), batches: [])) {
            XCTAssertTrue("\($0)".contains("at least one batch"), "\($0)")
        }
    }
}

extension Int8EngineTests {
    /// Entropy calibration clips rare outliers but keeps a distribution without tails whole.
    func testEntropyCalibrationThresholds() {
        let bins = Int8Calibration.bins
        var rng = SplitMix64(seed: 12)
        // |N(0, 1)| with 20 outliers at 50: max 50, the bulk within ~4.
        var values = (0..<200_000).map { _ in abs(Tensor.randomNormal([1], rng: &rng).scalars[0]) }
        values += [Float](repeating: 50, count: 20)
        let maxAbs = values.max()!
        var h = [Double](repeating: 0, count: bins)
        for v in values { h[min(bins - 1, Int(v / maxAbs * Float(bins)))] += 1 }
        let clip = Float(Int8Calibration.threshold(h)) * maxAbs / Float(bins)
        XCTAssertGreaterThan(clip, 2.5, "keeps the bulk")
        XCTAssertLessThan(clip, 8, "clips the outliers at 50")
        // Uniform on [0, 1]: nothing to clip.
        let uniform = [Double](repeating: 100, count: bins)
        XCTAssertGreaterThanOrEqual(Int8Calibration.threshold(uniform), bins * 9 / 10)
    }

    /// Percentile calibration takes the 90th percentile of the images' own maxima: two images in
    /// twenty with values 40× the rest are clipped, where `max` keeps them and `entropy` cannot
    /// clip below a sixteenth of the largest value.
    func testPercentileCalibrationClipsTheFewImagesWithOutliers() throws {
        var b = GraphBuilder()
        let x = b.input("x", [1, 4, 4])
        let r = b.relu(x, "r")
        let tiny = try b.build(outputs: [r])
        let s = ParameterStore(graph: tiny, seed: 1)
        // Image i of 20 has largest magnitude 1 + i/20 (a ramp), except images 7 and 13 (40 and 50).
        let batches = (0..<2).map { half in
            Tensor(shape: [10, 1, 4, 4], values: (0..<10).flatMap { k -> [Float] in
                let i = half * 10 + k
                let top: Float = i == 7 ? 40 : i == 13 ? 50 : 1 + Float(i) / 20
                return (0..<16).map { $0 == 5 ? -top : top * Float($0) / 32 }
            })
        }
        let p = try Int8Calibration.measure(tiny, s, batches: batches, method: .percentile)
        let m = try Int8Calibration.measure(tiny, s, batches: batches, method: .max)
        XCTAssertEqual(m["x"], 50)
        // The sorted maxima: 18 ramp values (1.00 … 1.95 without 1.35 and 1.65), then 40 and 50;
        // index round(0.9 · 19) = 17 is the largest of the ramp, 1.95.
        XCTAssertEqual(p["x"]!, 1.95, accuracy: 1e-6)
        XCTAssertEqual(p["r"]!, 1.95 * 15 / 32, accuracy: 1e-6, "after the ReLU: the largest positive value")
        XCTAssertThrowsError(try Int8Calibration.measure(tiny, s, batches: [], method: .percentile))
    }

    /// Mixed precision: convolutions named in `fp32Layers` run in fp32 inside the int8 network.
    /// All of them in fp32 gives fp32's outputs (only fp32 arithmetic is left); every other one in
    /// fp32 mixes both kinds of residual (fp32 addends into int8 convolutions and the reverse) and
    /// still follows fp32.
    func testConvolutionsKeptInFP32() throws {
        for name in ["resnet18", "mobilenet_v2", "efficientnet_b0"] {
            let g = try Zoo.build(name, classes: 10, inputShape: [3, 32, 32])
            let s = store(g)
            var rng = SplitMix64(seed: 9)
            let calib = (0..<2).map { _ in Tensor.randomNormal([8, 3, 32, 32], rng: &rng) }
            let ranges = try Int8Calibration.measure(g, s, batches: calib)
            let convs = Int8Precision.convolutions(g).map(\.name)
            let x = Tensor.randomNormal([8, 3, 32, 32], rng: &rng)
            let fp = try Executor(graph: g, batch: 8, mode: .inference, parameters: s)
            try fp.setInput(0, x)
            fp.forward()
            let f = fp.output().scalars
            func run(_ fp32: Set<String>) throws -> (Float, Int8Engine) {
                let e = try Int8Engine(graph: g, parameters: s, maxAbs: ranges, batch: 8, tactics: .alternatives, fp32Layers: fp32)
                try e.setInput(x)
                e.forward()
                return (relativeError(e.output().scalars, f), e)
            }
            let (allErr, all) = try run(Set(convs))
            XCTAssertEqual(all.fp32Convolutions, convs.count, name)
            XCTAssertEqual(all.int8Convolutions, 0, name)
            XCTAssertLessThan(allErr, 1e-5, "\(name): every convolution in fp32")
            let alternate = Set(convs.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))
            let (mixErr, mixed) = try run(alternate)
            XCTAssertEqual(mixed.fp32Convolutions, alternate.count, name)
            XCTAssertEqual(mixed.int8Convolutions + mixed.fusedDepthwise, convs.count - alternate.count, name)
            let (int8Err, _) = try run([])
            print("int8 \(name): relative error all int8 \(int8Err), every other convolution in fp32 \(mixErr), all fp32 \(allErr)")
            XCTAssertLessThan(mixErr, 0.1, name)
            XCTAssertLessThan(mixErr, int8Err, "\(name): half the convolutions in fp32 err less than none")
        }
    }

    /// `Int8Precision` measures each convolution's sensitivity and keeps the most sensitive ones in
    /// fp32 until the output error is at most the allowed one; its error is the engine's own.
    func testMixedPrecisionChoiceMeetsTheAllowedError() throws {
        let g = try DetectNetV2.build(DetectNetV2ModelConfig(backbone: ResNetConfig(depth: 10, classes: 1, inputShape: [3, 32, 48], stemMaxPool: false), classes: 2))
        let s = store(g)
        var rng = SplitMix64(seed: 5)
        let batches = (0..<2).map { _ in Tensor.randomNormal([4, 3, 32, 48], rng: &rng) }
        let ranges = try Int8Calibration.measure(g, s, batches: batches)
        let ref = try Int8Precision.reference(g, s, batches: batches)
        let convs = Int8Precision.convolutions(g)
        XCTAssertEqual(try Int8Precision.error(g, s, ranges: ranges, fp32Layers: Set(convs.map(\.name)), batches: batches, reference: ref), 0, accuracy: 1e-9)
        let loose = try Int8Precision.choose(g, s, ranges: ranges, batches: batches, maxError: 1)
        XCTAssertEqual(loose.fp32Layers, [], "within the allowed error: nothing in fp32")
        XCTAssertEqual(loose.int8MACShare, 1)
        XCTAssertGreaterThan(loose.int8Error, 0)
        let allowed = loose.int8Error / 3
        let c = try Int8Precision.choose(g, s, ranges: ranges, batches: batches, maxError: allowed)
        XCTAssertEqual(c.sensitivity.count, convs.count)
        // Tried by sensitivity per cost: a convolution's share of the multiply-adds plus 1%.
        let macsOf = Dictionary(uniqueKeysWithValues: convs.map { ($0.name, $0.macs) }), total = convs.reduce(0) { $0 + $1.macs }
        let perCost = c.sensitivity.map { $0.error / (macsOf[$0.layer]! / total + 0.01) }
        XCTAssertEqual(perCost, perCost.sorted(by: >))
        for (layer, e) in c.sensitivity.prefix(3) {
            XCTAssertEqual(e, try Int8Precision.error(g, s, ranges: ranges, fp32Layers: Set(convs.map(\.name)).subtracting([layer]), batches: batches, reference: ref),
                           accuracy: 1e-12, "sensitivity: \(layer) alone in int8")
        }
        XCTAssertLessThanOrEqual(c.error, allowed)
        XCTAssertFalse(c.fp32Layers.isEmpty)
        XCTAssertEqual(c.fp32Layers, c.sensitivity.prefix(c.fp32Layers.count).map(\.layer), "tried in that order")
        XCTAssertEqual(c.error, try Int8Precision.error(g, s, ranges: ranges, fp32Layers: Set(c.fp32Layers), batches: batches, reference: ref), accuracy: 1e-12)
        // One convolution fewer in fp32 would not have met the allowed error.
        XCTAssertGreaterThan(try Int8Precision.error(g, s, ranges: ranges, fp32Layers: Set(c.fp32Layers.dropLast()), batches: batches, reference: ref), allowed)
        let macs = convs.reduce(0) { $0 + $1.macs }, kept = convs.filter { !c.fp32Layers.contains($0.name) }.reduce(0) { $0 + $1.macs }
        XCTAssertEqual(c.int8MACShare, kept / macs, accuracy: 1e-12)
        XCTAssertLessThan(c.int8MACShare, 1)
    }

    /// ‖q − f‖ / ‖f‖.
    func relativeError(_ q: [Float], _ f: [Float]) -> Float {
        zip(q, f).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() / f.map { $0 * $0 }.reduce(0, +).squareRoot()
    }
}
