import XCTest
import Foundation
import TaoData
import TaoGraph
import TaoPrune
import TaoRuntime
import TaoTestSupport
@testable import TaoTasks

/// End-to-end classification on a tiny synthetic dataset whose classes differ by where a bright square sits.
final class ClassificationTaskTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("task-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: 1)
        for split in ["train", "val"] {
            for (c, name) in ["left", "right", "top"].enumerated() {
                let folder = dir.appendingPathComponent("\(split)/\(name)")
                try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for i in 0..<(split == "train" ? 24 : 8) {
                    var px = (0..<(16 * 16)).map { _ in UInt8(rng.next() % 60) }
                    for y in 0..<6 { for x in 0..<6 {
                        let (yy, xx) = c == 0 ? (5 + y, x) : c == 1 ? (5 + y, 10 + x) : (y, 5 + x)
                        px[yy * 16 + xx] = 220
                    } }
                    let png = try! ImageCodec.encodePNG(Image(width: 16, height: 16, channels: 1, pixels: px))
                    FileManager.default.createFile(atPath: folder.appendingPathComponent("\(i).png").path, contents: Data(png))
                }
            }
        }
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func spec(epochs: Int = 3, extraModel: String = "", pretrained: String? = nil, train: String = "train",
              arch: String = "arch: \"resnet\" n_layers: 10") -> String {
        let path = dir.appendingPathComponent("spec-\(UUID().uuidString).txt").path
        let text = """
        model_config { \(arch) use_pooling: False input_image_size: "1,16,16" \(extraModel) }
        train_config {
          train_dataset_path: "\(dir.path)/\(train)"
          val_dataset_path: "\(dir.path)/val"
          \(pretrained.map { "pretrained_model_path: \"\($0)\"" } ?? "")
          optimizer { sgd { lr: 0.05 momentum: 0.9 } }
          batch_size_per_gpu: 8
          n_epochs: \(epochs)
          n_workers: 2
          random_seed: 3
          preprocess_mode: "torch"
          disable_horizontal_flip: True   # left and right are the classes
          lr_config { cosine { learning_rate: 0.05 min_lr_ratio: 0.1 soft_start: 0.1 } }
        }
        eval_config { eval_dataset_path: "\(dir.path)/val" top_k: 2 batch_size: 10 }
        """
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    func testTrainsWritesResultsAndEvaluatesConsistently() throws {
        let task = try ClassificationTask(specPath: spec())
        let out = dir.appendingPathComponent("run").path
        let m = try task.train(resultsDir: out, quiet: true)
        XCTAssertGreaterThan(m["val_accuracy"]!, 0.9, "\(m)")
        for f in ["spec.txt", "train.log", "metrics.csv", "metrics.jsonl", "status.json", "weights/resnet10_003.tao", "plots/loss.png", "plots/accuracy.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(f)"), f)
        }
        XCTAssertEqual(try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").count, 4)
        let r = try task.evaluate(modelPath: "\(out)/weights/resnet10_003.tao", resultsDir: out, quiet: true)
        XCTAssertEqual(r.top1, m["val_accuracy"]!, accuracy: 1e-9)
        // Independent count: inference's top class against each image's folder.
        let preds = try task.inference(modelPath: "\(out)/weights/resnet10_003.tao", images: "\(dir.path)/val", resultsDir: out, quiet: true)
        let hits = preds.filter { p in p.0.contains("/\(p.1[0].0)/") }.count
        XCTAssertEqual(Double(hits) / Double(preds.count), r.top1, accuracy: 1e-9)
        let sheet = try ImageCodec.decode(path: "\(out)/inference_images.png", channels: 3)
        XCTAssertEqual([sheet.width, sheet.height], [8 * (128 + 8) + 8, 3 * (128 + 20 + 10) + 8], "24 images in rows of 8, captioned")
        XCTAssertEqual(r.confusion.flatMap { $0 }.reduce(0, +), 24)
        let status = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/status.json"))) as! [String: Any]
        XCTAssertEqual(status["state"] as? String, "done")
        try checkResultsFolder(out, classes: ["left", "right", "top"], epochs: 3, stepsPerEpoch: 72 / 8, evaluatedTop1: r.top1)
    }

    /// What a person finds in a finished run's folder: labelled plots (PNG and SVG whose text names
    /// the run, the axes and the classes), validation images, summary.md, and TensorBoard events
    /// that TensorBoard's own reader loads with metrics.csv's values.
    func checkResultsFolder(_ out: String, classes: [String], epochs: Int, stepsPerEpoch: Int, evaluatedTop1: Double?) throws {
        func svg(_ name: String) throws -> String { try String(contentsOfFile: "\(out)/plots/\(name).svg", encoding: .utf8) }
        for name in ["loss", "accuracy", "learning_rate"] + (evaluatedTop1 == nil ? [] : ["confusion_matrix", "per_class"]) {
            let png = try ImageCodec.decode(path: "\(out)/plots/\(name).png", channels: 3)
            XCTAssertGreaterThan(png.width * png.height, 300 * 250, name)
            XCTAssertTrue(try svg(name).contains(": \((out as NSString).lastPathComponent)"), "\(name): the run's name in the title")
        }
        for t in [">training loss<", ">validation loss<", ">epoch<", ">loss<"] { XCTAssertTrue(try svg("loss").contains(t), t) }
        for c in classes where evaluatedTop1 != nil {
            XCTAssertEqual(try svg("confusion_matrix").components(separatedBy: ">\(c)</text>").count - 1, 2, "\(c) on both axes")
            XCTAssertTrue(try svg("per_class").contains(">\(c)</text>"), c)
        }
        let sheet = try ImageCodec.decode(path: "\(out)/validation_images/epoch_\(String(format: "%03d", epochs)).png", channels: 3)
        XCTAssertEqual(sheet.width, 8 * (128 + 8) + 8, "16 validation images in rows of 8")
        struct Read: Decodable { var scalars: [String: [[Double]]]; var images: [String: [[Double]]]; var tensors: [String: Tensors] }
        struct Tensors: Decodable { var plugin: String }
        let read = try JSONDecoder().decode(Read.self, from: PythonReference.run("Tests/TaoReportTests/tensorboard_read.py", arguments: [out]))
        let lines = try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        for (i, name) in lines[0].enumerated() where name != "epoch" {
            let tb = try XCTUnwrap(read.scalars[name], "no TensorBoard scalar \(name)")
            XCTAssertEqual(tb.map { Int($0[0]) }, Array(1...epochs), name)
            for (row, event) in zip(lines.dropFirst(), tb) {
                let v = Double(row[i])!
                XCTAssertEqual(event[1], v, accuracy: 1e-5 * max(1, abs(v)), "\(name) at epoch \(event[0])")
            }
        }
        let steps = try JSONDecoder().decode(Read.self, from: PythonReference.run("Tests/TaoReportTests/tensorboard_read.py", arguments: ["\(out)/steps"]))
        XCTAssertEqual(steps.scalars["loss"]?.count, epochs * stepsPerEpoch)
        XCTAssertEqual(steps.scalars["learning_rate"]?.map { Int($0[0]) }, Array(1...(epochs * stepsPerEpoch)))
        if let evaluatedTop1 {
            XCTAssertEqual(read.scalars["evaluate/top1"]?.last?[1] ?? -1, evaluatedTop1, accuracy: 1e-6)
            let summary = try String(contentsOfFile: "\(out)/summary.md", encoding: .utf8)
            for t in [String(format: "top-1 accuracy **%.2f%%**", 100 * evaluatedTop1), "| val_accuracy |", "![loss](plots/loss.png)", "![confusion matrix (evaluate)](plots/confusion_matrix.png)", "Last `evaluate`: top-1 accuracy", "tao classification evaluate -e", "tao classification prune -m", "## Spec", "train_dataset_path"] {
                XCTAssertTrue(summary.contains(t), "summary.md lacks \(t)")
            }
        }
        XCTAssertEqual(read.tensors["spec"]?.plugin, "text")
        XCTAssertEqual(read.images["validation/images"]?.count, epochs)
    }

    func testResumeAfterInterruptionReachesTheSameWeights() throws {
        let path = spec(epochs: 2)
        let full = dir.appendingPathComponent("full").path, cut = dir.appendingPathComponent("cut").path
        try ClassificationTask(specPath: path).train(resultsDir: full, quiet: true)
        try ClassificationTask(specPath: path).train(resultsDir: cut, quiet: true)
        try FileManager.default.removeItem(atPath: "\(cut)/weights/resnet10_002.tao")   // as if killed during epoch 2
        try ClassificationTask(specPath: path).train(resultsDir: cut, quiet: true)
        let a = try Checkpoint.read(from: "\(full)/weights/resnet10_002.tao"), b = try Checkpoint.read(from: "\(cut)/weights/resnet10_002.tao")
        for i in 0..<a.parameters.count { XCTAssertEqual(a.parameters[i].scalars, b.parameters[i].scalars, a.graph.parameters[i].name) }
        XCTAssertTrue(try String(contentsOfFile: "\(cut)/train.log", encoding: .utf8).contains("resuming after epoch 1"))

        // --init_epoch 1 redoes epoch 2 from epoch 1's checkpoint: same weights, one metrics row per epoch,
        // and the replaced checkpoint is set aside rather than resumed from later.
        try ClassificationTask(specPath: path).train(resultsDir: cut, quiet: true, initEpoch: 1)
        let c = try Checkpoint.read(from: "\(cut)/weights/resnet10_002.tao")
        for i in 0..<a.parameters.count { XCTAssertEqual(a.parameters[i].scalars, c.parameters[i].scalars, a.graph.parameters[i].name) }
        let csv = try String(contentsOfFile: "\(cut)/metrics.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.map { $0.split(separator: ",")[0] }, ["epoch", "1", "2"])
        // Three runs wrote this folder's event files; TensorBoard retires what each restart redid.
        try checkResultsFolder(cut, classes: ["left", "right", "top"], epochs: 2, stepsPerEpoch: 72 / 8, evaluatedTop1: nil)
        XCTAssertEqual(try String(contentsOfFile: "\(cut)/metrics.jsonl", encoding: .utf8).split(separator: "\n").count, 2)
        XCTAssertThrowsError(try ClassificationTask(specPath: path).train(resultsDir: cut, quiet: true, initEpoch: 5)) {
            XCTAssertTrue("\($0)".contains("out of range"), "\($0)")
        }
        try FileManager.default.removeItem(atPath: "\(cut)/weights/resnet10_001.tao")
        XCTAssertThrowsError(try ClassificationTask(specPath: path).train(resultsDir: cut, quiet: true, initEpoch: 1)) {
            XCTAssertTrue("\($0)".contains("saved epochs: 2"), "\($0)")
        }
    }

    /// `--use_amp` (bf16 arithmetic): the run says what it does (or, without AVX512-BF16 / AMX, that it
    /// trains in fp32), its fp32 checkpoints evaluate in fp32, its loss stays within a few percent of
    /// an fp32 run's (0.02 of a loss that starts at 1.1), and a resumed bf16 run reaches the uninterrupted one's weights exactly.
    func testMixedPrecisionTrainingResumesAndLoadsInFP32() throws {
        let path = spec(epochs: 2)
        let full = dir.appendingPathComponent("amp").path, cut = dir.appendingPathComponent("amp_cut").path, plain = dir.appendingPathComponent("fp32").path
        let m = try ClassificationTask(specPath: path).train(resultsDir: full, quiet: true, arithmetic: .bf16)
        let log = try String(contentsOfFile: "\(full)/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains(Executor.supportsBF16 ? "mixed precision (--use_amp)" : "training in fp32"), log)
        let p = try ClassificationTask(specPath: path).train(resultsDir: plain, quiet: true)
        // (The loss falls from ln 3 ≈ 1.1 to near 0 on this easy task: compared in absolute terms.)
        XCTAssertEqual(m["loss"]!, p["loss"]!, accuracy: 0.02, "bf16 \(m) against fp32 \(p)")
        XCTAssertEqual(m["val_accuracy"]!, p["val_accuracy"]!, accuracy: 0.05, "bf16 \(m) against fp32 \(p)")
        try ClassificationTask(specPath: path).train(resultsDir: cut, quiet: true, arithmetic: .bf16)
        try FileManager.default.removeItem(atPath: "\(cut)/weights/resnet10_002.tao")
        try ClassificationTask(specPath: path).train(resultsDir: cut, quiet: true, arithmetic: .bf16)
        let a = try Checkpoint.read(from: "\(full)/weights/resnet10_002.tao"), b = try Checkpoint.read(from: "\(cut)/weights/resnet10_002.tao")
        for i in 0..<a.parameters.count { XCTAssertEqual(a.parameters[i].scalars, b.parameters[i].scalars, a.graph.parameters[i].name) }
        // The checkpoint is fp32 and evaluates as such: the validation accuracy the run recorded.
        let e = try ClassificationTask(specPath: path).evaluate(modelPath: "\(full)/weights/resnet10_002.tao", resultsDir: "\(full)/eval", quiet: true)
        XCTAssertEqual(e.top1, m["val_accuracy"]!, accuracy: 1e-9)
    }

    /// A model file written before model cards (its `tao.*` keys) still evaluates, prunes and exports;
    /// train writes TAO's classmap.json.
    func testCheckpointFromBeforeModelCardsStillEvaluatesPrunesAndExports() throws {
        let out = dir.appendingPathComponent("legacy").path
        let task = try ClassificationTask(specPath: spec(epochs: 1))
        try task.train(resultsDir: out, quiet: true)
        let map = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: URL(fileURLWithPath: "\(out)/classmap.json")))
        XCTAssertEqual(map, ["left": 0, "right": 1, "top": 2])
        // The folder as runs before TensorBoard events, SVG plots and summary.md left it.
        let fm = FileManager.default
        for f in try fm.contentsOfDirectory(atPath: out) where f.hasPrefix("events.out.tfevents") || ["steps", "summary.md", "validation_images"].contains(f) {
            try fm.removeItem(atPath: "\(out)/\(f)")
        }
        for f in try fm.contentsOfDirectory(atPath: "\(out)/plots") where f.hasSuffix(".svg") { try fm.removeItem(atPath: "\(out)/plots/\(f)") }
        try JSONSerialization.data(withJSONObject: ["state": "done", "epoch": 1, "epochs": 1, "checkpoint": "\(out)/weights/resnet10_001.tao"])
            .write(to: URL(fileURLWithPath: "\(out)/status.json"))
        let model = "\(out)/weights/resnet10_001.tao", old = "\(out)/old.tao"
        var ck = try Checkpoint.read(from: model)
        let card = try XCTUnwrap(try ck.card)
        XCTAssertEqual(card.classes, ["left", "right", "top"])
        XCTAssertEqual(card.inputShape, [1, 16, 16])
        XCTAssertEqual(card.epoch, 1)
        ck.metadata = ["tao.task": "classification", "tao.arch": "resnet10", "tao.classes": "[\"left\",\"right\",\"top\"]", "tao.epoch": "1",
                       "tao.input_shape": "1,16,16", "tao.preprocess_mode": "torch"]
        try ck.write(to: old)
        XCTAssertEqual(try Checkpoint.read(from: old).card, card, "the legacy keys give the same card")
        XCTAssertEqual(try task.evaluate(modelPath: old, resultsDir: out, quiet: true).top1, try task.evaluate(modelPath: model, resultsDir: out, quiet: true).top1)
        XCTAssertTrue(fm.fileExists(atPath: "\(out)/plots/confusion_matrix.svg"), "evaluate draws into the old folder")
        XCTAssertFalse(fm.fileExists(atPath: "\(out)/summary.md"), "no summary without the run's task and spec in status.json")
        var o = PruneOptions(); o.threshold = 0.3
        try ClassificationTask.prune(modelPath: old, output: "\(out)/old_pruned.tao", options: o, task: nil, resultsDir: out, quiet: true)
        XCTAssertEqual(try Checkpoint.read(from: "\(out)/old_pruned.tao").card?.pruned?.threshold, 0.3)
        try ClassificationTask.export(modelPath: old, output: "\(out)/old.onnx")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/old.onnx"))
        try ClassificationTask.export(modelPath: old, output: "\(out)/old.onnx", classMap: "\(out)/classmap.json")
        try JSONSerialization.data(withJSONObject: ["left": 0, "top": 1, "right": 2]).write(to: URL(fileURLWithPath: "\(out)/other.json"))
        XCTAssertThrowsError(try task.inference(modelPath: old, images: "\(dir.path)/val/left", resultsDir: out, classMap: "\(out)/other.json", quiet: true)) {
            XCTAssertTrue("\($0)".contains("lists left, top, right, but"), "\($0)")
        }
    }

    /// Train, prune, retrain the pruned graph as it is, evaluate it; and the prune command's errors.
    func testPruneThenRetrainThePrunedModel() throws {
        let base = dir.appendingPathComponent("base").path
        try ClassificationTask(specPath: spec(epochs: 2, extraModel: "use_batch_norm: true")).train(resultsDir: base, quiet: true)
        let pruned = dir.appendingPathComponent("pruned.tao").path, report = dir.appendingPathComponent("prune").path
        var o = PruneOptions(); o.normalizer = .l2   // scores near 1/√n: the wide layers fall below 0.1
        let task = try ClassificationTask(specPath: spec())
        let r = try ClassificationTask.prune(modelPath: "\(base)/weights/resnet10_002.tao", output: pruned, options: o, task: task, resultsDir: report, quiet: true)
        XCTAssertLessThan(r.parametersAfter, r.parametersBefore)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(report)/prune_report.json"))) as! [String: Any]
        XCTAssertEqual(json["parameters_after"] as? Int, r.parametersAfter)
        XCTAssertNotNil(json["val_accuracy_after_pruning"] as? Double)
        let bn = try XCTUnwrap(json["val_accuracy_after_bn_reestimation"] as? Double, "batch norms measured again on training images")
        XCTAssertTrue((0...1).contains(bn))
        XCTAssertTrue(try String(contentsOfFile: "\(report)/train.log", encoding: .utf8).contains("batch-norm statistics of"))
        let small = try Checkpoint.read(from: pruned)
        XCTAssertEqual(small.graph.trainableParameterCount, r.parametersAfter)

        let retrain = dir.appendingPathComponent("retrain").path
        let m = try ClassificationTask(specPath: spec(epochs: 1, pretrained: pruned)).train(resultsDir: retrain, quiet: true)
        let after = try Checkpoint.read(from: "\(retrain)/weights/resnet10_001.tao")
        XCTAssertEqual(after.graph.parameters.map(\.shape), small.graph.parameters.map(\.shape), "the pruned graph trains as it is")
        XCTAssertEqual(try after.card?.pruned?.source, "\(base)/weights/resnet10_002.tao", "the card says where the pruned graph came from")
        XCTAssertTrue(try String(contentsOfFile: "\(retrain)/train.log", encoding: .utf8).contains("retraining the pruned model"))
        let e = try task.evaluate(modelPath: "\(retrain)/weights/resnet10_001.tao", resultsDir: retrain, quiet: true)
        XCTAssertEqual(e.top1, m["val_accuracy"]!, accuracy: 1e-9)

        XCTAssertThrowsError(try ClassificationTask.prune(modelPath: "\(base)/spec.txt", output: pruned, options: o, task: nil, resultsDir: report, quiet: true)) {
            XCTAssertTrue("\($0)".contains("spec.txt"), "\($0)")
        }
        o.excludedLayers = ["layer7.0.conv1"]
        XCTAssertThrowsError(try ClassificationTask.prune(modelPath: pruned, output: pruned, options: o, task: nil, resultsDir: report, quiet: true)) {
            XCTAssertTrue("\($0)".contains("'layer7.0.conv1' does not exist"), "\($0)")
        }
    }

    /// ONNX export, INT8 calibration into an engine file, and evaluation through the INT8 engine.
    func testExportAndInt8EngineMatchFP32() throws {
        let out = dir.appendingPathComponent("int8").path
        let task = try ClassificationTask(specPath: spec())
        try task.train(resultsDir: out, quiet: true)
        let model = "\(out)/weights/resnet10_003.tao", onnx = "\(out)/model.onnx", engine = "\(out)/model.int8.tao"
        try ClassificationTask.export(modelPath: model, output: onnx)
        XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: onnx)[.size] as? Int) ?? 0, 1_000_000)
        let ranges = try task.calibrate(modelPath: model, imageDir: "\(dir.path)/train", batches: 4, batchSize: 6, method: .max)
        XCTAssertNotNil(ranges["conv1"])
        // Entropy calibration (the default) clips within the largest magnitudes, never beyond.
        let entropy = try task.calibrate(modelPath: model, imageDir: "\(dir.path)/train", batches: 4, batchSize: 6)
        XCTAssertEqual(Set(entropy.keys), Set(ranges.keys))
        for (k, m) in ranges { XCTAssertTrue(entropy[k]! <= m * 1.0001 && (m == 0 || entropy[k]! > 0), "\(k): \(entropy[k]!) vs max \(m)") }
        try ClassificationTask.writeEngine(modelPath: model, ranges: ranges, to: engine)
        let fp32 = try task.evaluate(modelPath: model, resultsDir: out, quiet: true)
        let int8 = try task.evaluate(modelPath: engine, resultsDir: out, quiet: true)
        XCTAssertEqual(int8.top1, fp32.top1, accuracy: 1.0 / 24 + 1e-9, "at most one of 24 images changes its class")
        XCTAssertTrue(try String(contentsOfFile: "\(out)/train.log", encoding: .utf8).contains("(INT8 engine)"))
        let preds = try task.inference(modelPath: engine, images: "\(dir.path)/val/left", resultsDir: out, quiet: true)
        XCTAssertEqual(preds.count, 8)
        // The kernel choice travels in the engine file; the direct kernels give the same classes here too.
        let direct = "\(out)/model.direct.int8.tao"
        try ClassificationTask.writeEngine(modelPath: model, ranges: ranges, tactics: .direct, to: direct)
        XCTAssertEqual(try Checkpoint.read(from: direct).card?.int8?.tactics, "direct")
        XCTAssertEqual(try Checkpoint.read(from: engine).card?.int8?.tactics, "timed")
        XCTAssertEqual(try task.evaluate(modelPath: direct, resultsDir: out, quiet: true).top1, fp32.top1, accuracy: 1.0 / 24 + 1e-9)
        let empty = dir.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try task.calibrate(modelPath: model, imageDir: empty, batches: 2, batchSize: 2)) {
            XCTAssertTrue("\($0)".contains("calibration folder \(empty) has no .jpg, .jpeg or .png images"), "\($0)")
        }
        XCTAssertThrowsError(try task.calibrate(modelPath: model, imageDir: "\(empty)/missing", batches: 2, batchSize: 2)) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
    }

    /// `export --data_type bf16`: a bf16 engine file (no optimizer state) that evaluate and inference
    /// run in bf16 where the processor has it — the same classes as fp32, scores within bf16's
    /// rounding but not equal — and in fp32, said so, where it has not.
    func testBF16EngineFileEvaluatesLikeFP32() throws {
        let out = dir.appendingPathComponent("bf16").path
        let task = try ClassificationTask(specPath: spec())
        try task.train(resultsDir: out, quiet: true)
        let model = "\(out)/weights/resnet10_003.tao", engine = "\(out)/model.bf16.tao"
        var lines: [String] = []
        try ClassificationTask.writeBF16Engine(modelPath: model, to: engine) { lines.append($0) }
        XCTAssertTrue(lines.last?.contains("wrote the bf16 engine file \(engine)") ?? false, "\(lines)")
        let file = try Checkpoint.read(from: engine)
        XCTAssertEqual(try file.card?.arithmetic, "bf16")
        XCTAssertTrue(file.extras.isEmpty, "an engine file carries no optimizer state")
        XCTAssertFalse(try Checkpoint.read(from: model).extras.isEmpty)
        let fp32 = try task.evaluate(modelPath: model, resultsDir: out, quiet: true)
        let bf16 = try task.evaluate(modelPath: engine, resultsDir: out, quiet: true)
        XCTAssertEqual(bf16.top1, fp32.top1, accuracy: 1.0 / 24 + 1e-9, "at most one of 24 images changes its class")
        let log = try String(contentsOfFile: "\(out)/train.log", encoding: .utf8)
        let p32 = try task.inference(modelPath: model, images: "\(dir.path)/val", resultsDir: out, quiet: true)
        let p16 = try task.inference(modelPath: engine, images: "\(dir.path)/val", resultsDir: out, quiet: true)
        XCTAssertEqual(p16.count, 24)
        XCTAssertEqual(p32.map(\.0), p16.map(\.0))
        XCTAssertGreaterThanOrEqual(zip(p32, p16).filter { $0.1[0].0 == $1.1[0].0 }.count, 23)
        // The logits of the engine's runner against fp32's, on random input.
        let (ck, card) = try ClassificationTask.loadModel(engine)
        var rng = SplitMix64(seed: 9)
        let x = Tensor.randomNormal(Shape([4, 1, 16, 16]), rng: &rng)
        func logits(_ settings: EngineSettings) throws -> [Float] {
            let r = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: 4, engine: settings)
            r.load((0..<4).map { Array(x.scalars[$0 * 256..<($0 + 1) * 256]) }, per: 256)
            r.forward()
            return Array(UnsafeBufferPointer(start: r.outputPointer(), count: 12))
        }
        let y32 = try logits(.fp32), y16 = try logits(try ClassificationTask.engineSettings(card))
        let norm = y32.map { $0 * $0 }.reduce(0, +).squareRoot(), diff = zip(y32, y16).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        if Executor.supportsBF16 {
            XCTAssertTrue(log.contains("\(engine) (bf16 engine"), log)
            // Eleven bf16 layers deep (2u each at most, u = 2⁻⁸): within 22u norm-wise, and not fp32's.
            XCTAssertGreaterThan(diff, 0, "the bf16 engine gave fp32's logits exactly: it did not run in bf16")
            XCTAssertLessThan(diff / norm, 22.0 / 256)
        } else {
            XCTAssertTrue(log.contains("a bf16 engine file, run in fp32"), log)
            XCTAssertEqual(diff, 0)
        }
        // The ONNX metadata of a model exported from the engine file is the fp32 model's card.
        try ClassificationTask.export(modelPath: engine, output: "\(out)/again.onnx")
        let reread = try ClassificationTask.readCheckpoint("\(out)/again.onnx")
        XCTAssertNil(try reread.card?.arithmetic)
        // An INT8 engine file is not a source for a bf16 one.
        let ranges = try task.calibrate(modelPath: model, imageDir: "\(dir.path)/train", batches: 1, batchSize: 4, method: .max)
        try ClassificationTask.writeEngine(modelPath: model, ranges: ranges, to: "\(out)/m.int8.tao")
        XCTAssertThrowsError(try ClassificationTask.writeBF16Engine(modelPath: "\(out)/m.int8.tao", to: "\(out)/x.tao")) {
            XCTAssertTrue("\($0)".contains("is an INT8 engine file"), "\($0)")
        }
    }

    /// The divergence hint for freeze_bn names the frozen batch norm that amplifies most.
    func testLargestFrozenBatchNormGain() throws {
        var b = GraphBuilder()
        let x = b.input("x", [2, 4, 4])
        let y = b.batchNorm(b.conv2d(b.batchNorm(x, "bn0"), "c", out: 3, kernel: 1), "bn1", epsilon: 0)
        let g = try b.build(outputs: [y])
        let s = ParameterStore(graph: g, seed: 1)
        s[s.index(of: "bn1.weight")!] = Tensor(shape: [3], values: [1, -2, 0.5])
        s[s.index(of: "bn1.running_var")!] = Tensor(shape: [3], values: [1, 0.01, 1])
        let (name, gain) = try XCTUnwrap(FrozenBatchNorm.largestGain(g, s, ["bn0", "bn1"]))
        XCTAssertEqual(name, "bn1")
        XCTAssertEqual(gain, 20, accuracy: 1e-4)   // |−2| / √0.01
        XCTAssertNil(FrozenBatchNorm.largestGain(g, s, []))
    }

    /// `export --data_type int8`: calibrate and write the cache, the QDQ ONNX and the engine; a
    /// second export reuses the cache; missing or foreign caches are clear errors.
    func testInt8ExportWritesCacheQDQAndEngine() throws {
        let out = dir.appendingPathComponent("int8x").path
        let spec = spec(epochs: 1, extraModel: "use_batch_norm: true")
        try ClassificationTask(specPath: spec).train(resultsDir: out, quiet: true)
        let model = "\(out)/weights/resnet10_001.tao"
        var o = ClassificationTask.Int8Export(output: "\(out)/m.onnx")
        (o.spec, o.imageDir, o.batches, o.batchSize, o.tactics) = (spec, "\(dir.path)/train", 2, 4, .direct)
        var lines: [String] = []
        let first = try ClassificationTask.exportInt8(modelPath: model, o) { lines.append($0) }
        XCTAssertEqual(first.cache, "\(out)/m.calib.json")
        XCTAssertEqual(first.qdq, "\(out)/m.int8.onnx")
        XCTAssertEqual(first.engine, "\(out)/m.int8.tao")
        for f in [first.cache, first.qdq, first.engine] { XCTAssertTrue(FileManager.default.fileExists(atPath: f), f) }
        XCTAssertEqual(lines.count, 3, "\(lines)")
        XCTAssertEqual(try Checkpoint.read(from: first.engine).card?.int8?.tactics, "direct")
        // The QDQ file evaluates as an imported fp32 model, and the log says how it was imported.
        let task = try ClassificationTask(specPath: spec)
        let fp32 = try task.evaluate(modelPath: model, resultsDir: out, quiet: true)
        let qdq = try task.evaluate(modelPath: first.qdq, resultsDir: out, quiet: true)
        XCTAssertEqual(qdq.top1, fp32.top1, accuracy: 1.0 / 24 + 1e-9)
        XCTAssertTrue(try String(contentsOfFile: "\(out)/train.log", encoding: .utf8).contains("\(first.qdq): ran "), "import notes are logged")

        // From the cache alone, to other names: the same ranges.
        var again = ClassificationTask.Int8Export(output: "\(out)/n.onnx")
        again.cacheFile = first.cache
        let second = try ClassificationTask.exportInt8(modelPath: model, again)
        XCTAssertEqual(second.engine, "\(out)/n.int8.tao")
        let ranges = { (path: String) in try XCTUnwrap(try Checkpoint.read(from: path).card?.int8?.ranges) }
        XCTAssertEqual(try ranges(second.engine), try ranges(first.engine))
        XCTAssertGreaterThan(try ranges(first.engine).count, 20)

        XCTAssertThrowsError(try ClassificationTask.exportInt8(modelPath: model, ClassificationTask.Int8Export(output: "\(out)/x.onnx"))) {
            XCTAssertTrue("\($0)".contains("needs --cal_image_dir"), "\($0)")
        }
        var foreign = ClassificationTask.Int8Export(output: "\(out)/x.onnx")
        foreign.cacheFile = spec
        XCTAssertThrowsError(try ClassificationTask.exportInt8(modelPath: model, foreign)) {
            XCTAssertTrue("\($0)".contains("is not a calibration file"), "\($0)")
        }
        foreign.cacheFile = "\(out)/missing.json"
        XCTAssertThrowsError(try ClassificationTask.exportInt8(modelPath: model, foreign)) {
            XCTAssertTrue("\($0)".contains("cannot be read"), "\($0)")
        }
        var noSpec = ClassificationTask.Int8Export(output: "\(out)/x.onnx")
        noSpec.imageDir = "\(dir.path)/train"
        XCTAssertThrowsError(try ClassificationTask.exportInt8(modelPath: model, noSpec)) {
            XCTAssertTrue("\($0)".contains("needs the spec"), "\($0)")
        }
    }

    func testMixupMixesTargetsAndScoresTheDominantLabel() throws {
        let task = try ClassificationTask(specPath: spec())
        var x: [Float] = [1, 1, 2, 2, 3, 3]   // three samples of two values
        let (soft, dominant) = x.withUnsafeMutableBufferPointer { task.mixup($0.baseAddress!, labels: [0, 1, 2], classes: 3, lambda: 0.25, perSample: 2) }
        XCTAssertEqual(x, [2.5, 2.5, 2, 2, 1.5, 1.5])
        XCTAssertEqual(soft, [0.25, 0, 0.75, 0, 1, 0, 0.75, 0, 0.25])
        XCTAssertEqual(dominant, [2, 1, 0])
        var y: [Float] = [1, 3]
        XCTAssertEqual(y.withUnsafeMutableBufferPointer { task.mixup($0.baseAddress!, labels: [0, 1], classes: 2, lambda: 0.75, perSample: 1) }.dominant, [0, 1])
    }

    func testFreezeBlocksKeepsThoseWeights() throws {
        let task = try ClassificationTask(specPath: spec(epochs: 1, extraModel: "freeze_blocks: 0 freeze_blocks: 2"))
        let out = dir.appendingPathComponent("frozen").path
        try task.train(resultsDir: out, quiet: true)
        let after = try Checkpoint.read(from: "\(out)/weights/resnet10_001.tao")
        let initial = ParameterStore(graph: after.graph, seed: 3)
        for (i, p) in after.graph.parameters.enumerated() {
            let same = after.parameters[i].scalars == initial[i].scalars
            if p.name.hasPrefix("conv1.") || p.name.hasPrefix("bn1.") || p.name.hasPrefix("layer2.") { XCTAssertTrue(same, p.name) }
            if p.name.hasPrefix("layer1.0.conv1.") || p.name == "fc.weight" { XCTAssertFalse(same, p.name) }
        }
    }

    /// TAO's other backbones train from a spec with their activation and freeze_blocks honoured.
    func testCSPDarkNetTinyWithMishAndFrozenBlocks() throws {
        let task = try ClassificationTask(specPath: spec(epochs: 1, extraModel: "freeze_blocks: 1 activation { activation_type: \"mish\" }",
                                                         arch: "arch: \"cspdarknet_tiny\""))
        let out = dir.appendingPathComponent("tiny").path
        try task.train(resultsDir: out, quiet: true)
        let after = try Checkpoint.read(from: "\(out)/weights/cspdarknet_tiny_001.tao")
        XCTAssertTrue(after.graph.nodes.contains { $0.op == .activation(.mish) })
        XCTAssertFalse(after.graph.nodes.contains { $0.op == .activation(.leakyRelu(alpha: 0.1)) })
        let initial = ParameterStore(graph: after.graph, seed: 3)
        for (i, p) in after.graph.parameters.enumerated() where p.name.hasSuffix(".conv.weight") {
            XCTAssertEqual(after.parameters[i].scalars == initial[i].scalars, p.name.hasPrefix("block1."), p.name)
        }
        let leaky = try ClassificationTask(specPath: spec(epochs: 1, extraModel: "activation { activation_type: \"leaky_relu\" activation_parameters { key: \"alpha\" value: 0.2 } }"))
        let g = try ClassificationTask.buildModel(leaky.config, classes: 3)
        XCTAssertTrue(g.nodes.contains { $0.op == .activation(.leakyRelu(alpha: 0.2)) }, "resnet takes the spec's activation")
    }

    func testPretrainedModelWithAnotherHeadIsLoadedAndReported() throws {
        // Pretrain on two of the classes, then fine-tune on all three.
        let two = dir.appendingPathComponent("two")
        try FileManager.default.createDirectory(at: two, withIntermediateDirectories: true)
        for c in ["left", "right"] { try FileManager.default.copyItem(at: dir.appendingPathComponent("train/\(c)"), to: two.appendingPathComponent(c)) }
        let pre = dir.appendingPathComponent("pre").path
        let preSpec = spec(epochs: 1, train: "two").replacingOccurrences(of: "", with: "")
        var text = try String(contentsOfFile: preSpec, encoding: .utf8)
        text = text.replacingOccurrences(of: "\(dir.path)/val", with: "\(dir.path)/two")
        try Data(text.utf8).write(to: URL(fileURLWithPath: preSpec))
        try ClassificationTask(specPath: preSpec).train(resultsDir: pre, quiet: true)
        let out = dir.appendingPathComponent("fine").path
        try ClassificationTask(specPath: spec(epochs: 1, pretrained: "\(pre)/weights/resnet10_001.tao")).train(resultsDir: out, quiet: true)
        let log = try String(contentsOfFile: "\(out)/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("newly initialized: fc.weight [3,512] (was [2,512]), fc.bias [3] (was [2])"), log)
        let noMatch = try? ClassificationTask(specPath: spec(epochs: 1, pretrained: "\(pre)/spec.txt")).train(resultsDir: dir.appendingPathComponent("x").path, quiet: true)
        XCTAssertNil(noMatch, "a file that is not a model must be refused")
    }
}
