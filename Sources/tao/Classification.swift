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
        subcommands: [Train.self, Evaluate.self, Inference.self, Prune.self, Export.self, Validate.self])

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
            try options.tao.apply(quiet: options.quiet)
            try ClassificationTask(specPath: options.experimentSpec).train(resultsDir: options.resultsDir, quiet: options.quiet, initEpoch: options.initEpoch)
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove whole filters from a trained model (TAO's criterion); retrain the result to recover accuracy.",
            discussion: """
            Each filter's L2 norm is normalized per layer (by the layer's maximum, or by the L2 norm of its norms); \
            layers joined by residual adds, squeeze-excite multiplies or depthwise convolutions are decided together \
            (-eq). Filters scoring above -pth are kept, at least -nf per layer, rounded up to a multiple of -pg. \
            The classifier head is never pruned. With -e, the pruned model's batch-norm statistics are measured \
            again on --bn_images training images, and the spec's validation set measures the accuracy before \
            pruning, after it and after that re-estimation. Retrain the pruned model by naming it in \
            train_config.pretrained_model_path.
            """)
        @Option(name: [.customShort("m"), .long], help: "The trained model (.tao).") var model: String
        @Option(name: [.customShort("o"), .long], help: "Where to write the pruned model (.tao).") var output: String
        @Option(name: [.customShort("r"), .customLong("results_dir"), .long], help: "Folder for the log and prune_report.json (default: the folder of -o).")
        var resultsDir: String?
        @Option(name: [.customShort("e"), .customLong("experiment_spec_path"), .long], help: "A spec whose validation set measures accuracy before and after pruning.")
        var experimentSpec: String?
        @Option(name: [.customLong("pth", withSingleDash: true), .customLong("pruning_threshold")], help: "Normalized-norm threshold.") var threshold: Float = 0.1
        @Option(name: [.customShort("n"), .customLong("normalizer")], help: "max or L2.") var normalizer = "max"
        @Option(name: [.customLong("eq", withSingleDash: true), .customLong("equalization_criterion")],
                help: "union, intersection, arithmetic_mean or geometric_mean.") var equalization = "union"
        @Option(name: [.customLong("pg", withSingleDash: true), .customLong("pruning_granularity")], help: "Filters are kept in multiples of this.") var granularity = 8
        @Option(name: [.customLong("nf", withSingleDash: true), .customLong("min_num_filters")], help: "Minimum filters kept per layer.") var minFilters = 16
        @Option(name: [.customLong("el", withSingleDash: true), .customLong("excluded_layers")], parsing: .upToNextOption,
                help: "Layers never to prune.") var excluded: [String] = []
        @Option(name: [.customLong("bn_images")],
                help: "With -e: training images on which the pruned model's batch-norm statistics are measured again (0: keep them).")
        var bnImages = 1024
        @Flag(help: "Print nothing but errors.") var quiet = false
        @OptionGroup var tao: TaoFlags

        func run() throws {
            try tao.apply(quiet: quiet)
            guard bnImages >= 0 else { throw ValidationError("--bn_images must be 0 or more, got \(bnImages)") }
            var o = PruneOptions()
            guard let n = PruneOptions.Normalizer(rawValue: normalizer == "l2" ? "L2" : normalizer) else {
                throw ValidationError("-n must be max or L2, got '\(normalizer)'")
            }
            guard let eq = PruneOptions.Equalization(rawValue: equalization) else {
                throw ValidationError("-eq must be one of \(PruneOptions.Equalization.allCases.map(\.rawValue).joined(separator: ", ")), got '\(equalization)'")
            }
            o.threshold = threshold; o.normalizer = n; o.equalization = eq
            o.granularity = granularity; o.minFilters = minFilters; o.excludedLayers = excluded
            let task = try experimentSpec.map { try ClassificationTask(specPath: $0) }
            try ClassificationTask.prune(modelPath: model, output: output, options: o, task: task, bnImages: bnImages,
                                         resultsDir: resultsDir ?? defaultResultsDir(forModel: output), quiet: quiet)
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a trained model as ONNX (opset 17, dynamic batch, class labels in the metadata); with --data_type int8, also calibrate and write an INT8 ONNX (QDQ) and an INT8 engine file.",
            discussion: """
            INT8: fp32 inference over --batches × --batch_size images of --cal_image_dir (preprocessed as the spec -e says) \
            records every activation's range; the ranges go to --cal_cache_file (JSON; reused when no image folder is given) \
            and, with the model, to --engine_file, which `evaluate` and `inference --engine_file` run with oneDNN's int8 kernels, \
            and to --qdq_file, an INT8 ONNX model in QDQ form for TensorRT, onnxruntime or OpenVINO.
            """)
        @Option(name: [.customShort("m"), .long], help: "The trained model (.tao).") var model: String
        @Option(name: [.customShort("o"), .customLong("output_file"), .long], help: "The .onnx file to write (default: the model's path with .onnx).")
        var output: String?
        @Option(name: [.customShort("e"), .customLong("experiment_spec")], help: "The spec (its preprocessing is used for calibration).") var spec: String?
        @OptionGroup var tao: TaoFlags
        @Option(name: [.customLong("max_batch_size")], help: "TAO's TensorRT batch limit; the ONNX file has a dynamic batch, so any batch runs.") var maxBatchSize: Int?
        @Option(name: [.customLong("max_workspace_size")], help: "TAO's TensorRT workspace; accepted, unused.") var maxWorkspaceSize: Int?
        @Option(name: [.customLong("classmap_json")], help: "TAO's class map; checked against the classes the model was trained on.") var classmap: String?
        @Option(name: [.customLong("data_type")], help: "fp32 or int8.") var dataType = "fp32"
        @Option(name: [.customLong("cal_image_dir")], help: "Images for INT8 calibration.") var calImageDir: String?
        @Option(name: [.customLong("cal_cache_file")], help: "Calibration ranges (JSON): written, or read when no --cal_image_dir is given.") var calCacheFile: String?
        @Option(name: [.customLong("batches")], help: "Calibration batches.") var batches = 10
        @Option(name: [.customLong("batch_size")], help: "Images per calibration batch.") var batchSize = 8
        @Option(name: [.customLong("engine_file")], help: "The INT8 engine file to write (default: OUTPUT with .int8.tao).") var engineFile: String?
        @Option(name: [.customLong("cal_algorithm")],
                help: "How calibration sets each activation's range: max (largest magnitude seen) or entropy (TensorRT's: the clipping that loses least information).")
        var calAlgorithm = "max"
        @Option(name: [.customLong("qdq_file")], help: "The INT8 ONNX file (QDQ form) to write (default: OUTPUT with .int8.onnx).") var qdqFile: String?
        @Option(name: [.customLong("tactics")], help: "How the INT8 engine picks its kernels: timed (oneDNN's alternatives — Winograd for 3×3 convolutions, a depthwise convolution fused into the pointwise one before it — kept where they run faster here at the batch size used; Winograd keeps about 2 bits less precision in those layers) or direct.")
        var tactics = "timed"
        func run() throws {
            let say = { (line: String) in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
            guard dataType == "fp32" || dataType == "int8" else { throw ValidationError("--data_type must be fp32 or int8, got '\(dataType)'") }
            guard let chosen = Int8Engine.Tactics(rawValue: tactics), chosen != .alternatives else { throw ValidationError("--tactics must be timed or direct, got '\(tactics)'") }
            guard let method = Int8Calibration.Method(rawValue: calAlgorithm) else { throw ValidationError("--cal_algorithm must be max or entropy, got '\(calAlgorithm)'") }
            try tao.apply()
            let output = output ?? (model as NSString).deletingPathExtension + ".onnx"
            try ClassificationTask.export(modelPath: model, output: output, classMap: classmap, log: say)
            guard dataType == "int8" else { return }
            var o = ClassificationTask.Int8Export(output: output)
            (o.spec, o.imageDir, o.cacheFile, o.batches, o.batchSize) = (spec, calImageDir, calCacheFile, batches, batchSize)
            (o.method, o.tactics, o.qdqFile, o.engineFile) = (method, chosen, qdqFile, engineFile)
            try ClassificationTask.exportInt8(modelPath: model, o, log: say)
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Top-k accuracy, per-class precision/recall/F1 and the confusion matrix of a trained model.")
        @OptionGroup var options: TaskOptions
        @Option(name: [.customShort("m"), .long], help: "Model file (default: eval_config.model_path).") var model: String?
        @Option(name: [.customLong("engine_file")], help: "An INT8 engine file from `export --data_type int8`, instead of -m.") var engineFile: String?
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
        @Option(name: [.customLong("engine_file")], help: "An INT8 engine file from `export --data_type int8`, instead of -m.") var engineFile: String?
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
