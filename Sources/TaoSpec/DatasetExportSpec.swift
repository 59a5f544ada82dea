import Foundation

/// A validated `dataset_convert` spec (TAO's `DatasetExportConfig`): where the KITTI data is and how
/// to split it. COCO sources are recognised and refused with a clear message until they land.
public struct DatasetExportSpec: Sendable {
    public var root: String
    public var imageDirName: String
    public var labelDirName: String
    /// With the dot, e.g. ".png".
    public var imageExtension: String
    public var partitions: Int
    public var shards: Int
    public var partitionMode: String
    public var valSplit: Double
    public var sequenceToFramesFile: String?

    public init(path: String) throws { try self.init(text: SpecText(contentsOf: path)) }

    public init(text: SpecText) throws {
        let e = try text.decode(Tao_DetectnetV2_DatasetExportConfig.self)
        let fail = text.error(at:_:)
        switch e.convertConfigType {
        case .cocoConfig: throw fail(["coco_config"], "COCO conversion is not available in tao-swift yet; convert the annotations to KITTI label files and use kitti_config")
        case nil: throw fail(["kitti_config"], "missing: a conversion spec needs a kitti_config block")
        case .kittiConfig(let k):
            guard !k.rootDirectoryPath.isEmpty else { throw fail(["kitti_config", "root_directory_path"], "missing: the folder that holds the image and label folders") }
            guard !k.imageDirName.isEmpty else { throw fail(["kitti_config", "image_dir_name"], "missing: the image folder's name under root_directory_path") }
            guard !k.labelDirName.isEmpty else { throw fail(["kitti_config", "label_dir_name"], "missing: the label folder's name under root_directory_path") }
            root = k.rootDirectoryPath; imageDirName = k.imageDirName; labelDirName = k.labelDirName
            let ext = k.imageExtension.isEmpty ? ".png" : k.imageExtension
            imageExtension = ext.hasPrefix(".") ? ext : "." + ext
            partitionMode = k.partitionMode.isEmpty ? "random" : k.partitionMode
            guard ["random", "sequence"].contains(partitionMode) else {
                throw fail(["kitti_config", "partition_mode"], "unknown partition mode '\(k.partitionMode)'; use random or sequence")
            }
            partitions = Int(k.numPartitions == 0 ? 2 : k.numPartitions)
            if partitionMode == "random" && partitions != 2 {
                throw fail(["kitti_config", "num_partitions"], "partition_mode \"random\" makes 2 partitions (validation fold 0 and training fold 1); got \(partitions)")
            }
            shards = Int(k.numShards)
            guard shards <= 10_000 else { throw fail(["kitti_config", "num_shards"], "at most 10000 shards, got \(shards)") }
            valSplit = Double(k.valSplit)
            guard (0..<100).contains(valSplit) else { throw fail(["kitti_config", "val_split"], "a percentage in [0, 100), got \(k.valSplit)") }
            sequenceToFramesFile = k.kittiSequenceToFramesFile.isEmpty ? nil : k.kittiSequenceToFramesFile
            if partitionMode == "sequence" && sequenceToFramesFile == nil {
                throw fail(["kitti_config", "kitti_sequence_to_frames_file"], "missing: partition_mode \"sequence\" needs the JSON file of sequences and their frames")
            }
            guard k.pointCloudsDir.isEmpty, k.calibrationsDir.isEmpty else {
                throw fail(["kitti_config"], "point clouds and calibrations (point_clouds_dir, calibrations_dir) are for 3-D tasks, which tao-swift does not have")
            }
        }
    }
}
