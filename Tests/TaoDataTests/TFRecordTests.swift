import XCTest
import Foundation
@testable import TaoData
import TaoTestSupport

final class TFRecordTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfrecord-\(UUID().uuidString)").path
        for sub in ["kitti/image_2", "kitti/label_2"] { try FileManager.default.createDirectory(atPath: "\(dir!)/\(sub)", withIntermediateDirectories: true) }
        for i in 0..<10 {
            let png = try ImageCodec.encodePNG(Image(width: 40 + i, height: 30, channels: 3, pixels: Array(repeating: 100, count: (40 + i) * 30 * 3)))
            FileManager.default.createFile(atPath: "\(dir!)/kitti/image_2/\(String(format: "%06d", i)).png", contents: Data(png))
            let labels = (0..<(i % 3)).map { k in "\(k == 0 ? "Car" : "Pedestrian") 0.00 \(k) 0.50 \(1 + k).00 2.00 \(20 + k).50 25.00 1.5 1.6 3.7 1.0 2.0 30.0 -1.5" }
            try (labels.joined(separator: "\n") + "\n").write(toFile: "\(dir!)/kitti/label_2/\(String(format: "%06d", i)).txt", atomically: true, encoding: .utf8)
        }
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testCRC32CKnownAnswers() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)   // the standard check value
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)   // RFC 3720 B.4
    }

    /// Our converter's TFRecords read back with an independent reader (Python protobuf + crc32c),
    /// and with ours, to the label files' values.
    func testConvertedKITTIReadsBackWithAnIndependentReader() throws {
        let export = KITTIExport(root: "\(dir!)/kitti", imageDirName: "image_2", labelDirName: "label_2", imageExtension: ".png",
                                 partitions: 2, shards: 3, mode: .random, valSplit: 20)
        let s = try export.run(outputPrefix: "\(dir!)/tfrecords/kitti_trainval")
        XCTAssertEqual(s.frames, [2, 8], "20% of 10 frames in the validation fold 0")
        XCTAssertEqual(s.files.count, 6)
        XCTAssertEqual((s.files[4] as NSString).lastPathComponent, "kitti_trainval-fold-001-of-002-shard-00001-of-00003")
        XCTAssertEqual(s.objects, ["car": 6, "pedestrian": 3])

        let theirs = try Self.independentRead(s.files)
        let flat = theirs.flatMap { $0 }
        XCTAssertEqual(flat.count, 10)
        let ours = try DetectionRecords.read(try DetectionRecords.files(matching: "\(dir!)/tfrecords/kitti_trainval-fold-*"),
                                             imageDirectory: "\(dir!)/kitti", imageExtension: ".png")
        XCTAssertEqual(ours.count, 10)
        for (frame, rec) in zip(ours, flat) {
            let id = (rec["frame/id"] as! [String])[0]
            XCTAssertEqual(frame.imagePath, "\(dir!)/kitti/\(id).png")
            XCTAssertTrue(id.hasPrefix("image_2/"))
            let i = Int(id.dropFirst(8))!
            XCTAssertEqual(rec["frame/width"] as! [Int], [40 + i])
            XCTAssertEqual(rec["frame/height"] as! [Int], [30])
            let labels = try KITTI.read("\(dir!)/kitti/label_2/\(String(format: "%06d", i)).txt")
            XCTAssertEqual(rec["target/object_class"] as! [String], labels.map { $0.className.lowercased() })
            XCTAssertEqual((rec["target/coordinates_x2"] as! [Double]).map(Float.init), labels.map(\.x2))
            XCTAssertEqual(rec["target/occlusion"] as! [Int], labels.map(\.occlusion))
            XCTAssertEqual((rec["target/world_bbox_z"] as! [Double]).map(Float.init), labels.map { $0.threeD[5] })
            XCTAssertEqual(frame.objects.map(\.x1), labels.map(\.x1))
            XCTAssertEqual(frame.objects.map(\.className), labels.map { $0.className.lowercased() })
            XCTAssertEqual(frame.width, 40 + i)
        }
    }

    func testCorruptTruncatedAndForeignFilesAreErrorsNamingTheRecord() throws {
        let path = "\(dir!)/r.tfrecord"
        try TFRecord.write([[1, 2, 3], Array(repeating: 7, count: 100), [9]], to: path)
        XCTAssertEqual(try TFRecord.read(path), [[1, 2, 3], Array(repeating: 7, count: 100), [9]])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[19 + 16 + 50] ^= 0x01   // inside record 1's data
        XCTAssertThrowsError(try TFRecord.parse(bytes, file: path)) {
            XCTAssertEqual("\($0)", "\(path): record 1: corrupt: the data's checksum does not match")
        }
        bytes[19 + 16 + 50] ^= 0x01
        XCTAssertThrowsError(try TFRecord.parse(Array(bytes.dropLast(3)), file: path)) {
            XCTAssertTrue("\($0)".hasPrefix("\(path): record 2: truncated"), "\($0)")
        }
        XCTAssertThrowsError(try TFRecord.parse(Array("not a tfrecord file at all".utf8), file: "x.txt")) {
            XCTAssertTrue("\($0)".hasPrefix("x.txt: record 0: corrupt: the length's checksum"), "\($0)")
        }
        XCTAssertThrowsError(try DetectionRecords.read([path], imageDirectory: dir, imageExtension: ".png")) {
            XCTAssertTrue("\($0)".hasPrefix("\(path): record 0: "), "\($0)")
        }
        XCTAssertThrowsError(try DetectionRecords.files(matching: "\(dir!)/nothing-*")) {
            XCTAssertTrue("\($0)".contains("matches no TFRecord files"), "\($0)")
        }
    }

    func testSequencePartitionsDealLargestSequencesFirst() throws {
        let seq = ["a": ["000000", "000001", "000002"], "b": ["000003"], "c": ["000004", "000005"], "d": ["000006", "000007", "000008", "000009"]]
        try JSONSerialization.data(withJSONObject: seq).write(to: URL(fileURLWithPath: "\(dir!)/kitti/seq.json"))
        var e = KITTIExport(root: "\(dir!)/kitti", imageDirName: "image_2", labelDirName: "label_2", imageExtension: ".png",
                            partitions: 2, shards: 0, mode: .sequence, valSplit: 0, sequenceToFramesFile: "seq.json")
        // d (4) → 0, a (3) → 1, c (2) → 0, b (1) → 1; then reversed.
        XCTAssertEqual(try e.partitionFrames(), [["000000", "000001", "000002", "000003"], ["000006", "000007", "000008", "000009", "000004", "000005"]])
        let s = try e.run(outputPrefix: "\(dir!)/seq/out")
        XCTAssertEqual(s.files.map { ($0 as NSString).lastPathComponent }, ["out-fold-000-of-002", "out-fold-001-of-002"])
        e.mode = .random; e.partitions = 3
        XCTAssertThrowsError(try e.partitionFrames()) { XCTAssertTrue("\($0)".contains("makes 2 partitions"), "\($0)") }
    }

    static func independentRead(_ files: [String]) throws -> [[[String: Any]]] {
        let out = try PythonReference.run("Tests/TaoDataTests/tfrecord_read.py", arguments: files)
        return try JSONSerialization.jsonObject(with: out) as! [[[String: Any]]]
    }
}
