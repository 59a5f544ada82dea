import XCTest
@testable import TaoSpec

/// A spec as TAO 3.0's classification notebook writes it: Python-style booleans, comments,
/// repeated fields on separate lines, odd indentation.
let taoExample = """
model_config {
  arch: "resnet",
  n_layers: 18
  # Setting these parameters to true to match the template downloaded from NGC.
  use_batch_norm: true
  all_projections: true
  freeze_blocks: 0
  freeze_blocks: 1
  input_image_size: "3,224,224"
}
train_config {
  train_dataset_path: "/workspace/data/split/train"
  val_dataset_path: "/workspace/data/split/val"
  pretrained_model_path: "/workspace/pretrained_resnet18/resnet_18.tao"
  optimizer {
    sgd {
    lr: 0.01
    decay: 0.0
    momentum: 0.9
    nesterov: False
  }
}
  batch_size_per_gpu: 64
  n_epochs: 80
  n_workers: 16
  preprocess_mode: "caffe"
  enable_random_crop: True
  enable_center_crop: True
  label_smoothing: 0.0
  mixup_alpha: 0.1
  # regularizer
  reg_config {
    type: "L2"
    scope: "Conv2D,Dense"
    weight_decay: 0.00005
  }
  lr_config {
    step {
      learning_rate: 0.006
      step_size: 10
      gamma: 0.1
    }
  }
}
eval_config {
  eval_dataset_path: "/workspace/data/split/test"
  model_path: "/workspace/output/weights/resnet_080.tao"
  top_k: 3
  batch_size: 256
  n_workers: 8
  enable_center_crop: True
}
"""

final class SpecTests: XCTestCase {
    func spec(_ text: String) throws -> ClassificationConfig { try ClassificationConfig(text: SpecText(file: "spec.txt", text: text)) }

    /// The error for `text`, which must fail.
    func error(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> SpecError? {
        do { _ = try spec(text); XCTFail("spec was accepted", file: file, line: line); return nil } catch let e as SpecError { return e } catch {
            XCTFail("\(error)", file: file, line: line); return nil
        }
    }

    func testTAOExampleParsesWithItsValues() throws {
        let c = try spec(taoExample)
        XCTAssertEqual(c.arch, "resnet")
        XCTAssertEqual(c.nLayers, 18)
        XCTAssertEqual(c.freezeBlocks, [0, 1])
        XCTAssertEqual(c.inputShape, [3, 224, 224])
        XCTAssertTrue(c.allProjections && c.useBatchNorm && c.randomCrop && c.centerCrop)
        XCTAssertEqual(c.optimizer, .sgd(lr: 0.01, momentum: 0.9, nesterov: false, decay: 0))
        XCTAssertEqual(c.schedule, .step(learningRate: 0.006, stepSize: 10, gamma: 0.1))
        XCTAssertEqual(c.regularization, .l2(0.00005, scope: ["Conv2D", "Dense"]))
        XCTAssertEqual(c.batchSize, 64)
        XCTAssertEqual(c.epochs, 80)
        XCTAssertEqual(c.mixupAlpha, 0.1, accuracy: 1e-7)
        XCTAssertEqual(c.preprocessMode, .caffe)
        XCTAssertEqual(c.topK, 3)
        XCTAssertEqual(c.evalBatchSize, 256)
        XCTAssertTrue(c.horizontalFlip)
    }

    func testListSyntaxAndGrayscale() throws {
        let text = taoExample.replacingOccurrences(of: "  freeze_blocks: 0\n  freeze_blocks: 1\n", with: "  freeze_blocks: [2, 3]\n")
            .replacingOccurrences(of: "\"3,224,224\"", with: "\"1,28,28\"")
        let c = try spec(text)
        XCTAssertEqual(c.freezeBlocks, [2, 3])
        XCTAssertEqual(c.inputShape, [1, 28, 28])
    }

    func testMisspelledFieldNamesItsLineAndBlock() throws {
        let text = taoExample.replacingOccurrences(of: "  n_epochs: 80", with: "  n_epoch: 80")
        let e = try XCTUnwrap(error(text))
        XCTAssertEqual(e.line, 24)
        XCTAssertTrue(e.description.contains("spec.txt:24") && e.description.contains("unknown field 'n_epoch'") && e.description.contains("train_config"), e.description)
    }

    func testMisspelledNestedFieldNamesItsLine() throws {
        let text = taoExample.replacingOccurrences(of: "      step_size: 10", with: "      stepsize: 10")
        let e = try XCTUnwrap(error(text))
        XCTAssertEqual(e.line, 40)
        XCTAssertTrue(e.description.contains("train_config.lr_config.step"), e.description)
    }

    func testWrongTypeNamesItsLine() throws {
        let text = taoExample.replacingOccurrences(of: "batch_size_per_gpu: 64", with: "batch_size_per_gpu: \"many\"")
        let e = try XCTUnwrap(error(text))
        XCTAssertEqual(e.line, 23)
    }

    func testOutOfRangeValuesNameFieldAndLine() throws {
        var e = try XCTUnwrap(error(taoExample.replacingOccurrences(of: "label_smoothing: 0.0", with: "label_smoothing: 1.5")))
        XCTAssertEqual(e.field, "train_config.label_smoothing")
        XCTAssertEqual(e.line, 29)
        e = try XCTUnwrap(error(taoExample.replacingOccurrences(of: "n_layers: 18", with: "n_layers: 19")))
        XCTAssertEqual(e.field, "model_config.n_layers")
        XCTAssertTrue(e.message.contains("10, 18, 34, 50, 101"), e.message)
        e = try XCTUnwrap(error(taoExample.replacingOccurrences(of: "\"3,224,224\"", with: "\"3,224\"")))
        XCTAssertEqual(e.field, "model_config.input_image_size")
        e = try XCTUnwrap(error(taoExample.replacingOccurrences(of: "\"resnet\"", with: "\"resnett\"")))
        XCTAssertTrue(e.description.contains("spec.txt:2") && e.message.contains("unknown architecture"), e.description)
        e = try XCTUnwrap(error(taoExample.replacingOccurrences(of: "type: \"L2\"", with: "type: \"L3\"")))
        XCTAssertEqual(e.field, "train_config.reg_config.type")
    }

    func testMissingBlocksAreNamed() throws {
        let noOptimizer = taoExample.replacingOccurrences(of: "  optimizer {\n    sgd {\n    lr: 0.01\n    decay: 0.0\n    momentum: 0.9\n    nesterov: False\n  }\n}\n", with: "")
        XCTAssertEqual(try XCTUnwrap(error(noOptimizer)).field, "train_config.optimizer")
        XCTAssertEqual(try XCTUnwrap(error("model_config { arch: \"resnet\" n_layers: 18 input_image_size: \"3,32,32\" }")).field, "train_config")
    }

    func testMissingFileAndUnbalancedBraces() throws {
        XCTAssertThrowsError(try ClassificationConfig(path: "/nonexistent/spec.txt")) { XCTAssertTrue("\($0)".contains("/nonexistent/spec.txt")) }
        let e = try XCTUnwrap(error(taoExample.replacingOccurrences(of: "eval_config {", with: "eval_config {{")))
        XCTAssertNotNil(e.line)
    }
}
