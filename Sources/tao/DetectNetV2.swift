import ArgumentParser
import Foundation
import TaoTasks

/// `tao detectnet_v2 …`: TAO's DetectNet_v2 object detector: dataset_convert, train, evaluate,
/// inference, and prune and export shared with every task.
struct DetectNetV2: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detectnet_v2",
        abstract: "Object detection with TAO's DetectNet_v2 (PeopleNet, TrafficCamNet, DashCamNet, …).",
        subcommands: [DatasetConvertCommand.self, Train.self, Evaluate.self, Inference.self, PruneCommand<DetectNetV2Task>.self, ExportCommand<DetectNetV2Task>.self])

    struct DatasetConvertCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dataset_convert",
            abstract: "Convert a KITTI dataset (images and label files) to TFRecords, as TAO's dataset_convert does.",
            discussion: """
            The spec is TAO's DatasetExportConfig (kitti_config { root_directory_path image_dir_name label_dir_name \
            image_extension partition_mode num_partitions num_shards val_split }). With partition_mode "random", fold 0 \
            holds val_split percent of the frames (the validation set: validation_fold: 0 in the training spec). Files are \
            named OUTPUT_PREFIX-fold-000-of-002-shard-00000-of-00010.
            """)
        @Option(name: [.customShort("d"), .customLong("dataset_export_spec")], help: "The conversion spec (TAO's DatasetExportConfig).")
        var spec: String
        @Option(name: [.customShort("o"), .customLong("output_filename")], help: "The prefix of the TFRecord files to write.")
        var output: String
        @Option(name: [.customShort("f"), .customLong("validation_fold")], help: "TAO's option; accepted, every fold is written.")
        var validationFold: Int?
        @OptionGroup var tao: TaoFlags

        func run() throws {
            try tao.apply()
            try DatasetConvert.run(specPath: spec, outputPrefix: output) { print($0) }
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train DetectNet_v2 as a TAO DetectNet_v2 spec says.",
            discussion: """
            Reads the TFRecords of dataset_config (written by dataset_convert), holds out validation_fold, and writes \
            into the results folder what classification's train writes: spec.txt, train.log, metrics.csv with the \
            validation mAP and AP per class, status.json, classmap.json and weights/<model>_<epoch>.tao. Run it again \
            to resume; --init_epoch restarts from an earlier epoch.
            """)
        @OptionGroup var options: TrainOptions
        @Option(name: [.customShort("n"), .customLong("model_name")], help: "TAO's model name; accepted, checkpoints are named after the architecture.")
        var modelName: String?

        func run() throws {
            try options.train { comm in
                try DetectNetV2Task(specPath: options.experimentSpec).train(resultsDir: options.resultsDir, quiet: options.quiet, initEpoch: options.initEpoch, collective: comm,
                      arithmetic: options.tao.useAmp ? .bf16 : .fp32)
            }
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "AP per class and mAP of a trained DetectNet_v2 model on the spec's validation data.",
            discussion: """
            Detections are clustered as postprocessing_config says and matched to the labels as TAO's evaluator             matches them: each class at its minimum_detection_ground_truth_overlap, boxes outside its             evaluation_box_config left out, AP by average_precision_mode (SAMPLE: VOC's 11 points; INTEGRATE: the             area). Writes evaluation.json (AP, counts, precision and recall per class) and plots/pr_curves.png.             -m takes a checkpoint, an INT8 engine file or an ONNX file written by export.
            """)
        @OptionGroup var options: TaskOptions
        @Option(name: [.customShort("m"), .long], help: "The model (.tao checkpoint, engine file or exported .onnx).") var model: String
        @Flag(name: [.customLong("use_training_set")], help: "Evaluate on the training frames instead of the validation ones.") var useTrainingSet = false
        func run() throws {
            try options.tao.apply(quiet: options.quiet)
            let task = try DetectNetV2Task(specPath: options.experimentSpec)
            _ = try task.evaluate(modelPath: model, resultsDir: options.resultsDir ?? defaultResultsDir(forModel: model),
                                  useTrainingSet: useTrainingSet, quiet: options.quiet)
        }
    }

    struct Inference: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Detect objects in images with TAO's DetectNet_v2 inference spec; writes labels/ and images_annotated/.",
            discussion: """
            The spec is TAO's Inference message (inferencer_config { target_classes image_width image_height \
            image_channels batch_size tlt_config { model } } bbox_handler_config { kitti_dump disable_overlay \
            overlay_linewidth classwise_bbox_handler_config { key value { clustering_config bbox_color } } }). \
            Each image is resized to the network's input; boxes are written in the image's own pixels, as KITTI \
            lines with the confidence in the 16th column.
            """)
        @Option(name: [.customShort("e"), .customLong("inference_spec"), .long], help: "TAO's DetectNet_v2 inference spec.") var spec: String
        @Option(name: [.customShort("m"), .long], help: "The model (default: inferencer_config.tlt_config.model).") var model: String?
        @Option(name: [.customShort("i"), .customLong("inference_input"), .long], help: "An image, or a folder of images.") var input: String
        @Option(name: [.customShort("o"), .customLong("inference_output"), .long], help: "The output folder (labels/, images_annotated/, the log).") var output: String
        @Option(name: [.customShort("b"), .customLong("batch_size")], help: "Images per batch (default: inferencer_config.batch_size).") var batchSize: Int?
        @Flag(help: "Print nothing but errors.") var quiet = false
        @OptionGroup var tao: TaoFlags
        func validate() throws {
            if let b = batchSize, b < 1 { throw ValidationError("-b must be at least 1, got \(b)") }
        }
        func run() throws {
            try tao.apply(quiet: quiet)
            try DetectNetV2Task.inference(specPath: spec, modelPath: model, images: input, outputDir: output, batchSize: batchSize, quiet: quiet)
        }
    }
}
