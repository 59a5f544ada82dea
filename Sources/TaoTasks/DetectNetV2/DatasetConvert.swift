import Foundation
import TaoData
import TaoSpec

/// `tao detectnet_v2 dataset_convert -d SPEC -o OUTPUT_PREFIX`: KITTI images and labels into TFRecord
/// folds and shards, as TAO's converter writes them. Shared by the detection tasks that read TFRecords.
public enum DatasetConvert {
    @discardableResult
    public static func run(specPath: String, outputPrefix: String, log: (String) -> Void = { _ in }) throws -> KITTIExport.Summary {
        let s = try DatasetExportSpec(path: specPath)
        let export = KITTIExport(root: s.root, imageDirName: s.imageDirName, labelDirName: s.labelDirName, imageExtension: s.imageExtension,
                                 partitions: s.partitions, shards: s.shards, mode: s.partitionMode == "sequence" ? .sequence : .random,
                                 valSplit: s.valSplit, sequenceToFramesFile: s.sequenceToFramesFile)
        let summary = try export.run(outputPrefix: outputPrefix, log: log)
        log("wrote \(summary.files.count) TFRecord file(s), \(summary.frames.reduce(0, +)) frames: " +
            summary.frames.enumerated().map { "fold \($0.offset) \($0.element)" }.joined(separator: ", ") +
            (s.partitionMode == "random" && s.valSplit > 0 ? " (fold 0 is the validation set: validation_fold: 0)" : ""))
        log("objects per class (names lower-cased; map them to targets with target_class_mapping):")
        for (name, n) in summary.objects.sorted(by: { $0.key < $1.key }) { log("  \(name): \(n)") }
        return summary
    }
}
