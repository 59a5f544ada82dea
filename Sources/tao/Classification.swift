import ArgumentParser
import Foundation
import TaoData
import TaoSpec
import TaoTasks

/// Options every classification subcommand shares, named as TAO names them.
struct TaskOptions: ParsableArguments {
    @Option(name: [.customShort("e"), .long], help: "The experiment spec file (TAO 3.0 protobuf text format).") var experimentSpec: String
    @Option(name: [.customShort("r"), .long], help: "Folder for logs, metrics, checkpoints and reports.") var resultsDir: String
    @Flag(help: "Print nothing but errors (the log still goes to the results folder).") var quiet = false
}

struct Classification: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Image classification with a TAO 3.0 classification spec.",
        subcommands: [Train.self, Evaluate.self, Inference.self, Validate.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a classifier as the spec says.",
            discussion: """
            Writes into the results folder: spec.txt, train.log, metrics.csv / metrics.jsonl (one row per epoch), \
            status.json, and weights/<model>_<epoch>.tao after every epoch. Run the same command again to resume \
            an interrupted run from its last checkpoint, or pass --init_epoch to restart from an earlier one.
            """)
        @OptionGroup var options: TaskOptions
        @Option(name: [.customLong("init_epoch")], help: "Resume from the checkpoint of this epoch in the results folder (0: start afresh).")
        var initEpoch: Int?
        func run() throws {
            let task = try ClassificationTask(specPath: options.experimentSpec)
            try task.train(resultsDir: options.resultsDir, quiet: options.quiet, initEpoch: initEpoch)
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Top-k accuracy, per-class precision/recall/F1 and the confusion matrix of a trained model.")
        @OptionGroup var options: TaskOptions
        @Option(name: [.customShort("m"), .long], help: "Model file (default: eval_config.model_path).") var model: String?
        func run() throws {
            let task = try ClassificationTask(specPath: options.experimentSpec)
            _ = try task.evaluate(modelPath: model, resultsDir: options.resultsDir, quiet: options.quiet)
        }
    }

    struct Inference: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Classify one image or every image under a folder; writes inference.csv.")
        @OptionGroup var options: TaskOptions
        @Option(name: [.customShort("m"), .long], help: "Model file (default: eval_config.model_path).") var model: String?
        @Option(name: [.customShort("i"), .long], help: "An image file or a folder of images.") var image: String
        func run() throws {
            let task = try ClassificationTask(specPath: options.experimentSpec)
            _ = try task.inference(modelPath: model, images: image, resultsDir: options.resultsDir, quiet: options.quiet)
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a spec file and the datasets it names, without training.",
            discussion: "Reports the first problem with its file, line and field, or a summary of what training would use.")

        @Option(name: .shortAndLong, help: "The experiment spec file (TAO 3.0 protobuf text format).") var experimentSpec: String

        func run() throws {
            let config = try ClassificationConfig(path: experimentSpec)
            let train = try ImageFolder(root: config.trainPath)
            let val = try ImageFolder(root: config.valPath, expectedClasses: train.classes)
            print("spec OK: \(config.arch)\(config.nLayers > 0 ? "\(config.nLayers)" : ""), input \(config.inputShape.map(String.init).joined(separator: "x")), \(config.epochs) epochs of batch \(config.batchSize)")
            print("train: \(train.count) images in \(train.classes.count) classes (\(train.classes.prefix(10).joined(separator: ", "))\(train.classes.count > 10 ? ", …" : ""))")
            print("val: \(val.count) images")
        }
    }
}

/// Dataset preparation commands.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Prepare datasets.", subcommands: [FashionMNISTFolders.self])

    struct FashionMNISTFolders: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fashion-mnist",
            abstract: "Write Fashion-MNIST (Debian's dataset-fashion-mnist) as train/val/test image folders.")
        @Option(name: .shortAndLong, help: "Output folder.") var output: String
        @Option(help: "Folder with the IDX files.") var source = FashionMNIST.defaultSource
        @Option(help: "Training images per class moved to the validation split.") var valPerClass = 500
        @Option(help: "Keep at most this many images per class and split (for quick experiments).") var limit: Int?

        func run() throws {
            let c = try FashionMNIST.convert(source: source, output: output, valPerClass: valPerClass, limitPerClass: limit)
            print("wrote \(c.train) train, \(c.val) val and \(c.test) test images under \(output)")
        }
    }
}
