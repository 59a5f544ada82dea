import XCTest
import Foundation
import TaoData
import TaoGraph
import TaoMetrics
@testable import TaoTasks
import TaoPrune
import TaoRuntime
import TaoTestSupport
import TaoTensor

/// DetectNet_v2 end to end on small scenes of bright squares and bars on noise: KITTI labels,
/// dataset_convert, a TAO spec, training on the shared run, validation mAP, resume.
final class DetectNetV2TaskTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("dnv2-\(UUID().uuidString)").path
        for sub in ["kitti/images", "kitti/labels"] { try FileManager.default.createDirectory(atPath: "\(dir!)/\(sub)", withIntermediateDirectories: true) }
        var rng = SplitMix64(seed: 5)
        for i in 0..<60 {
            let (w, h) = (96, 64)
            var px = (0..<(w * h * 3)).map { _ in UInt8(rng.next() % 50) }
            var lines: [String] = []
            for k in 0..<(1 + i % 2) {
                // A square ("box") or a wide bar ("bar"), in its own half of the image.
                let bar = (i + k) % 3 == 0
                let (bw, bh) = bar ? (30 + Int(rng.next() % 4), 14) : (20 + Int(rng.next() % 4), 20 + Int(rng.next() % 4))
                let x0 = k * 48 + Int(rng.next() % UInt64(48 - bw)), y0 = Int(rng.next() % UInt64(h - bh))
                for y in y0..<(y0 + bh) { for x in x0..<(x0 + bw) { for c in 0..<3 { px[(y * w + x) * 3 + c] = bar ? [230, 60, 60][c] : 220 } } }
                lines.append("\(bar ? "Bar" : "Box") 0.00 0 0.00 \(x0).00 \(y0).00 \(x0 + bw).00 \(y0 + bh).00 0 0 0 0 0 0 0")
            }
            let png = try ImageCodec.encodePNG(Image(width: w, height: h, channels: 3, pixels: px))
            FileManager.default.createFile(atPath: "\(dir!)/kitti/images/\(String(format: "%04d", i)).png", contents: Data(png))
            try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir!)/kitti/labels/\(String(format: "%04d", i)).txt", atomically: true, encoding: .utf8)
        }
        let export = KITTIExport(root: "\(dir!)/kitti", imageDirName: "images", labelDirName: "labels", imageExtension: ".png",
                                 partitions: 2, shards: 2, mode: .random, valSplit: 25)
        _ = try export.run(outputPrefix: "\(dir!)/tfrecords/scenes")
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func spec(epochs: Int, extraModel: String = "", extraEval: String = "") throws -> String {
        func cls(_ name: String) -> String {
            """
            target_classes { name: "\(name)" class_weight: 1.0 coverage_foreground_weight: 0.5
              objectives { name: "cov" initial_weight: 1.0 weight_target: 1.0 }
              objectives { name: "bbox" initial_weight: 10.0 weight_target: 10.0 } }
            """
        }
        func raster(_ name: String) -> String { "target_class_config { key: \"\(name)\" value: { cov_center_x: 0.5 cov_center_y: 0.5 cov_radius_x: 0.4 cov_radius_y: 0.4 bbox_min_radius: 1.0 } }" }
        func post(_ name: String) -> String {
            "target_class_config { key: \"\(name)\" value: { clustering_config { coverage_threshold: 0.005 dbscan_eps: 0.5 dbscan_min_samples: 0.05 minimum_bounding_box_height: 4 dbscan_confidence_threshold: 0.1 } } }"
        }
        let text = """
        random_seed: 42
        dataset_config {
          data_sources: { tfrecords_path: "\(dir!)/tfrecords/scenes*" image_directory_path: "\(dir!)/kitti" }
          image_extension: "png"
          target_class_mapping { key: "box" value: "box" }
          target_class_mapping { key: "bar" value: "bar" }
          validation_fold: 0
        }
        augmentation_config {
          preprocessing { output_image_width: 96 output_image_height: 64 output_image_channel: 3 min_bbox_width: 1.0 min_bbox_height: 1.0 }
          spatial_augmentation { hflip_probability: 0.5 zoom_min: 1.0 zoom_max: 1.0 translate_max_x: 4.0 translate_max_y: 4.0 }
          color_augmentation { hue_rotation_max: 5.0 saturation_shift_max: 0.1 contrast_scale_max: 0.1 contrast_center: 0.5 }
        }
        postprocessing_config { \(post("box")) \(post("bar")) }
        model_config {
          arch: "resnet" num_layers: 10 use_batch_norm: true all_projections: true
          objective_set { bbox { scale: 35.0 offset: 0.5 } cov { } }
          \(extraModel)
        }
        evaluation_config {
          validation_period_during_training: 5 first_validation_epoch: 5
          minimum_detection_ground_truth_overlap { key: "box" value: 0.5 }
          minimum_detection_ground_truth_overlap { key: "bar" value: 0.5 }
          average_precision_mode: INTEGRATE
          \(extraEval)
        }
        cost_function_config { \(cls("box")) \(cls("bar")) enable_autoweighting: false max_objective_weight: 0.9999 min_objective_weight: 0.0001 }
        training_config {
          batch_size_per_gpu: 8
          num_epochs: \(epochs)
          learning_rate { soft_start_annealing_schedule { min_learning_rate: 5e-5 max_learning_rate: 5e-3 soft_start: 0.1 annealing: 0.7 } }
          regularizer { type: L1 weight: 3e-9 }
          optimizer { adam { epsilon: 1e-08 beta1: 0.9 beta2: 0.999 } }
          cost_scaling { enabled: False initial_exponent: 20.0 increment: 0.005 decrement: 1.0 }
          checkpoint_interval: 1
        }
        bbox_rasterizer_config { \(raster("box")) \(raster("bar")) deadzone_radius: 0.67 }
        """
        let path = "\(dir!)/spec-\(epochs)-\(abs((extraModel + extraEval).hashValue)).txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Fits its training scenes (TAO's cost falls 4×, coverage lights exactly the objects' cells, the
    /// mAP of held-out frames is measured each epoch) and resumes to the same weights. The mAP a
    /// longer run reaches is the README demo's to show.
    func testTrainsOnTheSharedRunLearnsCoverageAndResumes() throws {
        let task = try DetectNetV2Task(specPath: try spec(epochs: 20))
        let out = "\(dir!)/run"
        let m = try task.train(resultsDir: out, quiet: true)
        let rows = try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        print("detectnet_v2 scenes: \(m)")
        XCTAssertEqual(rows.count, 21)
        XCTAssertEqual(rows[0], ["epoch", "lr", "loss", "val_mAP", "val_AP_box", "val_AP_bar", "seconds", "images_per_s"])
        let first = Double(rows[1][2])!, last = m["loss"]!
        XCTAssertLessThan(last, first / 4, "the cost falls: \(first) → \(last)")
        XCTAssertTrue((0...1).contains(m["val_mAP"]!))
        // TAO's evaluation_config: validated from epoch 5, every 5 epochs; the other rows have no value.
        XCTAssertEqual(rows.dropFirst().map { $0[3] == "nan" }, (1...20).map { $0 % 5 != 0 })
        XCTAssertGreaterThan(try ImageCodec.decode(path: "\(out)/plots/mAP.png", channels: 3).width, 600)
        let svg = try String(contentsOfFile: "\(out)/plots/mAP.svg", encoding: .utf8)
        for t in [">mAP<", ">AP box<", ">AP bar<", ">epoch<", ">average precision<"] { XCTAssertTrue(svg.contains(t), "the mAP plot's \(t)") }
        let model = "\(out)/weights/resnet10_020.tao"
        let ck = try Checkpoint.read(from: model)
        let card = try XCTUnwrap(try ck.card)
        XCTAssertEqual(card.task, "detectnet_v2")
        XCTAssertEqual(card.classes, ["box", "bar"])
        XCTAssertEqual(card.decoding, .detectNetV2(stride: 16, scale: 35, offset: 0.5))

        // Coverage on training frames: high on the cells the rasterizer covers, low elsewhere.
        let data = try DetectionData(task)
        let exec = try Executor(graph: ck.graph, batch: 1, mode: .inference, parameters: ck.parameters)
        var hits = 0, cells = 0, falseAlarms = 0, background = 0
        for f in data.train.prefix(12) {
            var none: SplitMix64? = nil
            let s = try DetectionData.sample(f, task.augmentation, mapping: data.mapping, rng: &none)
            s.input.withUnsafeBufferPointer { exec.inputPointer(0).update(from: $0.baseAddress!, count: $0.count) }
            exec.forward()
            let t = DetectNetTargets(objects: s.objects, grid: task.grid, classes: task.rasterizer, deadzone: 0.67)
            let cov = exec.output(0).scalars
            for (k, y) in t.coverage.enumerated() {
                if y == 1 { cells += 1; if cov[k] > 0.5 { hits += 1 } } else { background += 1; if cov[k] > 0.5 { falseAlarms += 1 } }
            }
        }
        XCTAssertGreaterThan(Double(hits), 0.8 * Double(cells), "object cells with coverage > 0.5: \(hits) of \(cells)")
        XCTAssertLessThan(Double(falseAlarms), 0.05 * Double(background), "background cells with coverage > 0.5: \(falseAlarms) of \(background)")

        // Interrupted during epoch 20: resuming reaches the same weights.
        try FileManager.default.removeItem(atPath: model)
        try task.train(resultsDir: out, quiet: true)
        let again = try Checkpoint.read(from: model)
        for i in 0..<ck.parameters.count { XCTAssertEqual(ck.parameters[i].scalars, again.parameters[i].scalars, ck.graph.parameters[i].name) }
        XCTAssertTrue(try String(contentsOfFile: "\(out)/train.log", encoding: .utf8).contains("resuming after epoch 19"))
    }

    /// evaluate, inference, prune (and retraining the pruned model), ONNX and INT8 export on a
    /// briefly trained model, each checked against what it must equal: evaluate against the
    /// training run's validation, inference on a 2× image against the same image at 1×, the
    /// evaluation box filter against its definition.
    func testEvaluateInferencePruneAndExportAModel() throws {
        let specPath = try spec(epochs: 3)
        let task = try DetectNetV2Task(specPath: specPath)
        let out = "\(dir!)/run"
        let m = try task.train(resultsDir: out, quiet: true)
        let model = "\(out)/weights/resnet10_003.tao"

        // evaluate: the training run's last validation, with evaluation.json and the PR curves.
        let e = try task.evaluate(modelPath: model, resultsDir: out, quiet: true)
        XCTAssertEqual(e.mAP, m["val_mAP"]!, accuracy: 1e-12)
        XCTAssertEqual(e.images, 15)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/evaluation.json"))) as! [String: Any]
        let perClass = try XCTUnwrap(json["per_class"] as? [[String: Any]])
        XCTAssertEqual(perClass.map { $0["class"] as? String }, ["box", "bar"])
        let truth = try DetectionData(task).val.flatMap(\.objects)
        XCTAssertEqual(perClass.map { $0["ground_truth"] as? Int }, [truth.filter { $0.className == "box" }.count, truth.filter { $0.className == "bar" }.count])
        // The PR curves name each class with its AP; TensorBoard's reader finds the same counts.
        let prSVG = try String(contentsOfFile: "\(out)/plots/pr_curves.svg", encoding: .utf8)
        for (name, a) in zip(["box", "bar"], e.perClass) { XCTAssertTrue(prSVG.contains(String(format: ">%@ (AP %.1f%%)</text>", name, 100 * a.ap!)), name) }
        XCTAssertGreaterThan(try ImageCodec.decode(path: "\(out)/plots/pr_curves.png", channels: 3).width, 600)
        struct Read: Decodable { var scalars: [String: [[Double]]]; var tensors: [String: Tensors] }
        struct Tensors: Decodable { var plugin: String; var events: [Row] }
        struct Row: Decodable {
            var step: Int, shape: [Int], value: [[Double]]
            enum K: String, CodingKey { case step, shape, value }
            init(from d: Decoder) throws {   // the text tensors' values are strings: read as empty
                let c = try d.container(keyedBy: K.self)
                (step, shape, value) = (try c.decode(Int.self, forKey: .step), try c.decode([Int].self, forKey: .shape), (try? c.decode([[Double]].self, forKey: .value)) ?? [])
            }
        }
        let tb = try JSONDecoder().decode(Read.self, from: PythonReference.run("Tests/TaoReportTests/tensorboard_read.py", arguments: [out]))
        XCTAssertEqual(tb.scalars["evaluate/mAP"]?.last?[1] ?? -1, e.mAP, accuracy: 1e-6)
        XCTAssertEqual(tb.scalars["val_mAP"]?.map { Int($0[0]) }, [3], "validation from epoch 5 or the last: only epoch 3")
        XCTAssertEqual(tb.tensors["validation/pr_bar"]?.events.map(\.step), [3], "training's validation PR curves, at its one validated epoch")
        let pr = try XCTUnwrap(tb.tensors["evaluate/pr_box"]?.events.last)
        XCTAssertEqual(pr.shape, [6, 51])
        XCTAssertEqual(pr.step, 3)
        XCTAssertEqual(pr.value[0][0], Double(e.perClass[0].truePositives), "threshold 0: every detection")
        XCTAssertEqual(pr.value[1][0], Double(e.perClass[0].falsePositives))
        XCTAssertEqual(pr.value[3][0], Double(e.perClass[0].groundTruth - e.perClass[0].truePositives))
        // Validation images: 8 frames on the 96×64 canvas enlarged 3×, in rows of 4.
        let sheet = try ImageCodec.decode(path: "\(out)/validation_images/epoch_003.png", channels: 3)
        XCTAssertEqual(sheet.width, 4 * (288 + 8) + 8)
        // evaluation_box_config: no box is 1000 pixels tall, so "box" has no ground truth and no AP; "bar" is unchanged.
        let filtered = try DetectNetV2Task(specPath: try spec(epochs: 3, extraEval: "evaluation_box_config { key: \"box\" value { minimum_height: 1000 maximum_height: 9999 minimum_width: 0 maximum_width: 9999 } }"))
        let f = try filtered.evaluate(modelPath: model, resultsDir: "\(dir!)/filtered", quiet: true)
        XCTAssertNil(f.perClass[0].ap)
        XCTAssertEqual(f.perClass[0].groundTruth, 0)
        XCTAssertEqual(f.perClass[1].ap, e.perClass[1].ap)

        // inference: each validation image and the same image at twice the size (each pixel 2×2)
        // give the same network input, so the second's boxes are the first's, doubled.
        let images = "\(dir!)/infer", frames = try DetectionData(task).val
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        for (i, frame) in frames.enumerated() {
            let img = try ImageCodec.decode(path: frame.imagePath, channels: 3)
            var big = Image(width: 2 * img.width, height: 2 * img.height, channels: 3, pixels: [UInt8](repeating: 0, count: 4 * img.pixels.count))
            for y in 0..<big.height { for x in 0..<big.width { for c in 0..<3 { big.pixels[(y * big.width + x) * 3 + c] = img.pixels[((y / 2) * img.width + x / 2) * 3 + c] } } }
            try Data(try ImageCodec.encodePNG(img)).write(to: URL(fileURLWithPath: String(format: "%@/a%02d.png", images, i)))
            try Data(try ImageCodec.encodePNG(big)).write(to: URL(fileURLWithPath: String(format: "%@/b%02d.png", images, i)))
        }
        let inferSpec = "\(dir!)/infer.txt"
        let handler = { (name: String, color: String) in
            "classwise_bbox_handler_config { key: \"\(name)\" value: { confidence_model: \"aggregate_cov\" output_map: \"\(name)\" bbox_color { \(color) } clustering_config { coverage_threshold: 0.005 dbscan_eps: 0.5 dbscan_min_samples: 0.05 dbscan_confidence_threshold: 0.01 minimum_bounding_box_height: 2 } } }"
        }
        try """
        inferencer_config { target_classes: "box" target_classes: "bar" image_width: 96 image_height: 64 image_channels: 3 batch_size: 2 gpu_index: 0
          tlt_config { model: "\(model)" } }
        bbox_handler_config { kitti_dump: true disable_overlay: false overlay_linewidth: 2 \(handler("box", "R: 0 G: 255 B: 0")) \(handler("default", "R: 255 G: 0 B: 0")) }
        """.write(toFile: inferSpec, atomically: true, encoding: .utf8)
        let found = try DetectNetV2Task.inference(specPath: inferSpec, modelPath: nil, images: images, outputDir: "\(dir!)/inferred", quiet: true)
        XCTAssertEqual(found.map { ($0.0 as NSString).lastPathComponent }, frames.indices.map { String(format: "a%02d.png", $0) } + frames.indices.map { String(format: "b%02d.png", $0) })
        var detections = 0
        for i in frames.indices {
            let small = try KITTI.read(String(format: "%@/inferred/labels/a%02d.txt", dir!, i)), large = try KITTI.read(String(format: "%@/inferred/labels/b%02d.txt", dir!, i))
            detections += small.count
            XCTAssertEqual(small.count, large.count)
            for (s, l) in zip(small, large) {
                XCTAssertEqual(s.className, l.className)
                XCTAssertTrue(["box", "bar"].contains(s.className))
                for (a, b) in [(s.x1, l.x1), (s.y1, l.y1), (s.x2, l.x2), (s.y2, l.y2)] { XCTAssertEqual(2 * a, b, accuracy: 0.03) }
                XCTAssertEqual(try XCTUnwrap(s.score), try XCTUnwrap(l.score), accuracy: 1e-4)
            }
        }
        XCTAssertGreaterThan(detections, 0, "a low confidence threshold lets detections through")
        let annotated = try ImageCodec.decode(path: "\(dir!)/inferred/images_annotated/b00.png", channels: 3)
        XCTAssertEqual([annotated.width, annotated.height], [192, 128])
        // Each box's label sits on a tag of its class colour (box green, bar red by "default"), 13 px
        // tall at this size: above the box, or inside it when the box is within 14 px of the top edge.
        var tagged = 0
        for i in frames.indices {
            let img = try ImageCodec.decode(path: String(format: "%@/inferred/images_annotated/b%02d.png", dir!, i), channels: 3)
            for o in try KITTI.read(String(format: "%@/inferred/labels/b%02d.txt", dir!, i)) where Int(o.x1) + 40 < img.width && Int(o.y1) + 16 < img.height {
                let color: [UInt8] = o.className == "box" ? [0, 255, 0] : [255, 0, 0]
                let top = o.y1 >= 14 ? Int(o.y1.rounded(.up)) - 14 : Int(o.y1.rounded(.up)) + 1
                var n = 0
                for y in top + 2..<top + 11 { for x in Int(o.x1)..<Int(o.x1) + 30 where Array(img.pixels[(y * img.width + x) * 3..<(y * img.width + x) * 3 + 3]) == color { n += 1 } }
                XCTAssertGreaterThan(n, 60, "the tag above \(o.className) at \(o.x1),\(o.y1) in b\(i)")
                tagged += 1
            }
        }
        XCTAssertGreaterThan(tagged, 0)
        XCTAssertThrowsError(try DetectNetV2Task.inference(specPath: specPath, modelPath: model, images: images, outputDir: "\(dir!)/x", quiet: true)) {
            XCTAssertTrue("\($0)".contains(":1: random_seed: unknown field"), "a training spec is not an inference spec: \($0)")
        }

        // prune: the heads keep their channels, the report has the mAP before and after; the pruned model retrains.
        var o = PruneOptions(); o.threshold = 0.5; o.minFilters = 8
        let pruned = "\(dir!)/pruned.tao"
        let r = try DetectNetV2Task.prune(modelPath: model, output: pruned, options: o, task: task, bnImages: 16, resultsDir: "\(dir!)/prune", quiet: true)
        XCTAssertLessThan(r.parametersAfter, r.parametersBefore)
        let p = try Checkpoint.read(from: pruned), full = try Checkpoint.read(from: model)
        XCTAssertEqual(p.graph.outputs.map { p.graph.shape(of: $0) }, full.graph.outputs.map { full.graph.shape(of: $0) })
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir!)/prune/prune_report.json"))) as! [String: Any]
        XCTAssertEqual(try XCTUnwrap(report["val_mAP_before"] as? Double), e.mAP, accuracy: 1e-12)
        XCTAssertNotNil(report["val_mAP_after_pruning"] as? Double)
        let retrained = try DetectNetV2Task(specPath: try spec(epochs: 1, extraModel: "pretrained_model_file: \"\(pruned)\"")).train(resultsDir: "\(dir!)/retrain", quiet: true)
        XCTAssertNotNil(retrained["val_mAP"])
        let again = try Checkpoint.read(from: "\(dir!)/retrain/weights/resnet10_001.tao")
        XCTAssertEqual(again.graph.parameters.map(\.shape), p.graph.parameters.map(\.shape), "the pruned graph trains as it is")

        // export: the ONNX file carries the card and evaluates as the checkpoint does; INT8 engine evaluates close to fp32.
        let onnx = "\(dir!)/model.onnx"
        try DetectNetV2Task.export(modelPath: model, output: onnx)
        XCTAssertEqual(try DetectNetV2Task.loadModel(onnx).1.classes, ["box", "bar"])
        XCTAssertEqual(try task.evaluate(modelPath: onnx, resultsDir: "\(dir!)/onnx", quiet: true).mAP, e.mAP, accuracy: 0.02)
        var x = Int8ExportOptions(output: onnx)
        (x.spec, x.imageDir, x.batches, x.batchSize, x.tactics) = (specPath, "\(dir!)/kitti/images", 2, 8, .direct)
        let files = try DetectNetV2Task.exportInt8(modelPath: model, x)
        let int8 = try task.evaluate(modelPath: files.engine, resultsDir: "\(dir!)/int8", quiet: true)
        XCTAssertEqual(int8.mAP, e.mAP, accuracy: 0.1)
        XCTAssertTrue(try String(contentsOfFile: "\(dir!)/int8/train.log", encoding: .utf8).contains("(INT8 engine)"))
        XCTAssertNil(try DetectNetV2Task.loadModel(files.engine).1.int8?.fp32Layers)
        // A bf16 engine file evaluates as the checkpoint does, within bf16's rounding of the boxes.
        try DetectNetV2Task.writeBF16Engine(modelPath: model, to: "\(dir!)/model.bf16.tao")
        let bf16 = try task.evaluate(modelPath: "\(dir!)/model.bf16.tao", resultsDir: "\(dir!)/bf16", quiet: true)
        XCTAssertEqual(bf16.mAP, e.mAP, accuracy: 0.02)
        XCTAssertTrue(try String(contentsOfFile: "\(dir!)/bf16/train.log", encoding: .utf8).contains(Executor.supportsBF16 ? "(bf16 engine" : "run in fp32"))
        // Mixed precision: named convolutions kept in fp32 are recorded in the engine file, run so
        // by evaluate, and left out of the QDQ file's quantization; every one in fp32 evaluates as fp32 does.
        let convs = Int8Precision.convolutions(try DetectNetV2Task.loadModel(model).0.graph).map(\.name)
        x.fp32Layers = .named(convs)
        let allFP32 = try DetectNetV2Task.exportInt8(modelPath: model, x)
        XCTAssertEqual(try DetectNetV2Task.loadModel(allFP32.engine).1.int8?.fp32Layers, convs)
        XCTAssertEqual(try task.evaluate(modelPath: allFP32.engine, resultsDir: "\(dir!)/int8_fp32", quiet: true).mAP, e.mAP, accuracy: 1e-6)
        let qdq = try String(decoding: Data(contentsOf: URL(fileURLWithPath: allFP32.qdq)), as: UTF8.self)
        XCTAssertFalse(qdq.contains("QuantizeLinear"), "no convolution quantized in the QDQ file")
        x.fp32Layers = .named([convs[0], "no_such_conv"])
        XCTAssertThrowsError(try DetectNetV2Task.exportInt8(modelPath: model, x)) { XCTAssertTrue("\($0)".contains("'no_such_conv' is not a convolution"), "\($0)") }
        var said: [String] = []
        x.fp32Layers = .auto(maxError: 1e-12)   // unreachable short of fp32: the most sensitive first, the best kept
        let auto = try DetectNetV2Task.exportInt8(modelPath: model, x) { said.append($0) }
        let chosen = try DetectNetV2Task.loadModel(auto.engine).1.int8?.fp32Layers ?? []
        XCTAssertFalse(chosen.isEmpty)
        XCTAssertTrue(said.contains { $0.contains("kept in fp32") && $0.contains(chosen[0]) }, "\(said)")
        XCTAssertThrowsError(try ClassificationTask.loadModel(model)) { XCTAssertTrue("\($0)".contains("it is a detectnet_v2 model"), "\($0)") }
    }
}
