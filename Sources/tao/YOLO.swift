import ArgumentParser
import Foundation
import TaoGraph
import TaoTasks

/// What sets TAO's three YOLO commands apart in the CLI.
protocol YOLOFlavor: YOLOVersion {
    static var title: String { get }
}
extension YOLOFlavor {
    static var commandName: String { flavor.rawValue }
    /// How many anchor groups the spec takes (small / mid / big, or mid / big for the tiny model).
    static var scales: Int { flavor.heads }
}
extension YOLOv3: YOLOFlavor { static var title: String { "YOLOv3" } }
extension YOLOv4: YOLOFlavor { static var title: String { "YOLOv4" } }
extension YOLOv4Tiny: YOLOFlavor { static var title: String { "YOLOv4-tiny" } }

/// `tao yolo_v3 | yolo_v4 | yolo_v4_tiny …`: train, evaluate, inference, kmeans, and prune and
/// export shared with every task.
struct YOLOCommand<Flavor: YOLOFlavor>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: Flavor.commandName, abstract: "TAO's \(Flavor.title) object detector.",
                             subcommands: [YOLOTrain<Flavor>.self, YOLOEvaluate<Flavor>.self, YOLOInference<Flavor>.self, PruneCommand<YOLOTask<Flavor>>.self,
                                           ExportCommand<YOLOTask<Flavor>>.self, KMeansCommand<Flavor>.self])
    }
}

struct YOLOTrain<Flavor: YOLOFlavor>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "train", abstract: "Train \(Flavor.title) as a TAO \(Flavor.commandName) spec says.", discussion: """
            Reads the KITTI label folders (or TFRecords) of dataset_config, augments as augmentation_config says \
            (HSV, flips, jitter\(Flavor.flavor == .v3 ? "" : ", mosaic")), matches boxes to the anchors and trains with TAO's \
            \(Flavor.title) loss. Writes into the results folder what every task's train writes: spec.txt, train.log, \
            metrics.csv with the losses and the validation mAP, status.json, classmap.json and weights/<model>_<epoch>.tao. \
            Run it again to resume; --init_epoch restarts from an earlier epoch.
            """)
    }
    @OptionGroup var options: TrainOptions
    @Option(name: [.customShort("m"), .customLong("model")], help: "TAO's pretrained or resumed model path; the spec's training_config names it in tao-swift.")
    var model: String?

    func run() throws {
        if model != nil, !options.quiet { print("note: -m is not read by train: name the starting model in training_config (pretrain_model_path or pruned_model_path)") }
        try options.train { comm in
            try YOLOTask<Flavor>(specPath: options.experimentSpec).train(resultsDir: options.resultsDir, quiet: options.quiet, initEpoch: options.initEpoch, collective: comm,
                      arithmetic: options.tao.useAmp ? .bf16 : .fp32)
        }
    }
}

struct YOLOEvaluate<Flavor: YOLOFlavor>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "evaluate", abstract: "AP per class and mAP of a trained \(Flavor.title) model on the spec's validation images.", discussion: """
            Each image is letterboxed to the network's input; detections go through NMS as nms_config says and are \
            matched to the labels at eval_config's matching_iou_threshold, AP by average_precision_mode (SAMPLE: VOC's \
            11 points; INTEGRATE: the area); occluded objects are neutral. Writes evaluation.json and \
            plots/pr_curves.png. -m takes a checkpoint, an INT8 engine file or an ONNX file written by export.
            """)
    }
    @OptionGroup var options: TaskOptions
    @Option(name: [.customShort("m"), .long], help: "The model (.tao checkpoint, engine file or exported .onnx).") var model: String
    @Flag(name: [.customLong("use_training_set")], help: "Evaluate on the training images instead of the validation ones.") var useTrainingSet = false
    func run() throws {
        try options.tao.apply(quiet: options.quiet)
        try YOLOTask<Flavor>(specPath: options.experimentSpec).evaluate(modelPath: model, resultsDir: options.resultsDir ?? defaultResultsDir(forModel: model),
                                                                        useTrainingSet: useTrainingSet, quiet: options.quiet)
    }
}

struct YOLOInference<Flavor: YOLOFlavor>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "inference", abstract: "Detect objects in images with a trained \(Flavor.title) model, as TAO's inference does.", discussion: """
            Each image is letterboxed to the spec's input; boxes above the threshold (after NMS) are written in the \
            image's own pixels: -o gets the annotated images, -l the KITTI label files (the score in the 16th column).
            """)
    }
    @Option(name: [.customShort("e"), .customLong("experiment_spec"), .customLong("experiment_spec_file")], help: "The training spec (its input size, mean and nms_config).")
    var experimentSpec: String
    @Option(name: [.customShort("m"), .long], help: "The model (.tao checkpoint, engine file or exported .onnx).") var model: String
    @Option(name: [.customShort("i"), .customLong("image_dir")], help: "An image or a folder of images.") var images: String
    @Option(name: [.customShort("o"), .customLong("out_image_dir")], help: "Folder for the annotated images.") var outImages: String?
    @Option(name: [.customShort("l"), .customLong("out_label_dir")], help: "Folder for the KITTI label files of the detections.") var outLabels: String?
    @Option(name: [.customShort("t"), .customLong("threshold")], help: "Keep boxes scoring above this (objectness × class).") var threshold = 0.3
    @Option(name: [.customShort("b"), .customLong("batch_size")], help: "Images per forward pass (default: eval_config.batch_size).") var batchSize: Int?
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var tao: TaoFlags

    func validate() throws {
        guard outImages != nil || outLabels != nil else { throw ValidationError("give -o (annotated images) or -l (label files), or both") }
        guard (0..<1).contains(threshold) else { throw ValidationError("-t must be in [0, 1), got \(threshold)") }
    }

    func run() throws {
        try tao.apply(quiet: quiet)
        try YOLOTask<Flavor>(specPath: experimentSpec).inference(modelPath: model, images: images, annotatedDir: outImages, labelsDir: outLabels,
                                                                 threshold: threshold, batchSize: batchSize, quiet: quiet)
    }
}

/// `tao yolo_v4 kmeans -l LABELS -i IMAGES -x W -y H -n 9`, with TAO's flags.
struct KMeansCommand<Flavor: YOLOFlavor>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "kmeans",
            abstract: "Anchor shapes for \(Flavor.commandName) fitted to your boxes, as TAO's kmeans fits them.",
            discussion: """
            Reads the KITTI label folders (-l) with the image folders (-i) they pair with, in order, takes each box's \
            width and height relative to its image, and clusters them by k-medians with 1 − IoU as the distance. Prints \
            the centers, smallest first, in the pixels of a -x by -y network input, as TAO prints them, and as the \
            spec's anchor-shape lines.
            """)
    }
    @Option(name: [.customShort("l"), .customLong("label_folders")], parsing: .upToNextOption, help: "KITTI label folders.")
    var labelFolders: [String]
    @Option(name: [.customShort("i"), .customLong("image_folders")], parsing: .upToNextOption, help: "Image folders, one for each label folder, in the same order.")
    var imageFolders: [String]
    @Option(name: [.customShort("x"), .customLong("size_x")], help: "Network input width.") var sizeX: Int
    @Option(name: [.customShort("y"), .customLong("size_y")], help: "Network input height.") var sizeY: Int
    @Option(name: [.customShort("n"), .customLong("num_clusters")], help: "Number of anchors.") var clusters = Flavor.scales * 3
    @Option(name: .customLong("max_steps"), help: "Rounds of k-medians at most.") var maxSteps = 10_000
    @Option(name: .customLong("min_x"), help: "Leave out boxes not wider than this (network input pixels).") var minX = 0
    @Option(name: .customLong("min_y"), help: "Leave out boxes not taller than this (network input pixels).") var minY = 0
    @Option(name: .customLong("seed"), help: "Seed of the starting centers (TAO's are unseeded).") var seed: UInt64 = 42
    @Option(name: [.customShort("r"), .customLong("results_dir")], help: "Also write the anchors to RESULTS_DIR/anchors.txt.") var resultsDir: String?
    @OptionGroup var tao: TaoFlags

    func validate() throws {
        guard sizeX > 0, sizeY > 0 else { throw ValidationError("-x and -y are the network's input size in pixels, above 0: got \(sizeX) and \(sizeY)") }
        guard clusters > 0 else { throw ValidationError("-n must be at least 1, got \(clusters)") }
    }

    func run() throws {
        try tao.apply()
        let boxes = try AnchorKMeans.boxes(labelFolders: labelFolders, imageFolders: imageFolders,
                                           minWidth: Double(minX) / Double(sizeX), minHeight: Double(minY) / Double(sizeY))
        let (centers, steps) = try AnchorKMeans.fit(boxes, clusters: clusters, seed: seed, maxSteps: maxSteps)
        let lines = ["\(boxes.count) boxes, \(clusters) clusters, \(steps) rounds"] + AnchorKMeans.report(centers, width: sizeX, height: sizeY, scales: Flavor.scales)
        for l in lines { print(l) }
        if let dir = resultsDir {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: "\(dir)/anchors.txt")
        }
    }
}
