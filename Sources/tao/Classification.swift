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
            let config: ClassificationConfig
            do { config = try ClassificationConfig(path: experimentSpec) } catch let e as SpecError { throw ValidationError(e.description) }
            let train: ImageFolder, val: ImageFolder
            do {
                train = try ImageFolder(root: config.trainPath)
                val = try ImageFolder(root: config.valPath, expectedClasses: train.classes)
            } catch let e as DataError { throw ValidationError(e.description) }
            print("spec OK: \(config.arch)\(config.nLayers > 0 ? "\(config.nLayers)" : ""), input \(config.inputShape.map(String.init).joined(separator: "x")), \(config.epochs) epochs of batch \(config.batchSize)")
            print("train: \(train.count) images in \(train.classes.count) classes (\(train.classes.prefix(10).joined(separator: ", "))\(train.classes.count > 10 ? ", …" : ""))")
            print("val: \(val.count) images")
        }
    }
}
