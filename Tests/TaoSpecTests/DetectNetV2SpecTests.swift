import XCTest
@testable import TaoSpec

/// NVIDIA's own DetectNet_v2 specs (Tests/TaoSpecTests/NVIDIA, unchanged) parse with TAO's semantics.
final class DetectNetV2SpecTests: XCTestCase {
    static let nvidia = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("NVIDIA").path

    func testNVIDIAConversionSpecsParse() throws {
        let sequence = try DatasetExportSpec(path: "\(Self.nvidia)/detectnet_v2_kitti_spec.txt")
        XCTAssertEqual(sequence.partitionMode, "sequence")
        XCTAssertEqual(sequence.partitions, 5)
        XCTAssertEqual(sequence.shards, 0)
        XCTAssertEqual(sequence.imageExtension, ".png")          // written '.png', single-quoted
        XCTAssertEqual(sequence.sequenceToFramesFile, "kitti_sequence_to_frames.json")
        let random = try DatasetExportSpec(path: "\(Self.nvidia)/detectnet_v2_kitti_random_split.txt")
        XCTAssertEqual(random.partitionMode, "random")
        XCTAssertEqual(random.valSplit, 20)
        XCTAssertEqual(random.shards, 10)
        XCTAssertEqual(random.imageExtension, ".png", "the default when the spec names none")
        XCTAssertEqual(random.imageDirName, "image_2")
        // COCO parses ([a, b] lists included) and is refused by name until it lands.
        XCTAssertThrowsError(try DatasetExportSpec(path: "\(Self.nvidia)/detectnet_v2_coco_spec.txt")) {
            XCTAssertTrue("\($0)".contains("detectnet_v2_coco_spec.txt:1") && "\($0)".contains("COCO conversion is not available"), "\($0)")
        }
    }

    func testNVIDIATrainingSpecsParseIntoTheExperimentSchema() throws {
        let e = try SpecText(contentsOf: "\(Self.nvidia)/detectnet_v2_default_spec.txt").decode(Tao_DetectnetV2_Experiment.self)
        XCTAssertEqual(e.modelConfig.arch, "resnet")
        XCTAssertEqual(e.modelConfig.numLayers, 18)
        XCTAssertEqual(e.modelConfig.objectiveSet.bbox.scale, 35)
        XCTAssertEqual(e.bboxRasterizerConfig.targetClassConfig["pedestrian"]?.covRadiusX, 0.4)
        XCTAssertEqual(e.bboxRasterizerConfig.deadzoneRadius, 0.67)
        XCTAssertEqual(e.costFunctionConfig.targetClasses.map(\.name), ["car", "pedestrian"])
        XCTAssertEqual(e.costFunctionConfig.targetClasses[0].objectives.map(\.initialWeight), [1, 10])
        let coco = try SpecText(contentsOf: "\(Self.nvidia)/detectnet_v2_coco_tfrecords.txt").decode(Tao_DetectnetV2_Experiment.self)
        XCTAssertFalse(coco.datasetConfig.dataSources.isEmpty)
    }

    func testUnknownFieldsInADetectNetSpecNameTheLine() {
        let text = SpecText(file: "spec.txt", text: """
        random_seed: 42
        model_config {
          arch: "resnet"
          num_layer: 18
        }
        """)
        XCTAssertThrowsError(try text.decode(Tao_DetectnetV2_Experiment.self)) {
            let s = "\($0)"
            XCTAssertTrue(s.contains("spec.txt:4") && s.contains("num_layer"), s)
        }
        // TAO's text_format: a singular field given twice keeps the last value; PeopleNet-era specs write a fractional min_samples.
        let twice = SpecText(file: "t.txt", text: """
        postprocessing_config { target_class_config { key: "car" value { clustering_config { dbscan_eps: 0.2 dbscan_eps: 0.3 dbscan_min_samples: 0.05 } } } }
        """)
        let c = try? twice.decode(Tao_DetectnetV2_Experiment.self).postprocessingConfig.targetClassConfig["car"]?.clusteringConfig
        XCTAssertEqual(c?.dbscanEps, 0.3)
        XCTAssertEqual(c?.dbscanMinSamples, 0.05)
    }

    /// NVIDIA's default training spec, typed: TAO's defaults, the classes in the cost function's
    /// order with their rasterizer, clustering and evaluation settings; what tao-swift does
    /// differently is said in notes naming the line.
    func testNVIDIADefaultSpecBecomesATypedConfig() throws {
        let c = try DetectNetV2Config(path: "\(Self.nvidia)/detectnet_v2_default_spec.txt")
        XCTAssertEqual(c.classes.map(\.name), ["car", "pedestrian"])
        XCTAssertEqual(c.inputShape, [3, 384, 1248])
        XCTAssertEqual(c.imageExtension, ".png")
        XCTAssertEqual(c.validation, .fold(0))
        XCTAssertEqual(c.classMapping["van"], "car")
        XCTAssertEqual(c.numLayers, 18)
        XCTAssertEqual(c.boxScale, 35); XCTAssertEqual(c.boxOffset, 0.5)
        XCTAssertEqual(c.classes[0].boxWeight, 10); XCTAssertEqual(c.classes[0].foregroundWeight, 0.05)
        XCTAssertEqual(c.classes[0].covRadiusX, 0.4); XCTAssertEqual(c.deadzone, 0.67)
        XCTAssertEqual(c.classes[0].dbscanEps, 0.13); XCTAssertEqual(c.classes[0].minimumBoxHeight, 20)
        XCTAssertEqual(c.classes[0].minimumOverlap, 0.7)
        XCTAssertEqual(c.learningRate.max, 5e-4); XCTAssertEqual(c.learningRate.annealing, 0.7)
        XCTAssertEqual(c.regularizer?.kind, "L1")
        XCTAssertEqual(c.apMode, "integrate")
        XCTAssertEqual(c.validationPeriod, 10); XCTAssertEqual(c.firstValidationEpoch, 110)
        XCTAssertEqual(c.epochs, 120); XCTAssertEqual(c.batchSize, 8)
        XCTAssertEqual(c.notes.count, 2, "\(c.notes)")
        XCTAssertTrue(c.notes.contains { $0.contains("enable_autoweighting") && $0.contains("default_spec.txt:") })
    }

    func testDetectNetSpecValuesTAOWouldRejectAreErrorsNamingTheField() {
        func error(_ patch: (String) -> String) -> String {
            let base = try! String(contentsOfFile: "\(Self.nvidia)/detectnet_v2_default_spec.txt", encoding: .utf8)
            do { _ = try DetectNetV2Config(text: SpecText(file: "s.txt", text: patch(base))); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(error { $0.replacingOccurrences(of: "output_image_width: 1248", with: "output_image_width: 1250") }.contains("multiples of 16"))
        XCTAssertTrue(error { $0.replacingOccurrences(of: "name: \"pedestrian\"\n    class_weight", with: "name: \"cyclist\"\n    class_weight") }
            .contains("'cyclist' is no target of dataset_config.target_class_mapping"))
        XCTAssertTrue(error { $0.replacingOccurrences(of: "num_layers: 18", with: "num_layers: 19") }.contains("num_layers"))
        XCTAssertTrue(error { $0.replacingOccurrences(of: "arch: \"resnet\"", with: "arch: \"vgg\"") }.contains("'vgg' is not available"))
        XCTAssertTrue(error { $0.replacingOccurrences(of: "soft_start: 0.1", with: "soft_start: 0.8") }.contains("soft_start < annealing"))
    }

    /// NVIDIA's inference spec (TensorRT flavour) reads as it is: classes, input size, per-class
    /// clustering and colours, the "default" entry; the TensorRT settings are noted, the model path kept.
    func testNVIDIAInferenceSpecBecomesATypedConfig() throws {
        let c = try DetectNetV2InferenceConfig(path: "\(Self.nvidia)/detectnet_v2_inferencer_spec_etlt.txt")
        XCTAssertEqual(c.targetClasses, ["person", "bag", "face"])
        XCTAssertEqual([c.width, c.height, c.channels, c.batchSize, c.stride], [960, 544, 3, 16, 16])
        XCTAssertEqual(c.model, "/home/project_ivadata.cosmos369/scratch_space/inferences/outputs/astro_refactor_inference.etlt")
        XCTAssertTrue(c.notes.contains { $0.contains("tensorrt_config") })
        XCTAssertTrue(c.kittiDump && c.overlay)
        XCTAssertEqual(c.lineWidth, 2)
        XCTAssertEqual(Set(c.handlers.keys), ["person", "bag", "face", "default"])
        let bag = c.handler("bag")
        XCTAssertEqual(bag.coverageThreshold, 0.005)
        XCTAssertEqual(bag.dbscanEps, 0.3)
        XCTAssertEqual(bag.dbscanMinSamples, 1)
        XCTAssertEqual(bag.dbscanConfidence, 0.9)
        XCTAssertEqual(bag.minimumBoxHeight, 4)
        XCTAssertEqual(bag.outputName, "bag")
        XCTAssertTrue(bag.color! == (0, 255, 255))

        func error(_ patch: (String) -> String) -> String {
            let base = try! String(contentsOfFile: "\(Self.nvidia)/detectnet_v2_inferencer_spec_etlt.txt", encoding: .utf8)
            do { _ = try DetectNetV2InferenceConfig(text: SpecText(file: "i.txt", text: patch(base))); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(error { $0.replacingOccurrences(of: "image_width: 960", with: "image_width: 961") }.contains("i.txt:8: inferencer_config.image_width"))
        XCTAssertTrue(error { $0.replacingOccurrences(of: "key:\"bag\"", with: "key:\"bags\"") }.contains("'bags' is not one of the target_classes"))
        XCTAssertTrue(error { $0.replacingOccurrences(of: "confidence_model: \"aggregate_cov\"", with: "confidence_model: \"mlp\"") }.contains("only \"aggregate_cov\""))
        let misspelled = error { $0.replacingOccurrences(of: "dbscan_eps", with: "dbscan_epsilon") }
        // A misspelling inside a map entry's value names its line and the misspelled field.
        XCTAssertTrue(misspelled.hasPrefix("i.txt:44:") && misspelled.contains("unknown field 'dbscan_epsilon'"), misspelled)
        // Several fields on one line: the misspelled one is named, with the fields around it.
        let oneLine = SpecText(file: "o.txt", text: """
        inferencer_config { target_classes: "car" image_width: 960 image_height: 544 image_channels: 3 batch_size: 1
          tlt_config { model: "m.tlt" } }
        bbox_handler_config { kitti_dump: true disable_overlay: false overlay_linewidth: 2
          classwise_bbox_handler_config { key: "car" value: { confidence_model: "aggregate_cov" output_map: "car" clustering_config { coverage_threshold: 0.005 dbscan_epss: 0.3 } } }
        }
        """)
        XCTAssertThrowsError(try DetectNetV2InferenceConfig(text: oneLine)) {
            XCTAssertTrue("\($0)".contains("o.txt:4: bbox_handler_config.classwise_bbox_handler_config.value.clustering_config.dbscan_epss: unknown field 'dbscan_epss'"), "\($0)")
        }
    }
}

