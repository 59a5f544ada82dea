import XCTest
import ArgumentParser
import Foundation
import TaoData
@testable import tao

/// TAO 3.0's classification notebook, command line by command line, as a TAO user types it
/// (`-k`, no `-r` for evaluate, prune and inference, `-b -d -cm`), on real Fashion-MNIST images.
final class CommandLineTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Parses and runs a command line as `tao` would; returns the exit code it would exit with.
    @discardableResult
    func tao(_ line: String) -> Int32 {
        let args = line.split(separator: " ").map(String.init)
        do {
            var command = try Tao.parseAsRoot(args)
            try command.run()
            return 0
        } catch {
            return Tao.exitCode(for: error).rawValue
        }
    }

    func spec(_ name: String, epochs: Int, pretrained: String? = nil, model: String) throws -> String {
        let text = """
        model_config { arch: "resnet" n_layers: 10 use_batch_norm: True use_pooling: False input_image_size: "1,28,28" }
        train_config {
          train_dataset_path: "\(dir!)/data/train"
          val_dataset_path: "\(dir!)/data/val"
          \(pretrained.map { "pretrained_model_path: \"\($0)\"" } ?? "")
          optimizer { sgd { lr: 0.05 momentum: 0.9 } }
          batch_size_per_gpu: 16
          n_epochs: \(epochs)
          n_workers: 2
          random_seed: 1
          preprocess_mode: "torch"
          lr_config { step { learning_rate: 0.05 step_size: 10 gamma: 0.1 } }
        }
        eval_config { eval_dataset_path: "\(dir!)/data/val" model_path: "\(model)" top_k: 3 batch_size: 20 }
        """
        let path = "\(dir!)/\(name).txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTAOClassificationNotebookCommandLinesRun() throws {
        XCTAssertEqual(tao("data fashion-mnist -o \(dir!)/data --limit 8 --val-per-class 4"), 0)
        let out = "\(dir!)/output", model = "\(out)/weights/resnet10_001.tao"
        let train = try spec("spec", epochs: 1, model: model)
        XCTAssertEqual(tao("classification train -e \(train) -r \(out) -k nvidia_tlt --gpus 1 --log_file \(dir!)/logs/tao.log"), 0)
        let classmap = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: URL(fileURLWithPath: "\(out)/classmap.json")))
        let folders = try FileManager.default.contentsOfDirectory(atPath: "\(dir!)/data/train").sorted()
        XCTAssertEqual(classmap.sorted { $0.value < $1.value }.map(\.key), folders, "class names by output index")
        XCTAssertEqual(classmap.values.sorted(), Array(0..<10))
        let log = try String(contentsOfFile: "\(dir!)/logs/tao.log", encoding: .utf8)
        XCTAssertTrue(log.contains("-k/--key is not needed"), log)
        XCTAssertTrue(log.contains("epoch 1/1"), "--log_file receives the run's log")

        // evaluate -e -k: the model comes from eval_config.model_path, the report goes to its run folder.
        XCTAssertEqual(tao("classification evaluate -e \(train) -k nvidia_tlt"), 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/evaluation.json"))

        // prune -m -o -eq -pth -k: no -r; the report goes beside -o.
        let pruned = "\(out)/resnet_pruned/resnet10_pruned.tao"
        XCTAssertEqual(tao("classification prune -m \(model) -o \(pruned) -eq union -pth 0.6 -k nvidia_tlt"), 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/resnet_pruned/prune_report.json"))

        // retrain and evaluate the retrained model.
        let retrainModel = "\(dir!)/output_retrain/weights/resnet10_001.tao"
        let retrain = try spec("retrain", epochs: 1, pretrained: pruned, model: retrainModel)
        XCTAssertEqual(tao("classification train -e \(retrain) -r \(dir!)/output_retrain -k nvidia_tlt"), 0)
        XCTAssertEqual(tao("classification evaluate -e \(retrain) -k nvidia_tlt"), 0)

        // inference -e -m -k -b -d -cm
        let folder = try FileManager.default.contentsOfDirectory(atPath: "\(dir!)/data/val").sorted()[0]
        XCTAssertEqual(tao("classification inference -e \(retrain) -m \(retrainModel) -k nvidia_tlt -b 4 -d \(dir!)/data/val/\(folder) -cm \(out)/classmap.json"), 0)
        let csv = try String(contentsOfFile: "\(dir!)/output_retrain/inference.csv", encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 1 + 4, "a header and the folder's 4 images")

        // export -m -o -k
        XCTAssertEqual(tao("classification export -m \(retrainModel) -o \(dir!)/export/final_model.onnx -k nvidia_tlt"), 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir!)/export/final_model.onnx"))
    }

    func testUsageErrorsExitNonZeroAndHelpExitsZero() throws {
        XCTAssertNotEqual(tao("classification prune -m a.tao -o b.tao --no_such_flag"), 0)
        XCTAssertNotEqual(tao("classification prune -m a.tao -o b.tao -pth"), 0)
        XCTAssertNotEqual(tao("classification prune -o b.tao"), 0, "missing -m")
        XCTAssertNotEqual(tao("classification prune -m \(dir!)/missing.tao -o \(dir!)/b.tao"), 0, "a missing model is an error")
        XCTAssertNotEqual(tao("classification train -e spec.txt"), 0, "train needs -r")
        XCTAssertNotEqual(tao("classification inference -e spec.txt -i a.png -d folder"), 0, "-i and -d together")
        XCTAssertNotEqual(tao("classification train -e \(dir!)/missing.txt -r \(dir!)/r --gpus 0"), 0)
        XCTAssertEqual(tao("classification prune --help"), 0)
    }

    /// `tao benchmark` times TAO's DetectNet_v2 (non-square input, two outputs) in training, fp32 and
    /// INT8 inference; a bad size is a usage error.
    func testBenchmarkTimesADetector() throws {
        for line in ["--task train", "--task infer", "--task infer --precision int8"] {
            XCTAssertEqual(tao("benchmark --model detectnet_v2_resnet18 --res-hw 64x128 --batch 2 --iters 1 --warmup 0 \(line)"), 0, line)
        }
        XCTAssertNotEqual(tao("benchmark --model detectnet_v2_resnet18 --res-hw 64by128"), 0)
        XCTAssertNotEqual(tao("benchmark --model detectnet_v3"), 0)
    }

    /// `tao detectnet_v2 dataset_convert -d SPEC -o PREFIX` with a TAO conversion spec.
    func testDetectNetDatasetConvertWritesTheFolds() throws {
        for sub in ["kitti/images", "kitti/labels"] { try FileManager.default.createDirectory(atPath: "\(dir!)/\(sub)", withIntermediateDirectories: true) }
        for i in 0..<5 {
            let jpg = try ImageCodec.encodeJPEG(Image(width: 64, height: 48, channels: 3, pixels: Array(repeating: 90, count: 64 * 48 * 3)))
            FileManager.default.createFile(atPath: "\(dir!)/kitti/images/\(i).jpg", contents: Data(jpg))
            try "Car 0.00 0 0.00 4.00 5.00 30.00 40.00 0 0 0 0 0 0 0\n".write(toFile: "\(dir!)/kitti/labels/\(i).txt", atomically: true, encoding: .utf8)
        }
        let spec = "\(dir!)/convert.txt"
        try """
        kitti_config {
          root_directory_path: "\(dir!)/kitti"
          image_dir_name: "images"
          label_dir_name: "labels"
          image_extension: ".jpg"
          partition_mode: "random"
          num_partitions: 2
          val_split: 40
          num_shards: 2
        }
        image_directory_path: "\(dir!)/kitti"
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        XCTAssertEqual(tao("detectnet_v2 dataset_convert -d \(spec) -o \(dir!)/tfrecords/kitti -k nvidia_tlt"), 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir!)/tfrecords").sorted()
        XCTAssertEqual(files, (0..<2).flatMap { f in (0..<2).map { String(format: "kitti-fold-%03d-of-002-shard-%05d-of-00002", f, $0) } })
        let frames = try DetectionRecords.read(files.map { "\(dir!)/tfrecords/\($0)" }, imageDirectory: "\(dir!)/kitti", imageExtension: ".jpg")
        XCTAssertEqual(frames.count, 5)
        XCTAssertEqual(frames.map(\.width), Array(repeating: 64, count: 5))
        XCTAssertNotEqual(tao("detectnet_v2 dataset_convert -d \(dir!)/missing.txt -o \(dir!)/x"), 0)
    }
}
