import ArgumentParser
import Foundation
import TaoTasks

/// `tao unet …`: TAO's semantic segmentation — train, evaluate, inference, and prune and export
/// shared with every task.
struct UNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet", abstract: "TAO's UNet semantic segmentation.",
        subcommands: [UNetTrain.self, UNetEvaluate.self, UNetInference.self, PruneCommand<UNetTask>.self, ExportCommand<UNetTask>.self])
}

struct UNetTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a UNet as a TAO unet spec says.", discussion: """
        Pairs the images and masks of dataset_config by file name (or reads its list files), maps each mask's \
        label_ids to the classes (classes sharing a mapping_class become one), resizes and augments image and mask \
        alike (flips, crop-and-resize; the mask by nearest neighbour), and trains with TAO's loss (cross_entropy, \
        dice or cross_dice_sum). Writes into the results folder what every task's train writes: spec.txt, train.log, \
        metrics.csv with the losses and the validation mean IoU, status.json, classmap.json and \
        weights/<model>_<epoch>.tao. Run it again to resume; --init_epoch restarts from an earlier epoch.
        """)
    @OptionGroup var options: TrainOptions
    @Option(name: [.customShort("m"), .customLong("model")],
            help: "The model to start from (TAO's -m: a pretrained classifier, or with load_graph a pruned UNet), in place of the spec's.")
    var model: String?
    @Option(name: [.customShort("n"), .customLong("model_name")], help: "TAO's model name; accepted, checkpoints are named after the architecture.")
    var modelName: String?

    func run() throws {
        try options.train { comm in
            try UNetTask(specPath: options.experimentSpec, startingModel: model).train(resultsDir: options.resultsDir, quiet: options.quiet, initEpoch: options.initEpoch, collective: comm,
                      arithmetic: options.tao.useAmp ? .bf16 : .fp32)
        }
    }
}

struct UNetEvaluate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "evaluate", abstract: "Per-class IoU and mean IoU of a trained UNet on the spec's validation images.",
                                                    discussion: """
        Each image is resized to the network and its pixels' classes compared with its mask at the network's \
        output size: the confusion matrix, each class's IoU, precision, recall and F1, and their means, printed \
        and in evaluation.json. -m takes a checkpoint, an INT8 engine file or an ONNX file written by export.
        """)
    @Option(name: [.customShort("e"), .customLong("experiment_spec"), .customLong("experiment_spec_file")], help: "The training spec.")
    var experimentSpec: String
    @Option(name: [.customShort("m"), .long], help: "The model (.tao checkpoint, engine file or exported .onnx).") var model: String
    @Option(name: [.customShort("o"), .customShort("r"), .customLong("output_dir"), .customLong("results_dir")],
            help: "Folder for the log and evaluation.json (default: the model's run folder).")
    var outputDir: String?
    @Flag(name: [.customLong("use_training_set")], help: "Evaluate on the training images instead of the validation ones.") var useTrainingSet = false
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var tao: TaoFlags
    func run() throws {
        try tao.apply(quiet: quiet)
        try UNetTask(specPath: experimentSpec).evaluate(modelPath: model, resultsDir: outputDir ?? defaultResultsDir(forModel: model),
                                                        useTrainingSet: useTrainingSet, quiet: quiet)
    }
}

struct UNetInference: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inference", abstract: "Segment images with a trained UNet, as TAO's inference does.",
                                                    discussion: """
        Segments the spec's test images (or -i): OUTPUT/mask_labels_tlt/NAME.png holds each pixel's class index \
        at the image's own size, OUTPUT/vis_overlay_tlt/NAME.png the image with the classes tinted.
        """)
    @Option(name: [.customShort("e"), .customLong("experiment_spec"), .customLong("experiment_spec_file")], help: "The training spec.")
    var experimentSpec: String
    @Option(name: [.customShort("m"), .long], help: "The model (.tao checkpoint, engine file or exported .onnx).") var model: String
    @Option(name: [.customShort("o"), .customLong("output_dir"), .customShort("r"), .customLong("results_dir")], help: "Folder for the masks and overlays.")
    var outputDir: String
    @Option(name: [.customShort("i"), .customLong("image_dir")], help: "An image or a folder of images (default: the spec's test images).") var images: String?
    @Option(name: [.customShort("b"), .customLong("batch_size")], help: "Images per forward pass (default: the spec's batch size).") var batchSize: Int?
    @Flag(help: "Print nothing but errors.") var quiet = false
    @OptionGroup var tao: TaoFlags
    func run() throws {
        try tao.apply(quiet: quiet)
        try UNetTask(specPath: experimentSpec).inference(modelPath: model, images: images, outputDir: outputDir, batchSize: batchSize, quiet: quiet)
    }
}
