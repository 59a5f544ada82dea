import XCTest
import Foundation
@testable import TaoData

final class KITTITests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kitti-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testReadsFifteenAndSixteenColumnLinesAndWritesThemBack() throws {
        let text = """
        Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59

        pedestrian 0.5 2 0 10 20 30.5 60 0 0 0 0 0 0 0 0.875\r
        """
        let o = try KITTI.parse(text, file: "a.txt")
        XCTAssertEqual(o.count, 2)
        XCTAssertEqual(o[0].className, "Car")
        XCTAssertEqual(o[0].x1, 587.01); XCTAssertEqual(o[0].y2, 200.12)
        XCTAssertEqual(o[0].threeD, [1.65, 1.67, 3.64, -0.65, 1.71, 46.70, -1.59])
        XCTAssertNil(o[0].score); XCTAssertFalse(o[0].difficult)
        XCTAssertEqual(o[1].score, 0.875); XCTAssertEqual(o[1].occlusion, 2); XCTAssertTrue(o[1].difficult)
        XCTAssertEqual(o[1].width, 20.5); XCTAssertEqual(o[1].height, 40)
        let path = dir.appendingPathComponent("out.txt").path
        try KITTI.write(o, to: path)
        let back = try KITTI.read(path)
        XCTAssertEqual(back.map(\.className), ["Car", "pedestrian"])
        XCTAssertEqual(back[1].score, 0.875)
        XCTAssertEqual(back[0].x1, 587.01, accuracy: 0.005)
    }

    func testMalformedLinesNameFileLineAndColumn() {
        func error(_ text: String) -> String {
            do { _ = try KITTI.parse(text, file: "labels/7.txt"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("car 0 0 0 1 2 3"), "labels/7.txt:1: too few columns: a KITTI label line has 15 (16 with a score), this one has 7")
        XCTAssertTrue(error("car 0 0 0 1 2 3 4 0 0 0 0 0 0 0 0.5 9").hasPrefix("labels/7.txt:1: too many columns"))
        XCTAssertEqual(error("\ncar 0 0 0 1 2 x 4 0 0 0 0 0 0 0"), "labels/7.txt:2: column 7 (x2) is not a number: 'x'")
        XCTAssertEqual(error("car 0 0 0 10 2 3 4 0 0 0 0 0 0 0"), "labels/7.txt:1: x2 (3) is left of x1 (10)")
        XCTAssertEqual(error("car 0 0 0 1 9 3 4 0 0 0 0 0 0 0"), "labels/7.txt:1: y2 (4) is above y1 (9)")
        XCTAssertEqual(error("car 0 1.5 0 1 2 3 4 0 0 0 0 0 0 0"), "labels/7.txt:1: column 3 (occlusion) must be 0, 1, 2 or 3 (-1 for DontCare), got '1.5'")
        // Found by the KITTI fuzzer (Fuzz/kitti): an occlusion too large for an Int trapped.
        XCTAssertEqual(error("car 0 22222222222222222222220 0 1 2 3 4 0 0 0 0 0 0 0"),
                       "labels/7.txt:1: column 3 (occlusion) must be 0, 1, 2 or 3 (-1 for DontCare), got '22222222222222222222220'")
        XCTAssertEqual(error("car 0 4 0 1 2 3 4 0 0 0 0 0 0 0"), "labels/7.txt:1: column 3 (occlusion) must be 0, 1, 2 or 3 (-1 for DontCare), got '4'")
        XCTAssertEqual(error("DontCare -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10"), "no error")
        XCTAssertEqual(error("car 0 0 0 1 2 nan 4 0 0 0 0 0 0 0"), "labels/7.txt:1: column 7 (x2) is not a number: 'nan'")
    }

    func write(_ name: String, _ text: String) {
        FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data(text.utf8))
    }

    func testDatasetPairsImagesWithLabelsAndChecksBoxesAgainstTheImage() throws {
        for sub in ["images", "labels"] { try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true) }
        let png = try ImageCodec.encodePNG(Image(width: 40, height: 30, channels: 1, pixels: Array(repeating: 0, count: 1200)))
        for id in ["b", "a"] { FileManager.default.createFile(atPath: dir.appendingPathComponent("images/\(id).png").path, contents: Data(png)) }
        write("labels/a.txt", "car 0 0 0 1 2 39 29 0 0 0 0 0 0 0\n")
        write("labels/b.txt", "car 0 0 0 1 2 3 4 0 0 0 0 0 0 0\n\nvan 0 0 0 1 2 41 29 0 0 0 0 0 0 0\n")
        let ds = try KITTIDataset(images: dir.appendingPathComponent("images").path, labels: dir.appendingPathComponent("labels").path)
        XCTAssertEqual(ds.ids, ["a", "b"])
        XCTAssertEqual(try ds.objects(0, imageWidth: 40, imageHeight: 30).count, 1)
        XCTAssertThrowsError(try ds.objects(1, imageWidth: 40, imageHeight: 30)) {
            XCTAssertTrue("\($0)".hasSuffix("labels/b.txt:3: box (1.0, 2.0, 41.0, 29.0) lies outside the 40×30 image \(ds.imagePaths[1])"), "\($0)")
        }

        write("images/c.jpg", "")
        XCTAssertThrowsError(try KITTIDataset(images: dir.appendingPathComponent("images").path, labels: dir.appendingPathComponent("labels").path)) {
            XCTAssertTrue("\($0)".contains("images/c.jpg: has no label file"), "\($0)")
        }
        write("labels/c.txt", ""); write("labels/d.txt", "")
        XCTAssertThrowsError(try KITTIDataset(images: dir.appendingPathComponent("images").path, labels: dir.appendingPathComponent("labels").path)) {
            XCTAssertTrue("\($0)".contains("labels/d.txt: has no image d.jpg"), "\($0)")
        }
        XCTAssertThrowsError(try KITTIDataset(images: dir.appendingPathComponent("missing").path, labels: dir.appendingPathComponent("labels").path)) {
            XCTAssertTrue("\($0)".contains("the image folder does not exist"), "\($0)")
        }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try KITTIDataset(images: dir.appendingPathComponent("empty").path, labels: dir.appendingPathComponent("labels").path)) {
            XCTAssertTrue("\($0)".contains("no .jpg, .jpeg or .png images"), "\($0)")
        }
    }

    func testTargetClassMappingLowercasesAndDropsUnmapped() {
        let m = ClassMapping(["Car": "car", "van": "car", "Pedestrian": "person"], targets: ["person", "car"])
        XCTAssertEqual(m.target(of: "VAN"), 1)
        XCTAssertEqual(m.target(of: "pedestrian"), 0)
        XCTAssertNil(m.target(of: "tram"))
    }
}
