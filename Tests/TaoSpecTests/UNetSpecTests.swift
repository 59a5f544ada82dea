import XCTest
@testable import TaoSpec

/// NVIDIA's UNet specs (the ISBI example of TAO's tutorials and its retrain spec, tao_tf1's own test
/// specs; Tests/TaoSpecTests/NVIDIA, unchanged) read into UNetConfig with TAO's values; bad models,
/// classes and losses are errors naming the field and line.
final class UNetSpecTests: XCTestCase {
    static let nvidia = DetectNetV2SpecTests.nvidia

    func testNVIDIAsUNetSpecsRead() throws {
        let isbi = try UNetConfig(path: "\(Self.nvidia)/unet_train_resnet_unet_isbi.txt")
        XCTAssertEqual(isbi.arch, "resnet"); XCTAssertEqual(isbi.numLayers, 18)
        XCTAssertEqual(isbi.inputShape, [1, 320, 320]); XCTAssertEqual(isbi.imageType, "grayscale")
        XCTAssertTrue(isbi.allProjections); XCTAssertFalse(isbi.useBatchNorm)
        XCTAssertEqual(isbi.batchSize, 3); XCTAssertEqual(isbi.epochs, 50); XCTAssertEqual(isbi.loss, "cross_entropy")
        XCTAssertEqual(isbi.learningRate, 1e-4)
        XCTAssertEqual(isbi.adam.beta1, 0.899999976158); XCTAssertEqual(isbi.adam.epsilon, 9.99999993923e-09)
        XCTAssertEqual(isbi.regularizer?.type, "L2"); XCTAssertEqual(isbi.regularizer?.weight, 2e-5)
        XCTAssertEqual(isbi.schedule, .constant)
        XCTAssertEqual(isbi.train, UNetConfig.Split(images: [.folder("/workspace/tao-experiments/data/isbi/images/train")],
                                                   masks: [.folder("/workspace/tao-experiments/data/isbi/masks/train")]))
        XCTAssertEqual(isbi.test?.masks, [])
        XCTAssertFalse(isbi.augment); XCTAssertEqual(isbi.hflip, 0.5); XCTAssertEqual(isbi.cropAndResizeProbability, 0.5); XCTAssertEqual(isbi.brightnessDelta, 0.2)
        XCTAssertEqual(isbi.targetClasses.map(\.labelID), [0, 1])
        XCTAssertEqual(isbi.classes, ["foreground", "background"], "ordered by label_id")

        let retrain = try UNetConfig(path: "\(Self.nvidia)/unet_train_resnet_unet_isbi_retrain.txt")
        XCTAssertEqual(retrain.inputShape, [1, 320, 320])

        let test = try UNetConfig(path: "\(Self.nvidia)/unet_test_isbi.txt")
        XCTAssertEqual(test.inputShape, [3, 320, 320]); XCTAssertTrue(test.useBatchNorm); XCTAssertEqual(test.imageType, "grayscale")
        XCTAssertTrue(test.notes.contains { $0.contains("weights_monitor") }, "\(test.notes)")

        // tao_tf1's PeopleSemSegNet test spec (CRLF line ends): QAT, which tao-swift does not do, named by its line.
        XCTAssertThrowsError(try UNetConfig(path: "\(Self.nvidia)/unet_test_peoplesemseg.txt")) { e in
            XCTAssertTrue("\(e)".contains(":10:") && "\(e)".contains("enable_qat"), "\(e)")
        }
    }

    /// Classes that share a mapping_class collapse into one, which trains as the label_id of the
    /// class it names (TAO's build_target_class_list), those ids sorted giving the train ids.
    func testMappingClassesCollapse() throws {
        let c = try UNetConfig(text: SpecText(file: "s.txt", text: spec(classes: [("person", "person", 5), ("background", "background", 7), ("bag", "background", 2), ("face", "person", 3)])))
        XCTAssertEqual(c.classes, ["person", "background"], "person trains as label 5, background as 7")
        XCTAssertEqual(c.trainID, [5: 0, 3: 0, 7: 1, 2: 1])
        XCTAssertEqual(c.targetClasses.count, 4)
        let bad = failure { try UNetConfig(text: SpecText(file: "s.txt", text: spec(classes: [("a", "a", 0), ("b", "c", 1)]))) }
        XCTAssertTrue(bad.contains("mapping_class 'c'"), bad)
    }

    private func failure(_ f: () throws -> UNetConfig) -> String {
        do { _ = try f(); return "no error" } catch { return "\(error)" }
    }

    func testBadSpecsNameTheFieldAndLine() throws {
        func error(_ text: String) -> String {
            do { _ = try UNetConfig(text: SpecText(file: "s.txt", text: text)); return "no error" } catch { return "\(error)" }
        }
        let two = [("a", "a", 0), ("b", "b", 1)]
        var e = error(spec(classes: two).replacingOccurrences(of: "arch: \"resnet\"", with: "arch: \"unet_plus\""))
        XCTAssertTrue(e.contains("s.txt:") && e.contains("model_config.arch") && e.contains("unet_plus"), e)
        e = error(spec(classes: two).replacingOccurrences(of: "num_layers: 18", with: "num_layers: 20"))
        XCTAssertTrue(e.contains("s.txt:3") && e.contains("num_layers 10, 18, 34, 50; got 20"), e)
        e = error(spec(classes: two).replacingOccurrences(of: "num_layers: 18", with: "num_layer: 18"))
        XCTAssertTrue(e.contains("s.txt:3") && e.contains("num_layer"), e)
        e = error(spec(classes: two).replacingOccurrences(of: "model_input_width: 320", with: "model_input_width: 300"))
        XCTAssertTrue(e.contains("model_input_width") && e.contains("multiple of 16"), e)
        e = error(spec(classes: two).replacingOccurrences(of: "model_input_channels: 3", with: "model_input_channels: 1"))
        XCTAssertTrue(e.contains("s.txt:16") && e.contains("input_image_type") && e.contains("model_input_channels 1"), e)
        e = error(spec(classes: [("a", "a", 0), ("b", "b", 0)]))
        XCTAssertTrue(e.contains("'b' and 'a' both have label_id 0"), e)
        e = error(spec(classes: [("a", "a", 0), ("b", "b", 300)]))
        XCTAssertTrue(e.contains("label_id 300"), e)
        e = error(spec(classes: two).replacingOccurrences(of: "loss: \"cross_entropy\"", with: "loss: \"focal\""))
        XCTAssertTrue(e.contains("training_config.loss") && e.contains("cross_entropy, dice, cross_dice_sum"), e)
        e = error(spec(classes: two).replacingOccurrences(of: "  train_masks_path: \"m\"\n", with: ""))
        XCTAssertTrue(e.contains("train_masks_path") && e.contains("missing"), e)
        e = error(spec(classes: [("a", "a", 0)]))
        XCTAssertTrue(e.contains("softmax head needs two or more"), e)
    }

    func spec(classes: [(String, String, Int)]) -> String {
        """
        model_config {
          arch: "resnet"
          num_layers: 18
          model_input_width: 320
          model_input_height: 320
          model_input_channels: 3
        }
        training_config {
          batch_size: 2
          epochs: 3
          loss: "cross_entropy"
          learning_rate: 0.0001
          optimizer { adam { beta1: 0.9 beta2: 0.999 epsilon: 1e-8 } }
        }
        dataset_config {
          input_image_type: "color"
          train_images_path: "i"
          train_masks_path: "m"
          data_class_config {
        \(classes.map { "    target_classes { name: \"\($0.0)\" mapping_class: \"\($0.1)\" label_id: \($0.2) }" }.joined(separator: "\n"))
          }
        }
        """
    }
}
