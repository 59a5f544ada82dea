import Foundation
import XCTest
import TaoData
import TaoReport
@testable import tao

/// `tao classification inference -m model.onnx` with a model that is not a classifier (PP-OCRv4's
/// text detector): every output of every image written raw as .npy, which numpy reads, with
/// onnxruntime's values for the same prepared input.
final class RawInferenceTests: XCTestCase {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func python(_ script: String, _ args: [String]) throws -> String {
        let p = Process(), out = Pipe()
        p.executableURL = repo.appendingPathComponent(".venv/bin/python")
        p.arguments = ["-c", script] + args
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return String(decoding: data, as: UTF8.self)
    }

    /// A classification spec that prepares 160×96 images as TAO's "tf" mode does, in `dir`.
    func writeSpec(_ dir: String) throws -> String {
        let spec = "\(dir)/spec.txt"
        try """
        model_config { arch: "resnet" n_layers: 10 input_image_size: "3,96,160" }
        train_config { train_dataset_path: "\(dir)/images" val_dataset_path: "\(dir)/images" preprocess_mode: "tf" batch_size_per_gpu: 2 n_epochs: 1
          optimizer { sgd { lr: 0.01 } } lr_config { step { learning_rate: 0.01 step_size: 10 gamma: 0.1 } } }
        eval_config { batch_size: 2 top_k: 1 }
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        return spec
    }

    /// The image at `path` as that spec prepares it: x/127.5 − 1 at 160×96, channels first.
    func prepared(_ path: String) throws -> [Float] {
        var x = [Float](repeating: 0, count: 3 * 96 * 160)
        let img = resize(try ImageCodec.decode(path: path, channels: 3), width: 160, height: 96)
        for c in 0..<3 { for i in 0..<(96 * 160) { x[c * 96 * 160 + i] = Float(img.pixels[i * 3 + c]) / 127.5 - 1 } }
        return x
    }

    func testADetectorsRawOutputsAsNPY() throws {
        let model = repo.appendingPathComponent(".venv/models/rapidocr/ch_PP-OCRv4_det_infer.onnx").path
        let photos = ["text.png", "coffee.png"].map { repo.appendingPathComponent("data/photos/\($0)").path }
        guard FileManager.default.fileExists(atPath: model), photos.allSatisfy(FileManager.default.fileExists) else {
            return XCTFail("the PP-OCR model or the photographs are missing: run scripts/install-deps.sh")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("raw-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/images", withIntermediateDirectories: true)
        // The photographs with a printed line drawn on each (the detector finds printed text).
        for (k, p) in photos.enumerated() {
            let canvas = CairoCanvas(image: try ImageCodec.decode(path: p, channels: 3))
            canvas.text(k == 0 ? "raw outputs" : "numpy reads", at: Point(40, 90), font: Font(size: 40, bold: true), color: RGB(15, 15, 15), anchor: .start, middle: false, rotation: 0)
            try Data(try ImageCodec.encodePNG(canvas.image())).write(to: URL(fileURLWithPath: "\(dir)/images/\((p as NSString).lastPathComponent)"))
        }
        let inputs = photos.map { "\(dir)/images/\(($0 as NSString).lastPathComponent)" }
        let spec = try writeSpec(dir)
        var command = try Tao.parseAsRoot(["classification", "inference", "-e", spec, "-m", model, "-d", "\(dir)/images", "-r", "\(dir)/out", "--quiet"])
        try command.run()
        let raw = "\(dir)/out/raw_outputs"
        let files = try FileManager.default.contentsOfDirectory(atPath: raw).filter { $0.hasSuffix(".npy") }.sorted()
        XCTAssertEqual(files.count, 2, "one output for each of two images: \(files)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(raw)/index.json"))
        // The same prepared input ("tf": x/127.5 − 1 at 160×96) through onnxruntime, against what numpy reads back.
        for (k, p) in inputs.enumerated() {
            let x = try prepared(p)
            let input = "\(dir)/in\(k).f32"
            try x.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: input))
            let stem = ((p as NSString).lastPathComponent as NSString).deletingPathExtension
            let npy = "\(raw)/\(files.first { $0.hasPrefix(stem + ".") }!)"
            let report = try python("""
                import sys, numpy as np, onnxruntime as ort
                s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
                x = np.fromfile(sys.argv[2], dtype=np.float32).reshape(1, 3, 96, 160)
                want = s.run(None, {s.get_inputs()[0].name: x})[0][0]
                got = np.load(sys.argv[3])
                print(list(got.shape), float(np.abs(got - want).max()), float(want.max()), sep="|")
                """, [model, input, npy])
            let parts = report.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").map(String.init)
            XCTAssertEqual(parts.first, "[1, 96, 160]", report)
            XCTAssertLessThanOrEqual(Double(parts[1]) ?? 1, 1e-4, "\(p): \(report)")
            XCTAssertGreaterThan(Double(parts[2]) ?? 0, 0.5, "\(p): the printed text is found: \(report)")
        }
    }

    /// A detector that ends in ArgMax and NonMaxSuppression (built with onnx.helper): the network
    /// runs in our executor, the two ops after it on each image, written as int64 .npy files that
    /// equal onnxruntime's for the same input (the selected rows exactly).
    func testPostNetworkOpsRunAtInference() throws {
        let photos = ["coffee.png", "astronaut.png"].map { repo.appendingPathComponent("data/photos/\($0)").path }
        guard photos.allSatisfy(FileManager.default.fileExists) else { return XCTFail("the photographs are missing: run scripts/install-deps.sh") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("post-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/images", withIntermediateDirectories: true)
        for p in photos { try FileManager.default.copyItem(atPath: p, toPath: "\(dir)/images/\((p as NSString).lastPathComponent)") }
        let model = "\(dir)/detector.onnx"
        _ = try python("""
            import sys, numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto as T
            rng = np.random.default_rng(4)
            init = [numpy_helper.from_array(rng.normal(size=(4, 3, 1, 1)).astype(np.float32) * 40, "wb"),
                    numpy_helper.from_array(rng.normal(size=(2, 3, 1, 1)).astype(np.float32) * 3, "ws"),
                    numpy_helper.from_array(np.array([0, 4, 16], np.int64), "s4"), numpy_helper.from_array(np.array([0, 2, 16], np.int64), "s2"),
                    numpy_helper.from_array(np.array([3], np.int64), "max"), numpy_helper.from_array(np.array([0.3], np.float32), "iou"),
                    numpy_helper.from_array(np.array([0.4], np.float32), "thr")]
            nodes = [helper.make_node("Conv", ["x", "wb"], ["cb"]), helper.make_node("AveragePool", ["cb"], ["pb"], kernel_shape=[24, 40], strides=[24, 40]),
                     helper.make_node("Reshape", ["pb", "s4"], ["rb"]), helper.make_node("Transpose", ["rb"], ["boxes"], perm=[0, 2, 1]),
                     helper.make_node("Conv", ["x", "ws"], ["cs"]), helper.make_node("AveragePool", ["cs"], ["ps"], kernel_shape=[24, 40], strides=[24, 40]),
                     helper.make_node("Reshape", ["ps", "s2"], ["rs"]), helper.make_node("Sigmoid", ["rs"], ["scores"]),
                     helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "thr"], ["selected"]),
                     helper.make_node("ArgMax", ["scores"], ["best"], axis=1, keepdims=0)]
            g = helper.make_graph(nodes, "det", [helper.make_tensor_value_info("x", T.FLOAT, [None, 3, 96, 160])],
                                  [helper.make_tensor_value_info("boxes", T.FLOAT, None), helper.make_tensor_value_info("selected", T.INT64, None),
                                   helper.make_tensor_value_info("best", T.INT64, None)], init)
            onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
            """, [model])
        let spec = try writeSpec(dir)
        var command = try Tao.parseAsRoot(["classification", "inference", "-e", spec, "-m", model, "-d", "\(dir)/images", "-r", "\(dir)/out", "--quiet"])
        try command.run()
        let raw = "\(dir)/out/raw_outputs"
        var kept = 0
        for p in photos {
            let x = try prepared(p)
            let input = "\(dir)/in.f32"
            try x.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: input))
            let stem = ((p as NSString).lastPathComponent as NSString).deletingPathExtension
            let report = try python("""
                import sys, numpy as np, onnxruntime as ort
                s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
                x = np.fromfile(sys.argv[2], dtype=np.float32).reshape(1, 3, 96, 160)
                boxes, selected, best = s.run(None, {"x": x})
                got = [np.load(f"{sys.argv[3]}.{n}.npy") for n in ("boxes", "selected", "best")]
                assert got[1].dtype == np.int64 and got[2].dtype == np.int64, [g.dtype for g in got]
                print(float(np.abs(got[0] - boxes[0]).max() / max(1, np.abs(boxes).max())), int(np.array_equal(got[1], selected)),
                      int(np.array_equal(got[2], best[0])), len(selected), list(got[1].shape), sep="|")
                """, [model, input, "\(raw)/\(stem)"])
            let parts = report.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").map(String.init)
            XCTAssertEqual(parts.count, 5, report)
            guard parts.count == 5 else { continue }
            XCTAssertLessThanOrEqual(Double(parts[0]) ?? 1, 1e-5, "\(stem) boxes: \(report)")
            XCTAssertEqual(parts[1], "1", "\(stem): NMS selects what onnxruntime selects: \(report)")
            XCTAssertEqual(parts[2], "1", "\(stem): ArgMax: \(report)")
            kept += Int(parts[3]) ?? 0
        }
        XCTAssertGreaterThan(kept, 0, "the test selects some boxes")
        let log = try String(contentsOfFile: "\(dir)/out/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("NonMaxSuppression") && log.contains("after the network"), log)
    }
}
