import XCTest
import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoPrune
import TaoRuntime
@testable import TaoTasks
import TaoTensor
import TaoTrain
import TaoONNX
import TaoModels
import TaoTestSupport

/// YOLO end to end on small scenes of bright squares and bars on noise (KITTI label folders): a
/// TAO spec, training on the shared run, validation mAP, resume, evaluate, inference, ONNX export
/// with NMS against onnxruntime, prune and INT8.
final class YOLOTaskTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("yolo-\(UUID().uuidString)").path
        var rng = SplitMix64(seed: 7)
        for (split, count) in [("train", 48), ("val", 12)] {
            for sub in ["images", "labels"] { try FileManager.default.createDirectory(atPath: "\(dir!)/\(split)/\(sub)", withIntermediateDirectories: true) }
            for i in 0..<count {
                let (w, h) = (96, 64)
                var px = (0..<(w * h * 3)).map { _ in UInt8(rng.next() % 50) }
                var lines: [String] = []
                for k in 0..<(1 + i % 2) {
                    let bar = (i + k) % 3 == 0
                    let (bw, bh) = bar ? (30 + Int(rng.next() % 6), 12 + Int(rng.next() % 4)) : (18 + Int(rng.next() % 6), 18 + Int(rng.next() % 6))
                    let x0 = k * 48 + Int(rng.next() % UInt64(48 - bw)), y0 = Int(rng.next() % UInt64(h - bh))
                    for y in y0..<(y0 + bh) { for x in x0..<(x0 + bw) { for c in 0..<3 { px[(y * w + x) * 3 + c] = bar ? [230, 60, 60][c] : 220 } } }
                    lines.append("\(bar ? "Bar" : "Box") 0.00 0 0.00 \(x0).00 \(y0).00 \(x0 + bw).00 \(y0 + bh).00 0 0 0 0 0 0 0")
                }
                let png = try ImageCodec.encodePNG(Image(width: w, height: h, channels: 3, pixels: px))
                FileManager.default.createFile(atPath: "\(dir!)/\(split)/images/\(String(format: "%04d", i)).png", contents: Data(png))
                try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir!)/\(split)/labels/\(String(format: "%04d", i)).txt", atomically: true, encoding: .utf8)
            }
        }
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func spec(_ flavor: String, epochs: Int, arch: String = "cspdarknet_tiny", nlayers: Int = 10, extraTraining: String = "", mosaic: Double = 0.5,
              extraModel: String = "", extraAugmentation: String = "", extraTop: String = "") throws -> String {
        let v3 = flavor == "yolov3_config", tiny = arch == "cspdarknet_tiny"
        let text = """
        random_seed: 42
        \(flavor) {
          big_anchor_shape: "[(20, 20), (34, 14), (24, 24)]"
          mid_anchor_shape: "[(16, 16), (28, 12), (20, 20)]"
          \(tiny ? "" : "small_anchor_shape: \"[(8, 8), (14, 6), (10, 10)]\"")
          \(v3 ? "" : "box_matching_iou: 0.25")
          matching_neutral_box_iou: 0.5
          arch: "\(arch)"
          \(tiny ? "" : "nlayers: \(nlayers)")
          \(extraModel)
          arch_conv_blocks: \(v3 ? 1 : 0)
          loss_loc_weight: 1.0
          loss_neg_obj_weights: 1.0
          loss_class_weights: 1.0
          \(v3 ? "" : "big_grid_xy_extend: 0.05 mid_grid_xy_extend: 0.1 \(tiny ? "" : "small_grid_xy_extend: 0.2")")
        }
        training_config {
          batch_size_per_gpu: 8
          num_epochs: \(epochs)
          checkpoint_interval: 1
          learning_rate { soft_start_cosine_annealing_schedule { min_learning_rate: 1e-5 max_learning_rate: 5e-4 soft_start: 0.1 } }
          regularizer { type: L1 weight: 3e-5 }
          optimizer { adam { epsilon: 1e-7 beta1: 0.9 beta2: 0.999 amsgrad: false } }
          \(extraTraining)
        }
        eval_config { average_precision_mode: SAMPLE batch_size: 6 matching_iou_threshold: 0.5 }
        nms_config { confidence_threshold: 0.01 clustering_iou_threshold: 0.5 top_k: 200 }
        augmentation_config {
          hue: 0.05 saturation: 1.2 exposure: 1.2 vertical_flip: 0 horizontal_flip: 0.5 jitter: 0.2
          output_width: 96 output_height: 64 output_channel: 3
          \(v3 ? "" : "mosaic_prob: \(mosaic) mosaic_min_ratio: 0.3")
          \(extraAugmentation)
        }
        dataset_config {
          data_sources: { label_directory_path: "\(dir!)/train/labels" image_directory_path: "\(dir!)/train/images" }
          include_difficult_in_training: true
          target_class_mapping { key: "box" value: "box" }
          target_class_mapping { key: "bar" value: "bar" }
          validation_data_sources: { label_directory_path: "\(dir!)/val/labels" image_directory_path: "\(dir!)/val/images" }
        }
        \(extraTop)
        """
        let path = "\(dir!)/\(flavor)-\(arch)\(nlayers)-\(epochs)-\(abs((extraTraining + extraModel + extraAugmentation + extraTop + "\(mosaic)").hashValue)).txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The ORT side of an exported detector: boxes and scores of every slot, NMS's selections.
    struct ORTResult: Decodable { var boxes: [[[Double]]]; var scores: [[[Double]]]; var selected: [[Int]] }

    /// Exports `model` with its decoding and NMS to DIR/NAME.onnx, runs it with onnxruntime and ours
    /// on the letterboxed `frames`, and checks every slot's box and scores (before NMS) against our
    /// decoding: the runtimes' head outputs differ by ~1e-4 (float32 convolutions summed in other
    /// orders), which a box carries as ~1e-4 of its stride (the centre) and of its size (e^t), a score
    /// as ~1e-4 / 4; `stride` is the heads' largest.
    func exportedAgainstOurs<V: YOLOVersion>(_ task: YOLOTask<V>, model: String, frames: [YOLOFrame], name: String, stride: Double,
                                              file: StaticString = #filePath, line: UInt = #line) throws -> (YOLOLayout, ModelRunner, ORTResult) {
        let onnx = "\(dir!)/\(name).onnx"
        try YOLOTask<V>.export(modelPath: model, output: onnx)
        let (ck, card) = try YOLOTask<V>.loadModel(model)
        let layout = try YOLOTask<V>.layout(card, ck.graph)
        let inputs = try frames.map { f in
            YOLOTask<V>.input(task.augmentation.letterboxed(try f.load(channels: 3, mapping: task.classMapping, keepDifficult: true)).image, mean: task.config.imageMean)
        }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: frames.count)
        runner.load(inputs, per: inputs[0].count)
        runner.forward()
        let bin = "\(dir!)/\(name)_inputs.bin"
        try inputs.flatMap { $0 }.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: bin))
        let r = try JSONDecoder().decode(ORTResult.self, from: PythonReference.run("Tests/TaoTasksTests/onnx_nms_run.py", arguments: [onnx, bin, "\(frames.count)", "3", "64", "96"]))
        let heads = layout.heads.indices.map { UnsafePointer(runner.outputPointer($0)) }
        for img in frames.indices {
            let slots = YOLODecoder.slots(outputs: heads, image: img, layout: layout)
            XCTAssertEqual(r.boxes[img].count, slots.count, file: file, line: line)
            for (k, s) in slots.enumerated() {
                let size = (s.box.x2 - s.box.x1) * 96 + (s.box.y2 - s.box.y1) * 64
                for (a, b) in zip([s.box.x1 * 96, s.box.y1 * 64, s.box.x2 * 96, s.box.y2 * 64], r.boxes[img][k]) {
                    XCTAssertEqual(a, b, accuracy: 1e-3 * (stride + size), "image \(img) slot \(k)", file: file, line: line)
                }
                for c in 0..<layout.classes { XCTAssertEqual(s.scores[c], r.scores[img][c][k], accuracy: 1e-4, file: file, line: line) }
            }
        }
        return (layout, runner, r)
    }

    /// YOLOv4-tiny learns where its training scenes' objects are (the loss falls by half, objectness on
    /// the matched slots is far above the rest), writes its metrics and card, and resumes to the
    /// same weights. (The mAP a longer run reaches is the README demo's to show.)
    func testYOLOv4TinyLearnsScenesAndResumes() throws {
        let task = try YOLOTask<YOLOv4Tiny>(specPath: try spec("yolov4_config", epochs: 8))
        let out = "\(dir!)/run"
        let m = try task.train(resultsDir: out, quiet: true)
        let rows = try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        print("yolo_v4_tiny scenes: \(m)")
        XCTAssertEqual(rows.count, 9)
        XCTAssertEqual(Array(rows[0].prefix(10)), ["epoch", "lr", "loss", "loss_loc", "loss_obj", "loss_noobj", "loss_cls", "val_mAP", "val_AP_bar", "val_AP_box"])
        XCTAssertLessThan(m["loss"]!, Double(rows[1][2])! / 2, "the loss falls")
        XCTAssertTrue((0...1).contains(m["val_mAP"]!))
        let model = "\(out)/weights/cspdarknet_tiny_008.tao"
        let ck = try Checkpoint.read(from: model)
        let card = try XCTUnwrap(try ck.card)
        XCTAssertEqual(card.task, "yolo_v4_tiny")
        XCTAssertEqual(card.classes, ["bar", "box"], "TAO's order: sorted")
        guard case let .yolo(anchors, xyScale, nms) = card.decoding else { return XCTFail("\(card.decoding)") }
        XCTAssertEqual(anchors[0][1][0], 34.0 / 96, accuracy: 1e-12)
        XCTAssertEqual(xyScale[0], 1.05, accuracy: 1e-6); XCTAssertEqual(xyScale[1], 1.1, accuracy: 1e-6)
        XCTAssertEqual(nms, .init(confidence: Double(Float(0.01)), iou: 0.5, topK: 200))
        XCTAssertEqual(ck.graph.outputs.map { ck.graph.shape(of: $0).dims }, [[21, 2, 3], [21, 4, 6]])

        // Objectness on the training scenes: the slots matched to objects against all the others.
        let layout = try YOLOTask<YOLOv4Tiny>.layout(card, ck.graph)
        let frames = Array(try task.frames().train.prefix(16))
        let samples = try frames.map { try $0.load(channels: 3, mapping: task.classMapping, keepDifficult: true) }
        let runner = try ModelRunner(graph: ck.graph, store: ck.parameters, batch: samples.count)
        let inputs = samples.map { YOLOTask<YOLOv4Tiny>.input(task.augmentation.letterboxed($0).image, mean: task.config.imageMean) }
        runner.load(inputs, per: inputs[0].count)
        runner.forward()
        var matched: [Double] = [], other: [Double] = []
        for (n, s) in samples.enumerated() {
            let t = YOLOTargets(objects: s.objects.map { ($0.classIndex, Box($0.x1 / 96, $0.y1 / 64, $0.x2 / 96, $0.y2 / 64)) }, layout: layout, matchingIoU: 0.25)
            let keys = Set(t.positives.map { [$0.head, $0.row, $0.column, $0.anchor] })
            for (h, g) in layout.heads.enumerated() {
                for a in g.anchors.indices { for i in 0..<g.gridHeight { for j in 0..<g.gridWidth {
                    let z = Double(runner.outputPointer(h)[layout.offset(head: h, image: n, anchor: a, channel: 4, row: i, column: j)])
                    if keys.contains([h, i, j, a]) { matched.append(1 / (1 + exp(-z))) } else { other.append(1 / (1 + exp(-z))) }
                } } }
            }
        }
        let (pos, neg) = (matched.reduce(0, +) / Double(matched.count), other.reduce(0, +) / Double(other.count))
        XCTAssertGreaterThan(pos, 4 * neg, "objectness on objects \(pos), elsewhere \(neg)")

        try FileManager.default.removeItem(atPath: model)
        try task.train(resultsDir: out, quiet: true)
        let again = try Checkpoint.read(from: model)
        for i in 0..<ck.parameters.count { XCTAssertEqual(ck.parameters[i].scalars, again.parameters[i].scalars, ck.graph.parameters[i].name) }
    }

    /// YOLOv3 and YOLOv4 on ResNet-10 build TAO's layers and heads and train (two epochs: a finite
    /// loss, a checkpoint of the spec's graph; learning itself is the tiny model's test and the demo's).
    func testYOLOv3AndYOLOv4OnResNetTrain() throws {
        for flavor in ["yolov3_config", "yolov4_config"] {
            let path = try spec(flavor, epochs: 2, arch: "resnet")
            let out = "\(dir!)/\(flavor)"
            let m = flavor == "yolov3_config" ? try YOLOTask<YOLOv3>(specPath: path).train(resultsDir: out, quiet: true)
                                              : try YOLOTask<YOLOv4>(specPath: path).train(resultsDir: out, quiet: true)
            let ck = try Checkpoint.read(from: "\(out)/weights/resnet10_002.tao")
            XCTAssertEqual(ck.graph.outputs.map { ck.graph.shape(of: $0).dims }, [[21, 2, 3], [21, 4, 6], [21, 8, 12]])
            let names = Set(ck.graph.parameters.map(\.name))
            for layer in flavor == "yolov3_config" ? ["yolo_expand_conv1", "yolo_conv1_1", "yolo_conv3_6", "yolo_conv5_3"] : ["yolo_neck_2", "yolo_spp_conv", "yolo_sm_branch_conv", "bg_leaky_conv1024"] {
                XCTAssertTrue(names.contains("\(layer).conv.weight"), "\(flavor): \(layer)")
            }
            XCTAssertTrue(m["loss"]!.isFinite && m["loss"]! > 0, "\(flavor): \(m)")
            // TAO's widths: v3's big-head 3×3 (4 · 128 from 2 · 128), v4's hard-wired 1024 after 512.
            let (layer, shape) = flavor == "yolov3_config" ? ("yolo_conv1_6.conv.weight", [512, 256, 3, 3]) : ("bg_leaky_conv1024.conv.weight", [1024, 512, 3, 3])
            XCTAssertEqual(ck.graph.parameters.first { $0.name == layer }?.shape.dims, shape, flavor)
        }
    }

    /// TAO's other backbones through the whole task: YOLOv3 on VGG-16 (TAO's heads at strides 16, 8
    /// and 4, block 1 frozen) and YOLOv4 on MobileNet V2 train; evaluate reads the heads' grids from
    /// the model and scores as training's validation did; the exported decoding (ONNX, run by
    /// onnxruntime) places every slot's box where ours does.
    func testOtherBackbonesTrainEvaluateAndExport() throws {
        let vggSpec = try spec("yolov3_config", epochs: 1, arch: "vgg", nlayers: 16, extraModel: "freeze_blocks: 1")
        let vgg = try YOLOTask<YOLOv3>(specPath: vggSpec)
        let m = try vgg.train(resultsDir: "\(dir!)/vgg", quiet: true)
        let model = "\(dir!)/vgg/weights/vgg16_001.tao"
        let ck = try Checkpoint.read(from: model)
        XCTAssertEqual(ck.graph.outputs.map { ck.graph.shape(of: $0).dims }, [[21, 4, 6], [21, 8, 12], [21, 16, 24]])
        XCTAssertEqual(vgg.frozen(ck.graph).params, Set(ck.graph.parameters.map(\.name).filter { $0.hasPrefix("block1.") }))
        XCTAssertFalse(vgg.frozen(ck.graph).params.isEmpty)
        XCTAssertEqual(try vgg.evaluate(modelPath: model, resultsDir: "\(dir!)/vgg_eval", quiet: true).mAP, m["val_mAP"]!, accuracy: 1e-12)

        let frames = Array(try vgg.frames().val.prefix(4))
        let (layout, _, r) = try exportedAgainstOurs(vgg, model: model, frames: frames, name: "vgg", stride: 16)
        XCTAssertEqual(layout.heads.map(\.gridWidth), [6, 12, 24])
        XCTAssertEqual(r.boxes[0].count, 3 * (4 * 6 + 8 * 12 + 16 * 24))

        let mobile = try spec("yolov4_config", epochs: 1, arch: "mobilenet_v2", mosaic: 0)
        let mm = try YOLOTask<YOLOv4>(specPath: mobile).train(resultsDir: "\(dir!)/mobilenet", quiet: true)
        XCTAssertTrue(mm["loss"]!.isFinite && mm["loss"]! > 0, "\(mm)")
        let mck = try Checkpoint.read(from: "\(dir!)/mobilenet/weights/mobilenet_v2_001.tao")
        XCTAssertEqual(mck.graph.outputs.map { mck.graph.shape(of: $0).dims }, [[21, 2, 3], [21, 4, 6], [21, 8, 12]])
    }

    /// Multi-scale training (TAO's randomize_input_shape_period): sizes drawn every period as multiples
    /// of 32 within 0.6–1.5 times the spec's, each step trains the shared parameters on its own size,
    /// and a whole run trains, validates at the spec's size and writes its checkpoint.
    func testMultiScaleTrainingDrawsSizesAndTrainsTheSharedParameters() throws {
        let path = try spec("yolov4_config", epochs: 1, mosaic: 0, extraAugmentation: "randomize_input_shape_period: 2")
        let task = try YOLOTask<YOLOv4Tiny>(specPath: path)
        let data = try YOLOData(task)
        data.start(epoch: 0)
        var drawn = Set<[Int]>()
        for step in 0..<40 {
            let r = try XCTUnwrap(data.randomShape(step: step))
            XCTAssertEqual(r.height % 32, 0); XCTAssertEqual(r.width % 32, 0)
            // TAO's bounds, Python's round: height 64 = 2·32 → round(1.2)…round(3.0) → 32…96; width 96 → round(1.8)…round(4.5) = 2…4 → 64…128.
            XCTAssertTrue((32...96).contains(r.height) && (64...128).contains(r.width), "\(r)")
            if step % 2 == 1 { XCTAssertTrue(data.randomShape(step: step - 1)! == r, "one size per period") }
            drawn.insert([r.height, r.width])
        }
        XCTAssertGreaterThan(drawn.count, 3)

        let g = try task.buildModel(classes: data.classes)
        let store = ParameterStore(graph: g, seed: 1)
        let trainer = Trainer(executor: try Executor(graph: g, batch: 8, mode: .training, parameters: store), optimizer: SGD(momentum: 0.9), learningRate: 1e-4)
        var used = Set<[Int]>()
        for step in 0..<6 {
            let before = store[0].scalars
            let r = try XCTUnwrap(try data.step(trainer))
            let shape = trainer.executor.graph.shape(of: trainer.executor.graph.inputs[0]).dims
            let expected = data.randomShape(step: step)!
            XCTAssertEqual(shape, [3, expected.height, expected.width])
            XCTAssertTrue(trainer.executor.parameters === store)
            XCTAssertTrue(r.loss.isFinite && r.loss > 0)
            XCTAssertNotEqual(store[0].scalars, before, "step \(step) updated the shared parameters")
            used.insert(shape)
        }
        XCTAssertGreaterThan(used.count, 1)

        let m = try task.train(resultsDir: "\(dir!)/multiscale", quiet: true)
        XCTAssertTrue(m["loss"]!.isFinite && m["val_mAP"] != nil, "\(m)")
        XCTAssertEqual(try Checkpoint.read(from: "\(dir!)/multiscale/weights/cspdarknet_tiny_001.tao").graph.shape(of: ValueID(0)).dims, [3, 64, 96])
        let log = try String(contentsOfFile: "\(dir!)/multiscale/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("multi-scale training, a new input size every 2 batches (width 64–128, height 32–96)"), log)
    }

    /// TAO's model_ema: the decay ramps as TAO's callback's, the average is the weighted sum it
    /// should be, and a run with model_ema trains as one without but saves (and validates) the
    /// average, which after one short epoch sits next to the last weights.
    func testModelEMAAveragesTheWeightsItSaves() throws {
        XCTAssertEqual(Double(TrainingRun<YOLOTask<YOLOv4Tiny>>.emaDecay(step: 1)), 0.999 * (1 - exp(-1.0 / 2000)), accuracy: 1e-9)
        XCTAssertEqual(Double(TrainingRun<YOLOTask<YOLOv4Tiny>>.emaDecay(step: 2000)), 0.999 * (1 - exp(-1.0)), accuracy: 1e-7)
        XCTAssertEqual(Double(TrainingRun<YOLOTask<YOLOv4Tiny>>.emaDecay(step: 100_000)), 0.999, accuracy: 1e-7)
        let g = try YOLOTask<YOLOv4Tiny>(specPath: try spec("yolov4_config", epochs: 1)).buildModel(classes: ["bar", "box"])
        let a = ParameterStore(graph: g, seed: 1), b = ParameterStore(graph: g, seed: 2)
        let avg = a.copy(graph: g)
        avg.average(toward: b, decay: 0.3)
        for i in [0, 1, g.parameters.count - 1] {
            for k in 0..<min(50, g.parameters[i].shape.count) {
                XCTAssertEqual(Double(avg.pointer(i)[k]), 0.3 * Double(a.pointer(i)[k]) + 0.7 * Double(b.pointer(i)[k]), accuracy: 1e-6)
            }
        }

        let plain = try spec("yolov4_config", epochs: 1, mosaic: 0)
        let ema = try spec("yolov4_config", epochs: 1, extraTraining: "model_ema: true", mosaic: 0)
        let mp = try YOLOTask<YOLOv4Tiny>(specPath: plain).train(resultsDir: "\(dir!)/plain", quiet: true)
        let me = try YOLOTask<YOLOv4Tiny>(specPath: ema).train(resultsDir: "\(dir!)/ema", quiet: true)
        XCTAssertEqual(mp["loss"]!, me["loss"]!, accuracy: 1e-3 * mp["loss"]!, "the average does not change the training")
        let raw = try Checkpoint.read(from: "\(dir!)/plain/weights/cspdarknet_tiny_001.tao").parameters
        let averaged = try Checkpoint.read(from: "\(dir!)/ema/weights/cspdarknet_tiny_001.tao").parameters
        let initial = ParameterStore(graph: g, seed: 42)   // the spec's random_seed
        // Six steps, decays ≤ 0.003: the average is the last weights but for ~0.3% of the last steps' moves.
        var moved = 0.0, apart = 0.0
        for i in 0..<raw.count where raw.infos[i].role == .convWeight {
            for k in 0..<raw.infos[i].shape.count {
                moved += Double(abs(raw.pointer(i)[k] - initial.pointer(i)[k]))
                apart += Double(abs(raw.pointer(i)[k] - averaged.pointer(i)[k]))
            }
        }
        XCTAssertGreaterThan(moved, 0)
        XCTAssertGreaterThan(apart, 0, "the saved weights are the average, not the weights")
        XCTAssertLessThan(apart, 0.05 * moved)
    }

    /// A backbone from an ONNX classifier: `tao classification export`'s names are this model's, so
    /// the backbone's tensors load by name and the YOLO head starts fresh; a file whose names are
    /// another tool's loads in order, as far as kinds and shapes agree from the first tensor on.
    func testBackboneFromAnONNXClassifier() throws {
        let cls = try DarkNet.build(DarkNetConfig(.cspDarknetTiny, classes: 5, inputShape: [3, 64, 96]))
        let cs = ParameterStore(graph: cls, seed: 3)
        let onnx = "\(dir!)/tiny_classifier.onnx"
        try ONNXExport.write(cls, cs, to: onnx, metadata: ["classes": "[\"a\",\"b\",\"c\",\"d\",\"e\"]"])
        let task = try YOLOTask<YOLOv4Tiny>(specPath: try spec("yolov4_config", epochs: 1, extraTraining: "pretrain_model_path: \"\(onnx)\"", mosaic: 0))
        let ck = try task.readModel(onnx)
        XCTAssertNil(try ck.card?.onnx, "weights for the spec's network, not a graph to train as it is")
        _ = try task.train(resultsDir: "\(dir!)/from_onnx", quiet: true)
        let log = try String(contentsOfFile: "\(dir!)/from_onnx/train.log", encoding: .utf8)
        let backbone = cls.parameters.count - 2   // all but the dense classifier
        XCTAssertTrue(log.contains("loaded \(backbone) of "), log)
        XCTAssertFalse(log.contains("paired in order"), log)

        // Another tool's names: the same tensors, paired in order.
        let yolo = try task.buildModel(classes: ["bar", "box"])
        let renamed = try Graph(inputs: [("input.1", [3, 64, 96])], parameters: cls.parameters.enumerated().map { i, p in
            var q = p; q.name = "onnx::Conv_\(i)"; return q
        }, nodes: cls.nodes, outputs: cls.outputs)
        let store = ParameterStore(graph: yolo, seed: 9)
        let report = try Weights.copy(try Checkpoint(graph: renamed, parameters: cs, card: ModelCard(task: "classification", arch: "onnx", classes: [], inputShape: [3, 64, 96], decoding: .classifierLogits)),
                                      into: store, strict: false, source: "other.onnx")
        XCTAssertTrue(report.contains("loaded \(backbone) of \(yolo.parameters.count) tensors from other.onnx (paired in order"), report)
        for i in 0..<backbone { XCTAssertEqual(store[i].scalars, cs[i].scalars, yolo.parameters[i].name) }
        XCTAssertNotEqual(store[backbone].shape, cs[backbone].shape)
    }

    /// TAO's automatic class weighting (class_weighting_config.enable_auto): each class's loss per
    /// matched anchor, its weight divided out, over the least; blended 0.9 : 0.1 after the first
    /// epoch, taken every tenth; the loss reports those sums; a run logs the weights it trains with.
    func testAutomaticClassWeighting() throws {
        typealias Data = YOLOData<YOLOv4>
        // By hand: per anchor 4 / 1 / 2 = 2 and 6 / 2 / 1 = 3, over the least (2).
        XCTAssertEqual(Data.autoClassWeights(current: [1, 2], loss: [4, 6], anchors: [2, 1], epoch: 0), [1, 1.5])
        let blended = try XCTUnwrap(Data.autoClassWeights(current: [1, 2], loss: [4, 6], anchors: [2, 1], epoch: 10))
        XCTAssertEqual(blended[0], 1, accuracy: 1e-12); XCTAssertEqual(blended[1], 1.95, accuracy: 1e-12)
        XCTAssertNil(Data.autoClassWeights(current: [1, 2], loss: [4, 6], anchors: [2, 1], epoch: 3))
        XCTAssertEqual(Data.autoClassWeights(current: [1, 2, 5], loss: [4, 6, 0], anchors: [2, 1, 0], epoch: 0), [1, 1.5, 5], "no anchors: kept")

        // The loss's per-class sums: every positive's location and class loss, counted by class.
        let layout = YOLOLayout(heads: [YOLOHead(gridWidth: 3, gridHeight: 2, anchors: [(0.3, 0.4), (0.5, 0.2)], xyScale: 1.1)], classes: 3)
        var rng = SplitMix64(seed: 4)
        let out = (0..<(2 * layout.perImage(0))).map { _ in Float(rng.nextNormal()) }
        let targets = [YOLOTargets(objects: [(0, Box(0.1, 0.1, 0.4, 0.5)), (2, Box(0.5, 0.5, 0.9, 0.7))], layout: layout, matchingIoU: 0.2, classWeights: [1, 1, 3]),
                       YOLOTargets(objects: [(2, Box(0.2, 0.3, 0.5, 0.6))], layout: layout, matchingIoU: 0.2, classWeights: [1, 1, 3])]
        let r = out.withUnsafeBufferPointer { YOLOLoss(version: .v4, layout: layout)(outputs: [$0.baseAddress!], targets: targets) }
        XCTAssertEqual(r.parts.perClassLoss.reduce(0, +), r.parts.location + r.parts.classes, accuracy: 1e-9)
        XCTAssertEqual(r.parts.perClassAnchors, (0..<3).map { c in targets.reduce(0) { $0 + $1.positives.filter { $0.classIndex == c }.count } })
        XCTAssertEqual(r.parts.perClassAnchors[1], 0)

        let path = try spec("yolov4_config", epochs: 2, mosaic: 0, extraTop: "class_weighting_config { enable_auto: true }")
        let tiny = try YOLOTask<YOLOv4Tiny>(specPath: path)
        XCTAssertTrue(tiny.config.autoClassWeighting)
        let m = try tiny.train(resultsDir: "\(dir!)/acw", quiet: true)
        let w = [m["class_weight_bar"]!, m["class_weight_box"]!]
        XCTAssertEqual(w.min()!, 1, accuracy: 1e-12, "after epoch 1 the least-lossy class weighs 1: \(w)")
        XCTAssertGreaterThan(w.max()!, 1, "\(w)")
        XCTAssertThrowsError(try YOLOTask<YOLOv3>(specPath: try spec("yolov3_config", epochs: 1, arch: "resnet", extraTop: "class_weighting_config { enable_auto: true }")))
    }

    /// Data-parallel training: automatic class weighting takes every rank's class statistics, so the
    /// ranks (each seeing its shard) weight the classes alike.
    func testAutomaticClassWeightingAddsEveryRanksStatistics() throws {
        let path = try spec("yolov4_config", epochs: 1, mosaic: 0, extraTop: "class_weighting_config { enable_auto: true }")
        let task = try YOLOTask<YOLOv4Tiny>(specPath: path)
        nonisolated(unsafe) let data = try (0..<2).map { _ in try YOLOData<YOLOv4Tiny>(task) }
        (data[0].classLoss, data[0].classAnchors) = ([1, 2], [3, 0])
        (data[1].classLoss, data[1].classAnchors) = ([0.5, 4], [1, 2])
        let group = LocalGroup(size: 2, timeout: 30)
        let done = DispatchGroup()
        nonisolated(unsafe) var errors: [Error] = []
        let lock = NSLock()
        for r in 0..<2 {
            done.enter()
            Thread {
                do { try data[r].synchronize(group.ranks[r]) } catch { lock.lock(); errors.append(error); lock.unlock() }
                done.leave()
            }.start()
        }
        done.wait()
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        for d in data {
            XCTAssertEqual(d.classLoss, [1.5, 6])
            XCTAssertEqual(d.classAnchors, [4, 2])
        }
    }

    /// NVIDIA's own KITTI examples run unchanged but for their paths: YOLOv3 on ResNet-18 (KITTI
    /// folders) and YOLOv4-tiny (dataset_convert's TFRecords, train-fold* / val-fold*) at their
    /// 1248×384 input and batch 8, one training step each on scenes whose objects carry KITTI's
    /// names. Their `pretrain_model_path` names NGC's Keras .hdf5 files, which are not read here: it
    /// is pointed at a checkpoint of the network (another path), and loads.
    func testNVIDIAsExampleSpecsRunButForPaths() throws {
        let fm = FileManager.default
        for split in ["train", "val"] {
            let root = "\(dir!)/kitti_\(split)"
            try fm.createDirectory(atPath: "\(root)/labels", withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: "\(root)/images", withDestinationPath: "\(dir!)/\(split)/images")
            for file in try fm.contentsOfDirectory(atPath: "\(dir!)/\(split)/labels") {
                let text = try String(contentsOfFile: "\(dir!)/\(split)/labels/\(file)", encoding: .utf8)
                try text.replacingOccurrences(of: "Bar ", with: "Car ").replacingOccurrences(of: "Box ", with: "Pedestrian ")
                    .write(toFile: "\(root)/labels/\(file)", atomically: true, encoding: .utf8)
            }
            let export = KITTIExport(root: root, imageDirName: "images", labelDirName: "labels", imageExtension: ".png", partitions: 2, shards: 2,
                                     mode: .random, valSplit: 25)
            _ = try export.run(outputPrefix: "\(dir!)/tfrecords/\(split)")
        }
        func nvidia(_ file: String, _ paths: [(String, String)]) throws -> String {
            var text = try String(contentsOfFile: "Tests/TaoSpecTests/NVIDIA/\(file)", encoding: .utf8)
            for (a, b) in paths {
                XCTAssertTrue(text.contains(a), "\(file): \(a)")
                text = text.replacingOccurrences(of: a, with: b)
            }
            let path = "\(dir!)/\(file)"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        /// One step of the spec's training: its data, augmentation, targets, model and loss.
        func step<V: YOLOVersion>(_ task: YOLOTask<V>) throws -> Float {
            XCTAssertEqual(task.config.inputShape, [3, 384, 1248]); XCTAssertEqual(task.config.batchSize, 8)
            XCTAssertEqual(task.config.classes, ["car", "cyclist", "pedestrian"])
            let data = try YOLOData(task)
            data.start(epoch: 0)
            let g = try task.buildModel(classes: data.classes)
            let pretrained = try XCTUnwrap(task.config.pretrainedModel)
            try Checkpoint(graph: g, parameters: ParameterStore(graph: g, seed: 5), card: task.card(classes: data.classes, epoch: 0)).write(to: pretrained)
            let store = ParameterStore(graph: g, seed: 1)
            let report = try Weights.copy(try task.readModel(pretrained), into: store, strict: true, source: pretrained)
            XCTAssertTrue(report.hasPrefix("loaded \(g.parameters.count) of \(g.parameters.count) tensors"), report)
            let trainer = Trainer(executor: try Executor(graph: g, batch: 8, mode: .training, parameters: store), optimizer: SGD(momentum: 0.9), learningRate: 1e-4)
            return try XCTUnwrap(try data.step(trainer)).loss
        }

        let tiny = try nvidia("yolo_v4_tiny_train_kitti.txt", [
            ("/workspace/tao-experiments/data/yolo_v4_tiny/tfrecords/", "\(dir!)/tfrecords/"),
            ("/workspace/tao-experiments/data/kitti_split/training", "\(dir!)/kitti_train"),
            ("/workspace/tao-experiments/data/kitti_split/val", "\(dir!)/kitti_val"),
            ("EXPERIMENT_DIR/pretrained_cspdarknet_tiny/pretrained_object_detection_vcspdarknet_tiny/cspdarknet_tiny.hdf5", "\(dir!)/cspdarknet_tiny.tao")])
        let tinyLoss = try step(try YOLOTask<YOLOv4Tiny>(specPath: tiny))
        XCTAssertTrue(tinyLoss.isFinite && tinyLoss > 0, "\(tinyLoss)")

        let v3 = try nvidia("yolo_v3_train_resnet18_kitti.txt", [
            ("/workspace/tao-experiments/data/kitti_split/training/label", "\(dir!)/kitti_train/labels"),
            ("/workspace/tao-experiments/data/kitti_split/training/image", "\(dir!)/kitti_train/images"),
            ("/workspace/tao-experiments/data/kitti_split/val/image", "\(dir!)/kitti_val/images"),
            ("/workspace/tao-experiments/data/kitti_split/val/label", "\(dir!)/kitti_val/labels"),
            ("EXPERIMENT_DIR/pretrained_resnet18/pretrained_object_detection_vresnet18/resnet_18.hdf5", "\(dir!)/resnet_18.tao")])
        let v3Loss = try step(try YOLOTask<YOLOv3>(specPath: v3))
        XCTAssertTrue(v3Loss.isFinite && v3Loss > 0, "\(v3Loss)")
    }

    /// A regularizer that outweighs the task's loss in the first epoch is named in the log (with what
    /// each contributed); one that does not is not.
    func testARegularizerOutweighingTheLossIsNoted() throws {
        for (weight, noted) in [("3e-5", false), ("1e-1", true)] {
            let path = try spec("yolov4_config", epochs: 1, mosaic: 0).replacingOccurrences(of: ".txt", with: "")
            let text = try String(contentsOfFile: path + ".txt", encoding: .utf8).replacingOccurrences(of: "weight: 3e-5", with: "weight: \(weight)")
            try text.write(toFile: "\(path)-\(weight).txt", atomically: true, encoding: .utf8)
            _ = try YOLOTask<YOLOv4Tiny>(specPath: "\(path)-\(weight).txt").train(resultsDir: "\(dir!)/reg\(weight)", quiet: true)
            let log = try String(contentsOfFile: "\(dir!)/reg\(weight)/train.log", encoding: .utf8)
            XCTAssertEqual(log.contains("note: the regularizer (L1, weight"), noted, log)
        }
    }

    /// evaluate equals training's last validation; inference writes labels; the exported ONNX with its
    /// NonMaxSuppression, run by onnxruntime, keeps the boxes our decoding and NMS keep on the same
    /// inputs; prune keeps the heads and retrains; the INT8 engine evaluates close to fp32.
    func testEvaluateInferenceExportPruneAndInt8() throws {
        let specPath = try spec("yolov4_config", epochs: 3, mosaic: 0)
        let task = try YOLOTask<YOLOv4Tiny>(specPath: specPath)
        let out = "\(dir!)/run"
        let m = try task.train(resultsDir: out, quiet: true)
        let model = "\(out)/weights/cspdarknet_tiny_003.tao"
        let e = try task.evaluate(modelPath: model, resultsDir: out, quiet: true)
        XCTAssertEqual(e.mAP, m["val_mAP"]!, accuracy: 1e-12)
        XCTAssertEqual(e.images, 12)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/evaluation.json"))) as! [String: Any]
        XCTAssertEqual((json["per_class"] as? [[String: Any]])?.map { $0["class"] as? String }, ["bar", "box"])

        // inference: labels in the images' own pixels, scores above the threshold.
        let found = try task.inference(modelPath: model, images: "\(dir!)/val/images", annotatedDir: "\(dir!)/annotated", labelsDir: "\(dir!)/labels", threshold: 0.2, quiet: true)
        XCTAssertEqual(found.count, 12)
        let written = try KITTI.read("\(dir!)/labels/0000.txt")
        XCTAssertEqual(written.count, found[0].1.count)
        XCTAssertTrue(written.allSatisfy { ($0.score ?? 0) > 0.2 && $0.x1 >= 0 && $0.x2 <= 96 && ["bar", "box"].contains($0.className) })
        XCTAssertGreaterThan(found.reduce(0) { $0 + $1.1.count }, 0)
        XCTAssertEqual(try ImageCodec.decode(path: "\(dir!)/annotated/0000.png", channels: 3).width, 96)

        // ONNX with NMS against our decoding on the same letterboxed inputs.
        let onnx = "\(dir!)/model.onnx"
        let frames = try task.frames().val
        let (layout, runner, r) = try exportedAgainstOurs(task, model: model, frames: frames, name: "model", stride: 32)
        let ck = try Checkpoint.read(from: model)
        let heads = layout.heads.indices.map { UnsafePointer(runner.outputPointer($0)) }
        // What NMS keeps, where no two candidates overlap within 0.001 of the IoU threshold or tie in
        // score while overlapping (there float32 and float64 may round to opposite sides, or break the
        // tie either way, and the selections rightly differ).
        let ours = task.detections(runner, batch: frames.count, layout: layout)
        var compared = 0, borderline = 0
        for img in frames.indices {
            for c in 0..<2 {
                let candidates = YOLODecoder.slots(outputs: heads, image: img, layout: layout).filter { $0.scores[c] > Double(Float(task.config.confidenceThreshold)) }
                let unstable = candidates.indices.contains { i in candidates.indices.contains { j in
                    let iou = candidates[i].box.iou(candidates[j].box)
                    return j > i && (abs(iou - 0.5) < 1e-3 || (iou > 0.5 && abs(candidates[i].scores[c] - candidates[j].scores[c]) < 1e-4))
                } }
                if unstable { borderline += 1; continue }
                var theirs = r.selected.filter { $0[0] == img && $0[1] == c }.map { (box: Box(r.boxes[img][$0[2]][0] / 96, r.boxes[img][$0[2]][1] / 64, r.boxes[img][$0[2]][2] / 96, r.boxes[img][$0[2]][3] / 64), score: r.scores[img][c][$0[2]]) }
                let mine = ours[img][c]
                XCTAssertEqual(theirs.count, mine.count, "image \(img) class \(c)")
                // Paired by coordinates, within the error model above (an undertrained model's boxes can be
                // slivers, whose IoU says nothing about how close two of them are).
                for a in mine {
                    let size = (a.box.x2 - a.box.x1) * 96 + (a.box.y2 - a.box.y1) * 64
                    func far(_ b: Box) -> Double { max(abs(a.box.x1 - b.x1) * 96, abs(a.box.y1 - b.y1) * 64, abs(a.box.x2 - b.x2) * 96, abs(a.box.y2 - b.y2) * 64) }
                    guard let k = theirs.indices.min(by: { far(theirs[$0].box) < far(theirs[$1].box) }) else { break }
                    XCTAssertLessThan(far(theirs[k].box), 1e-3 * (32 + size), "image \(img) class \(c)")
                    XCTAssertEqual(a.score, theirs[k].score, accuracy: 1e-4)
                    theirs.remove(at: k)
                }
                compared += 1
            }
        }
        XCTAssertGreaterThan(compared, 2 * borderline, "images and classes compared: \(compared), borderline: \(borderline)")
        // The exported file (decoding and NMS appended) evaluates as the checkpoint: read up to its heads.
        let fromONNX = try task.evaluate(modelPath: onnx, resultsDir: "\(dir!)/onnx_eval", quiet: true)
        XCTAssertEqual(fromONNX.mAP, e.mAP, accuracy: 1e-3)
        XCTAssertEqual(fromONNX.images, 12)
        // The raw heads, on request; the exported model evaluates as the checkpoint does.
        try YOLOTask<YOLOv4Tiny>.export(modelPath: model, output: "\(dir!)/raw.onnx", rawOutputs: true)
        XCTAssertEqual(try task.evaluate(modelPath: "\(dir!)/raw.onnx", resultsDir: "\(dir!)/onnx_eval", quiet: true).mAP, e.mAP, accuracy: 1e-3)

        // prune: the heads keep their channels; the pruned model retrains as it is.
        var o = PruneOptions(); o.threshold = 0.7; o.minFilters = 8
        let pruned = "\(dir!)/pruned.tao"
        let report = try YOLOTask<YOLOv4Tiny>.prune(modelPath: model, output: pruned, options: o, task: task, bnImages: 16, resultsDir: "\(dir!)/prune", quiet: true)
        XCTAssertLessThan(report.parametersAfter, report.parametersBefore)
        let p = try Checkpoint.read(from: pruned)
        XCTAssertEqual(p.graph.outputs.map { p.graph.shape(of: $0) }, ck.graph.outputs.map { ck.graph.shape(of: $0) })
        let retrain = try spec("yolov4_config", epochs: 1, extraTraining: "pruned_model_path: \"\(pruned)\"", mosaic: 0)
        XCTAssertNotNil(try YOLOTask<YOLOv4Tiny>(specPath: retrain).train(resultsDir: "\(dir!)/retrain", quiet: true)["val_mAP"])
        XCTAssertEqual(try Checkpoint.read(from: "\(dir!)/retrain/weights/cspdarknet_tiny_001.tao").graph.parameters.map(\.shape), p.graph.parameters.map(\.shape))

        // INT8: calibrated on the training images, the engine evaluates close to fp32.
        var x = Int8ExportOptions(output: onnx)
        (x.spec, x.imageDir, x.batches, x.batchSize, x.tactics) = (specPath, "\(dir!)/train/images", 3, 8, .direct)
        let files = try YOLOTask<YOLOv4Tiny>.exportInt8(modelPath: model, x)
        let int8 = try task.evaluate(modelPath: files.engine, resultsDir: "\(dir!)/int8", quiet: true)
        XCTAssertEqual(int8.mAP, e.mAP, accuracy: 0.1)
    }

    /// Labels outside their image are an error naming the label file and line.
    func testLabelOutsideTheImageNamesFileAndLine() throws {
        try "Box 0.00 0 0.00 10.00 10.00 30.00 30.00 0 0 0 0 0 0 0\nBar 0.00 0 0.00 80.00 40.00 120.00 60.00 0 0 0 0 0 0 0\n"
            .write(toFile: "\(dir!)/train/labels/0003.txt", atomically: true, encoding: .utf8)
        let task = try YOLOTask<YOLOv4Tiny>(specPath: try spec("yolov4_config", epochs: 1))
        XCTAssertThrowsError(try task.train(resultsDir: "\(dir!)/bad", quiet: true)) {
            XCTAssertTrue("\($0)".contains("train/labels/0003.txt:2") && "\($0)".contains("outside the 96×64 image"), "\($0)")
        }
    }
}
