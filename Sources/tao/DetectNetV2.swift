import ArgumentParser
import Foundation
import TaoTasks

/// `tao detectnet_v2 …`: TAO's DetectNet_v2 object detector. Data conversion works today; training,
/// evaluation, inference, pruning and export arrive on the shared task skeleton.
struct DetectNetV2: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detectnet_v2",
        abstract: "Object detection with TAO's DetectNet_v2 (PeopleNet, TrafficCamNet, DashCamNet, …).",
        subcommands: [DatasetConvertCommand.self])

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
}
