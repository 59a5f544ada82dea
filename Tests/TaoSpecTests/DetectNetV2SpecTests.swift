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
}
