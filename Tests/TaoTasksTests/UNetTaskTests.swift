import XCTest
import TaoData
import TaoGraph
import TaoONNX
import TaoPrune
import TaoRuntime
import TaoTensor
import TaoTrain
import TaoTestSupport
@testable import TaoTasks

final class UNetTaskTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "unet-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Scenes of `w` × `h`: noisy grey with a red rectangle (label 10) and a blue one (label 20, or
    /// 21 for "navy", which maps onto blue), masks of those label_ids.
    func scenes(_ split: String, count: Int, w: Int = 32, h: Int = 32, seed: UInt64) throws {
        for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: "\(dir!)/\(split)/\(sub)", withIntermediateDirectories: true) }
        var rng = SplitMix64(seed: seed)
        func uniform(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(rng.next() % UInt64(r.count)) }
        for n in 0..<count {
            var img = Image(width: w, height: h, channels: 3, pixels: (0..<(w * h * 3)).map { _ in UInt8(100 + rng.next() % 60) })
            var mask = [UInt8](repeating: 0, count: w * h)
            for (label, color) in [(10, [230, 40, 40]), (n % 3 == 0 ? 21 : 20, [40, 40, 230])] {
                let (rw, rh) = (uniform(6...14), uniform(6...14))
                let (x0, y0) = (uniform(0...(w - rw)), uniform(0...(h - rh)))
                for y in y0..<(y0 + rh) {
                    for x in x0..<(x0 + rw) {
                        mask[y * w + x] = UInt8(label)
                        for k in 0..<3 { img.pixels[(y * w + x) * 3 + k] = UInt8(max(0, min(255, color[k] + Int(rng.next() % 30) - 15))) }
                    }
                }
            }
            let name = String(format: "%04d.png", n)
            try Data(try ImageCodec.encodePNG(img)).write(to: URL(fileURLWithPath: "\(dir!)/\(split)/images/\(name)"))
            try Data(try ImageCodec.encodePNG(Image(width: w, height: h, channels: 1, pixels: mask))).write(to: URL(fileURLWithPath: "\(dir!)/\(split)/masks/\(name)"))
        }
    }

    func spec(arch: String = "resnet", layers: Int = 10, epochs: Int, loss: String = "cross_entropy", extraModel: String = "", w: Int = 32, h: Int = 32,
              batch: Int = 8, augment: Bool = false, batchNorm: Bool = true, learningRate: Double = 0.002, adamEpsilon: Double = 1e-7) throws -> String {
        let text = """
        random_seed: 42
        model_config {
          arch: "\(arch)" num_layers: \(layers) model_input_width: \(w) model_input_height: \(h) model_input_channels: 3
          all_projections: true use_batch_norm: \(batchNorm) \(extraModel)
        }
        training_config {
          batch_size: \(batch) epochs: \(epochs) checkpoint_interval: 1 loss: "\(loss)" learning_rate: \(learningRate)
          optimizer { adam { epsilon: \(adamEpsilon) beta1: 0.9 beta2: 0.999 } }
        }
        dataset_config {
          augment: \(augment) input_image_type: "color" preprocess: "min_max_-1_1"
          train_images_path: "\(dir!)/train/images" train_masks_path: "\(dir!)/train/masks"
          val_images_path: "\(dir!)/val/images" val_masks_path: "\(dir!)/val/masks"
          test_images_path: "\(dir!)/val/images"
          data_class_config {
            target_classes { name: "background" mapping_class: "background" label_id: 0 }
            target_classes { name: "red" mapping_class: "red" label_id: 10 }
            target_classes { name: "blue" mapping_class: "blue" label_id: 20 }
            target_classes { name: "navy" mapping_class: "blue" label_id: 21 }
          }
        }
        """
        let path = "\(dir!)/spec_\(arch)_\(epochs)_\(UUID().uuidString.prefix(6)).txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Reference: Decodable { var confusion: [[Int]]; var iou: [Double?]; var mean_iou: Double }

    /// onnxruntime's logits from the exported `onnx` on the first `images` validation inputs equal
    /// those of the checkpoint `ck` in our executor (within 1e-4 of their scale). Returns our logits
    /// and the files of the inputs and of onnxruntime's outputs.
    @discardableResult
    func checkAgainstONNXRuntime(_ task: UNetTask, _ ck: Checkpoint, _ onnx: String, images: Int) throws -> (ours: [Float], input: String, output: String) {
        let prep = task.preparation()
        let inputs = try task.data().val.prefix(images).map { prep.input(try prep.load($0).image) }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: images)
        runner.load(inputs, per: inputs[0].count)
        runner.forward()
        let outShape = ck.graph.shape(of: ck.graph.outputs[0]).dims
        let ours = Array(UnsafeBufferPointer(start: runner.outputPointer(0), count: images * outShape.reduce(1, *)))
        let bin = "\(dir!)/x.f32", yBin = "\(dir!)/y.f32"
        try inputs.flatMap { $0 }.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: bin))
        let shape = [images] + task.config.inputShape
        _ = try PythonReference.run("Tests/TaoONNXTests/onnx_check.py", arguments: [onnx, bin, yBin] + shape.map(String.init))
        let theirs = try Data(contentsOf: URL(fileURLWithPath: yBin)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(theirs.count, ours.count)
        let scale = ours.map(abs).max()!
        XCTAssertLessThan(zip(ours, theirs).map { abs($0 - $1) }.max()!, 1e-4 * max(1, scale), "logits of magnitude up to \(scale)")
        return (ours, bin, yBin)
    }

    /// Data parallelism on the shared training run, for a task other than classification: two ranks
    /// (threads of this process) of batch 4 at TAO's doubled rate train a UNet (without batch norm,
    /// whose batch statistics would differ) like one process of batch 8: the same weights after an
    /// epoch of 4 Adam steps, to float rounding; rank 0 alone writes the folder. (Adam's ε is 1 here:
    /// with 1e-7 the first steps move each weight by ±lr whatever its gradient's size, so rounding
    /// differences in gradients near 0 become differences of ±lr in the weights.)
    func testTwoRanksTrainLikeOneProcessOfTheDoubleBatch() throws {
        try scenes("train", count: 32, seed: 1)
        try scenes("val", count: 8, seed: 2)
        try UNetTask(specPath: try spec(epochs: 1, batch: 8, batchNorm: false, learningRate: 0.2, adamEpsilon: 1)).train(resultsDir: "\(dir!)/one", quiet: true)
        let two = try spec(epochs: 1, batch: 4, batchNorm: false, learningRate: 0.1, adamEpsilon: 1)
        let group = LocalGroup(size: 2, timeout: 120)
        let done = DispatchGroup(), lock = NSLock(), out = "\(dir!)/two"
        nonisolated(unsafe) var errors: [Error] = [], metrics: [[String: Double]] = [[:], [:]]
        for r in 0..<2 {
            done.enter()
            Thread {
                do {
                    let m = try UNetTask(specPath: two).train(resultsDir: out, quiet: true, collective: group.ranks[r])
                    lock.lock(); metrics[r] = m; lock.unlock()
                } catch { lock.lock(); errors.append(error); lock.unlock(); group.abandon("rank \(r) failed: \(error)") }
                done.leave()
            }.start()
        }
        done.wait()
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        XCTAssertNotNil(metrics[0]["val_mIoU"]); XCTAssertTrue(metrics[1].isEmpty, "rank 1 reports nothing")
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir!)/one/weights").filter { $0.hasSuffix(".tao") }
        XCTAssertEqual(files.count, 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir!)/two/weights").filter { $0.hasSuffix(".tao") }, files)
        let a = try Checkpoint.read(from: "\(dir!)/one/weights/\(files[0])"), b = try Checkpoint.read(from: "\(dir!)/two/weights/\(files[0])")
        let (wa, wb) = ((0..<a.parameters.count).flatMap { a.parameters[$0].scalars }, (0..<b.parameters.count).flatMap { b.parameters[$0].scalars })
        let task = try UNetTask(specPath: two), fresh = try task.buildModel(classes: ["background", "red", "blue"])
        let start = ParameterStore(graph: fresh, seed: task.settings.seed)
        let w0 = (0..<start.count).flatMap { start[$0].scalars }
        let moved = zip(wa, w0).map { abs($0 - $1) }.max()!
        let diff = zip(wa, wb).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(moved, 1e-3, "the epoch moved the weights")
        XCTAssertLessThan(diff, 1e-3 * moved, "max |Δw| \(diff), the epoch moved weights by up to \(moved)")
        let log = try String(contentsOfFile: "\(dir!)/two/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("data-parallel training on 2 ranks: batch_size_per_gpu 4 each (global batch 8)"), log)
    }

    /// A ResNet-10 UNet learns the scenes; evaluate's confusion matrix, IoUs and mean IoU equal
    /// numpy's over the masks inference wrote; the exported ONNX gives onnxruntime's logits; the
    /// INT8 engine's mean IoU is within a point of fp32's; prune keeps the head and retrains.
    func testTrainEvaluateInferenceExportInt8Prune() throws {
        try scenes("train", count: 96, seed: 1)
        try scenes("val", count: 16, seed: 2)
        let specPath = try spec(epochs: 5, augment: true)
        let task = try UNetTask(specPath: specPath)
        XCTAssertEqual(task.config.classes, ["background", "red", "blue"])
        let m = try task.train(resultsDir: "\(dir!)/run", quiet: true)
        print("unet scenes: \(m)")
        XCTAssertGreaterThan(m["val_mIoU"]!, 0.8, "the scenes are learnt")
        let header = try String(contentsOfFile: "\(dir!)/run/metrics.csv", encoding: .utf8).split(separator: "\n")[0]
        XCTAssertTrue(header.hasPrefix("epoch,lr,loss,loss_ce,val_mIoU,val_IoU_background,val_IoU_red,val_IoU_blue"), String(header))
        let model = "\(dir!)/run/weights/resnet10_005.tao"

        let e = try task.evaluate(modelPath: model, resultsDir: "\(dir!)/eval", quiet: true)
        XCTAssertEqual(e.meanIoU, m["val_mIoU"]!, accuracy: 1e-12, "evaluate measures as validation does")
        try task.inference(modelPath: model, outputDir: "\(dir!)/infer", quiet: true)
        let out = try PythonReference.run("Tests/TaoTasksTests/segmentation_miou.py",
                                          arguments: ["\(dir!)/val/masks", "\(dir!)/infer/mask_labels_tlt", "{\"0\": 0, \"10\": 1, \"20\": 2, \"21\": 2}", "3"])
        let ref = try JSONDecoder().decode(Reference.self, from: out)
        XCTAssertEqual(ref.confusion, e.confusion.counts)
        XCTAssertEqual(ref.mean_iou, e.meanIoU, accuracy: 1e-12)
        for c in 0..<3 { XCTAssertEqual(ref.iou[c]!, e.confusion.scores(c).iou!, accuracy: 1e-12) }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir!)/eval/evaluation.json"))) as! [String: Any]
        XCTAssertEqual(json["mean_iou"] as! Double, ref.mean_iou, accuracy: 1e-12)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir!)/infer/vis_overlay_tlt/0003.png"))

        // ONNX: onnxruntime's logits on the validation inputs equal ours.
        let onnx = "\(dir!)/unet.onnx"
        try UNetTask.export(modelPath: model, output: onnx)
        let (ck, _) = try UNetTask.loadModel(model)
        let (ours, bin, yBin) = try checkAgainstONNXRuntime(task, ck, onnx, images: 4)
        XCTAssertEqual(try task.evaluate(modelPath: onnx, resultsDir: "\(dir!)/onnx_eval", quiet: true).meanIoU, e.meanIoU, accuracy: 1e-3)

        // INT8: calibrated on the training images, the engine (transposed convolutions in int8) and the QDQ file.
        var x = Int8ExportOptions(output: onnx)
        (x.spec, x.imageDir, x.batches, x.batchSize, x.tactics) = (specPath, "\(dir!)/train/images", 4, 8, .direct)
        let files = try UNetTask.exportInt8(modelPath: model, x)
        let engine = try Int8Engine(graph: ck.graph, parameters: ck.parameters, maxAbs: try XCTUnwrap(try Checkpoint.read(from: files.engine).card?.int8).ranges, batch: 1)
        XCTAssertEqual(engine.int8Convolutions, ck.graph.nodes.filter { ["conv2d", "conv_transpose2d"].contains($0.op.kind) }.count)
        let int8 = try task.evaluate(modelPath: files.engine, resultsDir: "\(dir!)/int8", quiet: true)
        XCTAssertEqual(int8.meanIoU, e.meanIoU, accuracy: 0.01, "INT8 within a point of fp32")
        // bf16 (transposed convolutions too): within a tenth of a point.
        try UNetTask.writeBF16Engine(modelPath: model, to: "\(dir!)/model.bf16.tao")
        let bf16 = try task.evaluate(modelPath: "\(dir!)/model.bf16.tao", resultsDir: "\(dir!)/bf16", quiet: true)
        XCTAssertEqual(bf16.meanIoU, e.meanIoU, accuracy: 0.001, "bf16 within a tenth of a point of fp32")
        XCTAssertTrue(try String(contentsOfFile: "\(dir!)/bf16/train.log", encoding: .utf8).contains(Executor.supportsBF16 ? "(bf16 engine" : "run in fp32"))
        let q = try JSONSerialization.jsonObject(with: PythonReference.run("Tests/TaoONNXTests/onnx_check.py", arguments: [files.qdq, bin, yBin, "4", "3", "32", "32"])) as! [String: Any]
        XCTAssertEqual((q["op_counts"] as! [String: Int])["ConvTranspose"], 4)
        let qdq = try Data(contentsOf: URL(fileURLWithPath: yBin)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let pixels = 32 * 32
        var agree = 0
        for n in 0..<4 {
            let a = ours.withUnsafeBufferPointer { UNetLoss.predictions($0.baseAddress!, image: n, classes: 3, pixels: pixels) }
            let b = qdq.withUnsafeBufferPointer { UNetLoss.predictions($0.baseAddress!, image: n, classes: 3, pixels: pixels) }
            agree += zip(a, b).filter { $0 == $1 }.count
        }
        XCTAssertGreaterThan(Double(agree) / Double(4 * pixels), 0.97, "the QDQ model's classes agree with fp32's")

        // prune: the head keeps its classes, the concatenations follow their inputs; the pruned model retrains.
        var o = PruneOptions(); o.threshold = 0.5; o.minFilters = 8
        let pruned = "\(dir!)/pruned.tao"
        let report = try UNetTask.prune(modelPath: model, output: pruned, options: o, task: task, bnImages: 16, resultsDir: "\(dir!)/prune", quiet: true)
        XCTAssertLessThan(report.parametersAfter, report.parametersBefore)
        let p = try Checkpoint.read(from: pruned)
        XCTAssertEqual(p.graph.shape(of: p.graph.outputs[0]).dims, [3, 32, 32])
        XCTAssertTrue(report.layers.allSatisfy { $0.name != "head" || $0.after == $0.before })
        let retrain = try spec(epochs: 1, extraModel: "pruned_model_path: \"\(pruned)\"")
        XCTAssertNotNil(try UNetTask(specPath: retrain).train(resultsDir: "\(dir!)/retrain", quiet: true)["val_mIoU"])
    }

    /// vanilla_unet_dynamic (PeopleSemSegNet's architecture) trains on dice + cross-entropy and evaluates.
    func testVanillaUNetDynamicTrainsAndEvaluates() throws {
        try scenes("train", count: 16, seed: 3)
        try scenes("val", count: 8, seed: 4)
        let task = try UNetTask(specPath: try spec(arch: "vanilla_unet_dynamic", epochs: 2, loss: "cross_dice_sum"))
        let m = try task.train(resultsDir: "\(dir!)/run", quiet: true)
        XCTAssertLessThan(m["loss"]!, 2.5)
        XCTAssertNotNil(m["loss_dice"])
        let e = try task.evaluate(modelPath: "\(dir!)/run/weights/vanilla_unet_dynamic_002.tao", resultsDir: "\(dir!)/eval", quiet: true)
        XCTAssertEqual(e.images, 8)
        XCTAssertTrue((0...1).contains(e.meanIoU))
    }

    /// Issue 17's fine-tuning of imported weights: PP-OCRv4's text detector (rapidocr's DBNet, a
    /// PP-LCNetV3 backbone, weights in Constant nodes) gives a UNet its encoder (arch "onnx"): the
    /// backbone's maps at strides 2–32 are cut from the file, its weights load by name, the decoder
    /// is new. Trained with freeze_blocks 0: the stride-2 stage keeps the file's weights exactly,
    /// the deeper ones move from them (fine-tuned, not replaced), the loss falls, and the checkpoint
    /// (the imported graph inside it) evaluates.
    func testImportedTextDetectorsBackboneFineTunesAsTheEncoder() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = repo.appendingPathComponent(".venv/models/rapidocr/ch_PP-OCRv4_det_infer.onnx").path
        guard FileManager.default.fileExists(atPath: model) else { return XCTFail("\(model) is missing: run scripts/install-deps.sh") }
        try scenes("train", count: 16, w: 64, h: 64, seed: 11)
        try scenes("val", count: 8, w: 64, h: 64, seed: 12)
        let path = try spec(arch: "onnx", layers: 0, epochs: 2, extraModel: "pretrained_model_file: \"\(model)\" freeze_blocks: 0", w: 64, h: 64, learningRate: 0.002)
        let task = try UNetTask(specPath: path)
        let m = try task.train(resultsDir: "\(dir!)/run", quiet: true)
        let log = try String(contentsOfFile: "\(dir!)/run/train.log", encoding: .utf8)
        let loaded = log.split(separator: "\n").first { $0.contains("loaded ") && $0.contains(model) }.map(String.init) ?? ""
        XCTAssertTrue(loaded.contains("newly initialized: ") && !loaded.contains("paired in order"), log)
        // What was initialized afresh is the decoder and the head, nothing of the backbone.
        let fresh = loaded.components(separatedBy: "layers (").last!.components(separatedBy: " and ").first!.components(separatedBy: ", ")
        XCTAssertTrue(fresh.allSatisfy { $0.hasPrefix("decoder") || $0.hasPrefix("head") }, loaded)

        let file = try ONNXImport.read(model, inputShape: [3, 64, 64], logits: false)
        let trained = try Checkpoint.read(from: "\(dir!)/run/weights/onnx_002.tao")
        let stages = task.importedStages(trained.graph)
        var (kept, moved, changes) = (0, 0, [Double]())
        for (i, p) in trained.graph.parameters.enumerated() where p.role == .convWeight {
            guard let j = file.graph.parameterIndex(named: p.name) else { XCTAssertTrue(p.name.hasPrefix("decoder") || p.name.hasPrefix("head"), p.name); continue }
            let (w0, w1) = (file.parameters[j].scalars, trained.parameters[i].scalars)
            var (difference, norm) = (0.0, 1e-30)
            for k in w0.indices { difference += Double(w0[k] - w1[k]) * Double(w0[k] - w1[k]); norm += Double(w0[k]) * Double(w0[k]) }
            let change = (difference / norm).squareRoot()
            if stages[0]!.contains(String(p.name.dropLast(".weight".count))) {
                XCTAssertEqual(w0, w1, "\(p.name) is in frozen block 0"); kept += 1
            } else {
                changes.append(change); moved += 1
            }
        }
        XCTAssertGreaterThan(kept, 0)
        XCTAssertGreaterThan(moved, 20, "the deeper stages' convolutions come from the file")
        XCTAssertGreaterThan(changes.min()!, 0, "every unfrozen backbone convolution trained")
        XCTAssertLessThan(changes.max()!, 0.5, "fine-tuned from the file's weights, not replaced: \(changes.max()!)")
        let rows = try String(contentsOfFile: "\(dir!)/run/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        XCTAssertLessThan(Double(rows.last![2])!, Double(rows.first![2])!, "training loss falls")
        XCTAssertNotNil(m["val_mIoU"])
        let e = try task.evaluate(modelPath: "\(dir!)/run/weights/onnx_002.tao", resultsDir: "\(dir!)/eval", quiet: true)
        XCTAssertEqual(e.images, 8)
        XCTAssertEqual(e.meanIoU, m["val_mIoU"]!, accuracy: 1e-9)

        // Exported, the fine-tuned model runs in onnxruntime with our logits, and reads back in
        // (its nodes' names, e.g. an imported GlobalAveragePool's "….keepdims" reshape, import again).
        let onnx = "\(dir!)/dbnet_unet.onnx"
        try UNetTask.export(modelPath: "\(dir!)/run/weights/onnx_002.tao", output: onnx)
        try checkAgainstONNXRuntime(task, trained, onnx, images: 2)
        XCTAssertEqual(try task.evaluate(modelPath: onnx, resultsDir: "\(dir!)/onnx_eval", quiet: true).meanIoU, e.meanIoU, accuracy: 1e-3)
    }

    /// NVIDIA's ISBI example spec (tao_tutorials' unet_train_resnet_unet_isbi.txt: grayscale 320×320,
    /// ResNet-18, batch 3) runs unchanged but for its paths and epochs, on grayscale images with 0/255
    /// masks; so does its retrain spec on the pruned model, given as train's -m as the notebook does.
    func testNVIDIAsISBISpecRuns() throws {
        for split in ["train", "val", "test"] {
            for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: "\(dir!)/isbi/\(sub)/\(split)", withIntermediateDirectories: true) }
            var rng = SplitMix64(seed: 9)
            for n in 0..<3 {
                let mask = (0..<(320 * 320)).map { i -> UInt8 in ((i / 320) / 40 + (i % 320) / 40 + n) % 2 == 0 ? 255 : 0 }
                let img = Image(width: 320, height: 320, channels: 1, pixels: mask.map { $0 == 255 ? UInt8(180 + rng.next() % 40) : UInt8(rng.next() % 60) })
                try Data(try ImageCodec.encodePNG(img)).write(to: URL(fileURLWithPath: "\(dir!)/isbi/images/\(split)/\(n).png"))
                try Data(try ImageCodec.encodePNG(Image(width: 320, height: 320, channels: 1, pixels: mask))).write(to: URL(fileURLWithPath: "\(dir!)/isbi/masks/\(split)/\(n).png"))
            }
        }
        let fixture = PythonReference.repo.appendingPathComponent("Tests/TaoSpecTests/NVIDIA/unet_train_resnet_unet_isbi.txt").path
        let text = try String(contentsOfFile: fixture, encoding: .utf8)
            .replacingOccurrences(of: "/workspace/tao-experiments/data/isbi", with: "\(dir!)/isbi").replacingOccurrences(of: "epochs: 50", with: "epochs: 1")
        try text.write(toFile: "\(dir!)/isbi.txt", atomically: true, encoding: .utf8)
        let task = try UNetTask(specPath: "\(dir!)/isbi.txt")
        XCTAssertEqual(task.config.inputShape, [1, 320, 320])
        let m = try task.train(resultsDir: "\(dir!)/run", quiet: true)
        XCTAssertTrue(m["loss"]!.isFinite)
        XCTAssertNotNil(m["val_mIoU"])

        // The notebook's next steps: prune, then the retrain spec (load_graph) with the pruned model as train's -m.
        var o = PruneOptions(); o.threshold = 0.3
        let pruned = "\(dir!)/pruned.tao"
        try UNetTask.prune(modelPath: "\(dir!)/run/weights/resnet18_001.tao", output: pruned, options: o, task: task, bnImages: 3, resultsDir: "\(dir!)/prune", quiet: true)
        let retrainFixture = PythonReference.repo.appendingPathComponent("Tests/TaoSpecTests/NVIDIA/unet_train_resnet_unet_isbi_retrain.txt").path
        try String(contentsOfFile: retrainFixture, encoding: .utf8)
            .replacingOccurrences(of: "/workspace/tao-experiments/data/isbi", with: "\(dir!)/isbi").replacingOccurrences(of: "epochs: 50", with: "epochs: 1")
            .write(toFile: "\(dir!)/retrain.txt", atomically: true, encoding: .utf8)
        try UNetTask(specPath: "\(dir!)/retrain.txt", startingModel: pruned).train(resultsDir: "\(dir!)/retrain", quiet: true)
        XCTAssertEqual(try Checkpoint.read(from: "\(dir!)/retrain/weights/resnet18_001.tao").graph.parameters.map(\.shape),
                       try Checkpoint.read(from: pruned).graph.parameters.map(\.shape), "the pruned graph retrains as it is")
    }
}
