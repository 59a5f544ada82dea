import XCTest
@testable import TaoSpec

/// NVIDIA's own YOLOv3 / YOLOv4 / YOLOv4-tiny KITTI specs (Tests/TaoSpecTests/NVIDIA, unchanged)
/// read into YOLOConfig with TAO's values; bad anchors, sizes and mixed-up specs are errors naming
/// the field and line.
final class YOLOSpecTests: XCTestCase {
    static let nvidia = DetectNetV2SpecTests.nvidia

    func testNVIDIAsYOLOSpecsRead() throws {
        let v3 = try YOLOConfig(path: "\(Self.nvidia)/yolo_v3_train_resnet18_kitti.txt", flavor: .v3)
        XCTAssertEqual(v3.arch, "resnet"); XCTAssertEqual(v3.nlayers, 18); XCTAssertEqual(v3.archConvBlocks, 2)
        XCTAssertEqual(v3.anchors.map(\.count), [3, 3, 3])
        XCTAssertEqual(v3.anchors[0][2], AnchorShapes.Shape(width: 297.59, height: 176.38))
        XCTAssertEqual(v3.anchors[2][0], AnchorShapes.Shape(width: 15.60, height: 13.88))
        XCTAssertEqual(v3.classes, ["car", "cyclist", "pedestrian"], "TAO's order: the sorted targets")
        XCTAssertEqual(v3.inputShape, [3, 384, 1248])
        XCTAssertEqual(v3.neutralBoxIoU, 0.7); XCTAssertEqual(v3.negativeObjectWeight, 100); XCTAssertEqual(v3.locWeight, 0.8)
        XCTAssertEqual(v3.schedule, .softStartAnnealing(min: 1e-6, max: 1e-4, softStart: 0.1, annealing: 0.5))
        XCTAssertEqual(v3.optimizer, .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-7))
        XCTAssertEqual(v3.regularizer?.kind, "L1"); XCTAssertEqual(v3.regularizer?.weight, 3e-5)
        XCTAssertEqual(v3.gridXYExtend, [0, 0, 0])
        XCTAssertEqual(v3.imageMean, [103.939, 116.779, 123.68])
        if case .kitti(let labels) = v3.sources[0].labels { XCTAssertTrue(labels.hasSuffix("training/label")) } else { XCTFail("KITTI label folders expected") }
        XCTAssertEqual(v3.validationSources.count, 1)

        let v4 = try YOLOConfig(path: "\(Self.nvidia)/yolo_v4_train_resnet18_kitti.txt", flavor: .v4)
        XCTAssertEqual(v4.schedule, .softStartCosine(min: 1e-7, max: 1e-4, softStart: 0.3))
        XCTAssertEqual(v4.gridXYExtend, [0.05, 0.1, 0.2])
        XCTAssertEqual(v4.boxMatchingIoU, 0.25)
        XCTAssertEqual(v4.mosaicProbability, 0.5); XCTAssertEqual(v4.mosaicMinRatio, 0.2)
        XCTAssertEqual(v4.batchSize, 8); XCTAssertEqual(v4.epochs, 80)
        XCTAssertEqual(v4.confidenceThreshold, 0.001); XCTAssertEqual(v4.nmsIoU, 0.5); XCTAssertEqual(v4.topK, 200)
        if case .tfrecords(let p) = v4.sources[0].labels { XCTAssertTrue(p.hasSuffix("train-fold*")) } else { XCTFail("TFRecords expected") }
        XCTAssertTrue(v4.modelEMA, "NVIDIA's YOLOv4 example asks for model_ema")

        for (file, extend) in [("yolo_v4_tiny_train_kitti.txt", [Float(0.05), 0.05]), ("yolo_v4_tiny_kitti.txt", [0.05, 0.1])] {
            let tiny = try YOLOConfig(path: "\(Self.nvidia)/\(file)", flavor: .v4Tiny)
            XCTAssertEqual(tiny.arch, "cspdarknet_tiny")
            XCTAssertEqual(tiny.anchors.map(\.count), [3, 3], "two heads")
            XCTAssertEqual(tiny.gridXYExtend, extend)
        }
        // yolo_v4_tiny_kitti.txt gives `activation` twice (text_format keeps the last).
        XCTAssertEqual(try YOLOConfig(path: "\(Self.nvidia)/yolo_v4_tiny_kitti.txt", flavor: .v4Tiny).activation, "mish")
        XCTAssertNoThrow(try YOLOConfig(path: "\(Self.nvidia)/yolo_v3_train_resnet18_tfrecord.txt", flavor: .v3))
    }

    func error(_ text: String, _ flavor: YOLOConfig.Flavor) -> String {
        do { _ = try YOLOConfig(text: SpecText(file: "s.txt", text: text), flavor: flavor); return "no error" } catch { return "\(error)" }
    }

    /// A valid spec in TAO's layout, with `replace` applied (line for line).
    func spec(_ model: String = "yolov4_config", _ replace: [(String, String)] = []) -> String {
        var s = """
        random_seed: 42
        \(model) {
          big_anchor_shape: "[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]"
          mid_anchor_shape: "[(42.99, 31.91), (79.57, 31.75), (56.80, 56.93)]"
          small_anchor_shape: "[(15.60, 13.88), (30.25, 20.25), (20.67, 49.63)]"
          arch: "resnet"
          nlayers: 18
        }
        training_config {
          batch_size_per_gpu: 8
          num_epochs: 80
          learning_rate { soft_start_cosine_annealing_schedule { min_learning_rate: 1e-7 max_learning_rate: 1e-4 soft_start: 0.3 } }
          optimizer { adam { epsilon: 1e-7 beta1: 0.9 beta2: 0.999 amsgrad: false } }
        }
        eval_config { average_precision_mode: SAMPLE batch_size: 8 matching_iou_threshold: 0.5 }
        nms_config { confidence_threshold: 0.001 clustering_iou_threshold: 0.5 top_k: 200 }
        augmentation_config {
          output_width: 1248
          output_height: 384
          output_channel: 3
        }
        dataset_config {
          data_sources: { label_directory_path: "l" image_directory_path: "i" }
          target_class_mapping { key: "car" value: "car" }
          validation_data_sources: { label_directory_path: "vl" image_directory_path: "vi" }
        }
        """
        for (a, b) in replace { s = s.replacingOccurrences(of: a, with: b) }
        return s
    }

    func testBadAnchorsSizesAndMixedUpSpecsNameTheFieldAndLine() {
        XCTAssertEqual(error(spec(), .v4), "no error")
        // Not a list of pairs.
        var e = error(spec("yolov4_config", [("(297.59, 176.38)]\"", "(297.59, 176.38, 3)]\"")]), .v4)
        XCTAssertTrue(e.contains("s.txt:3") && e.contains("big_anchor_shape") && e.contains("anchor 3 has 3 numbers"), e)
        e = error(spec("yolov4_config", [("\"[(42.99, 31.91), (79.57, 31.75), (56.80, 56.93)]\"", "\"42.99\"")]), .v4)
        XCTAssertTrue(e.contains("s.txt:4") && e.contains("mid_anchor_shape"), e)
        // The tiny model has two heads: small anchors are one group too many.
        e = error(spec("yolov4_config", [("arch: \"resnet\"", "arch: \"cspdarknet_tiny\"")]), .v4Tiny)
        XCTAssertTrue(e.contains("s.txt:5") && e.contains("small_anchor_shape") && e.contains("two heads"), e)
        // A missing group.
        e = error(spec("yolov4_config", [("  mid_anchor_shape: \"[(42.99, 31.91), (79.57, 31.75), (56.80, 56.93)]\"\n", "")]), .v4)
        XCTAssertTrue(e.contains("mid_anchor_shape") && e.contains("missing"), e)
        // Input sizes that are not multiples of 32.
        e = error(spec("yolov4_config", [("output_width: 1248", "output_width: 1250")]), .v4)
        XCTAssertTrue(e.contains("s.txt:18") && e.contains("augmentation_config.output_width") && e.contains("multiple of 32"), e)
        e = error(spec("yolov4_config", [("output_height: 384", "output_height: 16")]), .v4)
        XCTAssertTrue(e.contains("output_height") && e.contains("multiple of 32"), e)
        // A YOLOv3 spec run as YOLOv4, and YOLOv4's mosaic in a YOLOv3 spec.
        e = error(spec("yolov3_config"), .v4)
        XCTAssertTrue(e.contains("s.txt:2") && e.contains("tao yolo_v3"), e)
        e = error(spec("yolov3_config", [("output_channel: 3", "output_channel: 3\n  mosaic_prob: 0.5")]), .v3)
        XCTAssertTrue(e.contains("mosaic_prob") && e.contains("YOLOv3"), e)
        // Backbones TAO's YOLO has not are refused by name (YOLOv3 has no CSPDarkNet), depths it has
        // not too, and freeze_blocks beyond a backbone's blocks; a misspelled field names its line.
        e = error(spec("yolov4_config", [("arch: \"resnet\"", "arch: \"shufflenet\"")]), .v4)
        XCTAssertTrue(e.contains("s.txt:6") && e.contains("yolov4_config.arch") && e.contains("not available"), e)
        e = error(spec("yolov3_config", [("arch: \"resnet\"", "arch: \"cspdarknet\"")]), .v3)
        XCTAssertTrue(e.contains("s.txt:6") && e.contains("YOLOv3 on 'cspdarknet'"), e)
        e = error(spec("yolov4_config", [("arch: \"resnet\"", "arch: \"vgg\"")]), .v4)
        XCTAssertTrue(e.contains("s.txt:7") && e.contains("vgg comes with nlayers 16, 19; got 18"), e)
        e = error(spec("yolov4_config", [("nlayers: 18", "nlayers: 18\n  freeze_blocks: 5")]), .v4)
        XCTAssertTrue(e.contains("freeze_blocks") && e.contains("resnet's block numbers are 0 … 4, got 5"), e)
        e = error(spec("yolov4_config", [("nlayers: 18", "n_layers: 18")]), .v4)
        XCTAssertTrue(e.contains("s.txt:7") && e.contains("n_layers"), e)
        // KITTI folders need validation sources (validation_fold is for TFRecords).
        e = error(spec("yolov4_config", [("  validation_data_sources: { label_directory_path: \"vl\" image_directory_path: \"vi\" }\n", "")]), .v4)
        XCTAssertTrue(e.contains("validation_data_sources") && e.contains("missing"), e)
    }
}
