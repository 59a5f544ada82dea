import Foundation
import TaoTensor

/// TAO's `dataset_convert` for KITTI: frames split into partitions (folds) and shards of TFRecord
/// files of tf.train.Example records with TAO's feature names (`frame/id`, `frame/width`,
/// `target/object_class`, `target/coordinates_x1`, …), which TAO's and our training read.
public struct KITTIExport {
    public enum PartitionMode: String, Sendable { case random, sequence }

    public var root: String
    public var imageDirName: String
    public var labelDirName: String
    /// With the dot, e.g. ".png".
    public var imageExtension: String
    public var partitions: Int
    /// 0 writes one file per partition, with no shard suffix.
    public var shards: Int
    public var mode: PartitionMode
    /// Percent of the frames (random mode) that go to fold 0, the validation fold.
    public var valSplit: Double
    /// Sequence mode: a JSON object of sequence name → frame ids.
    public var sequenceToFramesFile: String?
    public var seed: UInt64 = 42

    public init(root: String, imageDirName: String, labelDirName: String, imageExtension: String, partitions: Int, shards: Int,
                mode: PartitionMode, valSplit: Double, sequenceToFramesFile: String? = nil) {
        self.root = root; self.imageDirName = imageDirName; self.labelDirName = labelDirName; self.imageExtension = imageExtension
        self.partitions = partitions; self.shards = shards; self.mode = mode; self.valSplit = valSplit; self.sequenceToFramesFile = sequenceToFramesFile
    }

    /// What one conversion wrote.
    public struct Summary: Sendable {
        public var files: [String]
        /// Frames per partition.
        public var frames: [Int]
        /// Objects per (lower-cased) class name.
        public var objects: [String: Int]
    }

    /// The frame ids of each partition (fold 0 first).
    public func partitionFrames() throws -> [[String]] {
        let images = "\(root)/\(imageDirName)"
        switch mode {
        case .random:
            guard partitions == 2 else { throw DataError(root, "partition_mode \"random\" makes 2 partitions (validation and training); num_partitions is \(partitions)") }
            guard (0..<100).contains(valSplit) else { throw DataError(root, "val_split is a percentage in [0, 100), got \(valSplit)") }
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: images) else { throw DataError(images, "the image folder does not exist") }
            let ids = files.filter { $0.hasSuffix(imageExtension) && !$0.hasPrefix(".") }.sorted().map { String($0.dropLast(imageExtension.count)) }
            guard !ids.isEmpty else { throw DataError(images, "no \(imageExtension) images (image_extension)") }
            let nVal = Int(valSplit / 100 * Double(ids.count))
            var rng = SplitMix64(seed: seed)
            // Fisher–Yates with our own generator: the same folds on every toolchain.
            func shuffled(_ a: [String]) -> [String] {
                var a = a
                for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
                return a
            }
            return [shuffled(Array(ids[..<nVal])), shuffled(Array(ids[nVal...]))]
        case .sequence:
            guard partitions >= 1 else { throw DataError(root, "num_partitions must be at least 1") }
            guard let file = sequenceToFramesFile else { throw DataError(root, "partition_mode \"sequence\" needs kitti_sequence_to_frames_file") }
            let path = file.hasPrefix("/") ? file : "\(root)/\(file)"
            guard let data = FileManager.default.contents(atPath: path) else { throw DataError(path, "cannot be read (kitti_sequence_to_frames_file)") }
            guard let map = try? JSONDecoder().decode([String: [String]].self, from: data) else {
                throw DataError(path, "is not a JSON object of sequence name to a list of frame ids")
            }
            // Largest sequences first, dealt round-robin; fold order reversed as TAO does.
            var parts = [[String]](repeating: [], count: partitions)
            for (k, seq) in map.sorted(by: { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }).enumerated() {
                parts[k % partitions] += seq.value
            }
            return parts.reversed()
        }
    }

    /// Converts the dataset, writing `<outputPrefix>-fold-000-of-002-shard-00000-of-00010` files.
    public func run(outputPrefix: String, log: (String) -> Void = { _ in }) throws -> Summary {
        let parts = try partitionFrames()
        let dir = (outputPrefix as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        var summary = Summary(files: [], frames: parts.map(\.count), objects: [:])
        for (p, frames) in parts.enumerated() {
            let shardCount = max(shards, 1)
            for s in 0..<shardCount {
                // Even shards: shard s holds frames [s·n/k, (s+1)·n/k).
                let slice = frames[(s * frames.count / shardCount)..<((s + 1) * frames.count / shardCount)]
                var records: [[UInt8]] = []
                for id in slice { records.append(try TFExample.encode(try example(id, counting: &summary.objects))) }
                var path = outputPrefix + String(format: "-fold-%03d-of-%03d", p, parts.count)
                if shards > 0 { path += String(format: "-shard-%05d-of-%05d", s, shards) }
                try TFRecord.write(records, to: path)
                summary.files.append(path)
            }
            log("partition \(p): \(frames.count) frames")
        }
        return summary
    }

    /// One frame's features, as TAO's KITTI converter writes them.
    func example(_ id: String, counting objects: inout [String: Int]) throws -> [String: ExampleFeature] {
        let image = "\(root)/\(imageDirName)/\(id)\(imageExtension)"
        let labelPath = "\(root)/\(labelDirName)/\(id).txt"
        guard FileManager.default.fileExists(atPath: labelPath) else { throw DataError(image, "has no label file \(labelPath)") }
        let (w, h) = try ImageCodec.size(path: image)
        let labels = try KITTI.read(labelPath)
        for o in labels { objects[o.className.lowercased(), default: 0] += 1 }
        func floats(_ f: (KITTIObject) -> Float) -> ExampleFeature { .floats(labels.map(f)) }
        return [
            "frame/id": .string("\(imageDirName)/\(id)"), "frame/width": .ints([Int64(w)]), "frame/height": .ints([Int64(h)]),
            "target/object_class": .strings(labels.map { $0.className.lowercased() }),
            "target/truncation": floats(\.truncation), "target/occlusion": .ints(labels.map { Int64($0.occlusion) }),
            "target/observation_angle": floats(\.alpha),
            "target/coordinates_x1": floats(\.x1), "target/coordinates_y1": floats(\.y1),
            "target/coordinates_x2": floats(\.x2), "target/coordinates_y2": floats(\.y2),
            "target/world_bbox_h": floats { $0.threeD[0] }, "target/world_bbox_w": floats { $0.threeD[1] },
            "target/world_bbox_l": floats { $0.threeD[2] }, "target/world_bbox_x": floats { $0.threeD[3] },
            "target/world_bbox_y": floats { $0.threeD[4] }, "target/world_bbox_z": floats { $0.threeD[5] },
            "target/world_bbox_rot_y": floats { $0.threeD[6] },
        ]
    }
}

/// One frame read back from a detection TFRecord: where its image is, its size and its objects.
public struct DetectionFrame: Equatable, Sendable {
    public var imagePath: String
    public var width: Int, height: Int
    public var objects: [KITTIObject]
}

public enum DetectionRecords {
    /// The files a TAO `tfrecords_path` names: a path whose last component may hold `*` wildcards.
    public static func files(matching pattern: String) throws -> [String] {
        let dir = (pattern as NSString).deletingLastPathComponent, name = (pattern as NSString).lastPathComponent
        guard name.contains("*") else {
            guard FileManager.default.fileExists(atPath: pattern) else { throw DataError(pattern, "no such TFRecord file (tfrecords_path)") }
            return [pattern]
        }
        guard let all = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { throw DataError(dir, "the folder of tfrecords_path does not exist") }
        let parts = name.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        let hits = all.filter { f in
            guard f.hasPrefix(parts[0]), f.hasSuffix(parts.last!), f.count >= parts[0].count + parts.last!.count, !f.hasSuffix(".tmp") else { return false }
            var rest = Substring(f.dropFirst(parts[0].count))
            for p in parts.dropFirst().dropLast() {
                guard let r = rest.range(of: p) else { return false }
                rest = rest[r.upperBound...]
            }
            return rest.hasSuffix(parts.last!)
        }.sorted()
        guard !hits.isEmpty else { throw DataError(pattern, "matches no TFRecord files (tfrecords_path)") }
        return hits.map { dir.isEmpty ? $0 : "\(dir)/\($0)" }
    }

    /// Every frame of the files, images found under `imageDirectory` as `frame/id` + `imageExtension`.
    /// A record without TAO's features is an error naming the file and the record.
    public static func read(_ files: [String], imageDirectory: String, imageExtension: String) throws -> [DetectionFrame] {
        var frames: [DetectionFrame] = []
        for file in files {
            for (i, r) in try TFRecord.read(file).enumerated() {
                func fail(_ m: String) -> TFRecordError { TFRecordError(file: file, record: i, message: m) }
                let f: [String: ExampleFeature]
                do { f = try TFExample.decode(r) } catch { throw fail("not a tf.train.Example: \(error)") }
                guard case .bytes(let idBytes)? = f["frame/id"], let id = idBytes.first.map({ String(decoding: $0, as: UTF8.self) }) else { throw fail("has no frame/id") }
                guard case .ints(let w)? = f["frame/width"], case .ints(let h)? = f["frame/height"], let width = w.first, let height = h.first else {
                    throw fail("has no frame/width and frame/height")
                }
                func floats(_ k: String) throws -> [Float] {
                    guard let v = f[k] else { return [] }
                    guard case .floats(let x) = v else { throw fail("\(k) is not a float list") }
                    return x
                }
                var names: [String] = []
                if let v = f["target/object_class"] {
                    guard case .bytes(let b) = v else { throw fail("target/object_class is not a bytes list") }
                    names = b.map { String(decoding: $0, as: UTF8.self) }
                }
                let (x1, y1, x2, y2) = (try floats("target/coordinates_x1"), try floats("target/coordinates_y1"), try floats("target/coordinates_x2"), try floats("target/coordinates_y2"))
                let trunc = try floats("target/truncation")
                var occ: [Int64] = []
                if case .ints(let o)? = f["target/occlusion"] { occ = o }
                guard [x1.count, y1.count, x2.count, y2.count].allSatisfy({ $0 == names.count }) else {
                    throw fail("has \(names.count) object classes but \(x1.count) x1 coordinates")
                }
                let objects = names.indices.map { k in
                    KITTIObject(className: names[k], truncation: k < trunc.count ? trunc[k] : 0, occlusion: k < occ.count ? Int(occ[k]) : 0,
                                x1: x1[k], y1: y1[k], x2: x2[k], y2: y2[k])
                }
                frames.append(DetectionFrame(imagePath: "\(imageDirectory)/\(id)\(imageExtension)", width: Int(width), height: Int(height), objects: objects))
            }
        }
        return frames
    }
}
