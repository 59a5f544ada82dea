import ArgumentParser
import Foundation
import TaoData
import TaoGraph
import TaoSpec
import TaoPrune
import TaoRuntime
import TaoTasks

/// Options every classification subcommand shares, named as TAO names them.
struct TaskOptions: ParsableArguments {
    @Option(name: [.customShort("e"), .customLong("experiment_spec_file"), .long], help: "The experiment spec file (TAO 3.0 protobuf text format).")
    var experimentSpec: String
    @Option(name: [.customShort("r"), .customLong("results_dir"), .long],
            help: "Folder for the log and reports (default: the run folder of the model, the parent of its weights/ folder).")
    var resultsDir: String?
    @Flag(help: "Print nothing but errors (the log still goes to the results folder).") var quiet = false
    @OptionGroup var tao: TaoFlags
}

struct Classification: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Image classification with a TAO 3.0 classification spec.",
        subcommands: [Train.self, Evaluate.self, Inference.self, PruneCommand<ClassificationTask>.self, ExportCommand<ClassificationTask>.self, Validate.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a classifier as the spec says.",
            discussion: """
            Writes into the results folder: spec.txt, train.log, metrics.csv / metrics.jsonl (one row per epoch), \
            status.json, and weights/<model>_<epoch>.tao after every epoch. Run the same command again to resume \
            an interrupted run from its last checkpoint, or pass --init_epoch to restart from an earlier one.
            """)
        @OptionGroup var options: TrainOptions
        func run() throws {
            try options.train { comm in
                try ClassificationTask(specPath: options.experimentSpec).train(resultsDir: options.resultsDir, quiet: options.quiet, initEpoch: options.initEpoch, collective: comm,
                      arithmetic: options.tao.useAmp ? .bf16 : .fp32)
            }
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Top-k accuracy, per-class precision/recall/F1 and the confusion matrix of a trained model.")
        @OptionGroup var options: TaskOptions
        @Option(name: [.customShort("m"), .long], help: "Model file (default: eval_config.model_path).") var model: String?
        @Option(name: [.customLong("engine_file")], help: "An engine file from `export --data_type int8` or `bf16`, instead of -m.") var engineFile: String?
        func run() throws {
            try options.tao.apply(quiet: options.quiet)
            let task = try ClassificationTask(specPath: options.experimentSpec)
            let path = try task.modelPath(engineFile ?? model)
            _ = try task.evaluate(modelPath: path, resultsDir: options.resultsDir ?? defaultResultsDir(forModel: path), quiet: options.quiet)
        }
    }

    struct Inference: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Classify one image or every image under a folder; writes inference.csv.")
        @OptionGroup var options: TaskOptions
        @Option(name: [.customShort("m"), .long], help: "Model file (default: eval_config.model_path).") var model: String?
        @Option(name: [.customShort("i"), .long], help: "An image file (or a folder of images).") var image: String?
        @Option(name: [.customShort("d"), .customLong("directory")], help: "A folder of images (TAO's -d).") var directory: String?
        @Option(name: [.customShort("b"), .customLong("batch_size")], help: "Images per batch (default: eval_config.batch_size).") var batchSize: Int?
        @Option(name: [.customLong("cm", withSingleDash: true), .customLong("classmap")],
                help: "TAO's classmap.json (written by train); checked against the classes the model was trained on.")
        var classmap: String?
        @Option(name: [.customLong("engine_file")], help: "An engine file from `export --data_type int8` or `bf16`, instead of -m.") var engineFile: String?
        func validate() throws {
            guard (image == nil) != (directory == nil) else { throw ValidationError("give the images with -i IMAGE or -d FOLDER (one of them)") }
            if let b = batchSize, b < 1 { throw ValidationError("-b must be at least 1, got \(b)") }
        }
        func run() throws {
            try options.tao.apply(quiet: options.quiet)
            let task = try ClassificationTask(specPath: options.experimentSpec)
            let path = try task.modelPath(engineFile ?? model)
            _ = try task.inference(modelPath: path, images: (image ?? directory)!, resultsDir: options.resultsDir ?? defaultResultsDir(forModel: path),
                                   batchSize: batchSize, classMap: classmap, quiet: options.quiet)
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a spec file and the datasets it names, without training.",
            discussion: "Reports the first problem with its file, line and field, or a summary of what training would use.")

        @Option(name: .shortAndLong, help: "The experiment spec file (TAO 3.0 protobuf text format).") var experimentSpec: String
        @OptionGroup var tao: TaoFlags

        func run() throws {
            try tao.apply()
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
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Prepare datasets.", subcommands: [FashionMNISTFolders.self, DetectionScenesCommand.self])

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

    struct DetectionScenesCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "detection-scenes",
            abstract: "Make the detection demo: Fashion-MNIST objects pasted onto crops of photographs, with exact KITTI labels.",
            discussion: """
            Writes OUTPUT/{train,test}/{images,labels,masks}: training scenes take their objects from Fashion-MNIST's training \
            set, test scenes from its test set. Boxes are the tight boxes of the visible masks; truncation is the share \
            cut off by the border; occlusion (0, 1, 2) comes from the share that later objects cover; masks/ has each \
            pixel's class index + 1 (0: background), later objects on top, for semantic segmentation. The photographs \
            are scikit-image's CC0 and public-domain sample images (scripts/setup.sh unpacks them from its wheel).
            """)
        @Option(name: .shortAndLong, help: "Output folder.") var output: String
        @Option(help: "Folder with the IDX files.") var source = FashionMNIST.defaultSource
        @Option(parsing: .upToNextOption, help: "Background photographs (PNG or JPEG, at least as large as a scene).") var photos: [String]
        @Option(help: "Training scenes.") var train = 2000
        @Option(help: "Test scenes.") var test = 300
        @Option(help: "Scene width in pixels (a multiple of 16 for DetectNet_v2).") var width = 160
        @Option(help: "Scene height in pixels.") var height = 96
        @Option(help: "Random seed.") var seed: UInt64 = 7
        @Option(help: "Single-object crops for pretraining a classifier (OUTPUT/crops/train/<class>/), 0 for none.") var cropsTrain = 0
        @Option(help: "Validation crops (OUTPUT/crops/val/<class>/).") var cropsVal = 0
        @Option(help: "Side of the crops in pixels.") var cropSize = 32

        func run() throws {
            var o = DetectionScenes.Options()
            (o.train, o.test, o.width, o.height, o.seed) = (train, test, width, height, seed)
            (o.cropsTrain, o.cropsVal, o.cropSize) = (cropsTrain, cropsVal, cropSize)
            let (a, b) = try DetectionScenes.make(fashionMNIST: source, photos: photos, output: output, options: o)
            for (name, c) in [("train", a), ("test", b)] {
                print("\(name): \(c.scenes) scenes, \(c.objects) objects (\(c.truncated) truncated by the border, \(c.occluded) occluded) in \(output)/\(name)")
            }
        }
    }
}
