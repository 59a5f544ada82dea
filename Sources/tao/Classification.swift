import ArgumentParser
import Foundation
import TaoData
import TaoSpec

struct Classification: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Image classification with a TAO 3.0 classification spec.",
        subcommands: [Validate.self])

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
