import ArgumentParser
import Foundation
import TaoTasks

/// `tao detectnet_v2 …`: TAO's DetectNet_v2 object detector. Data conversion and training work today;
/// evaluation, inference, pruning and export arrive on the shared task skeleton.
struct DetectNetV2: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detectnet_v2",
        abstract: "Object detection with TAO's DetectNet_v2 (PeopleNet, TrafficCamNet, DashCamNet, …).",
        subcommands: [DatasetConvertCommand.self, Train.self])

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
            try options.tao.apply(quiet: options.quiet)
            try DetectNetV2Task(specPath: options.experimentSpec).train(resultsDir: options.resultsDir, quiet: options.quiet, initEpoch: options.initEpoch)
        }
    }
}
