import XCTest
import Foundation
@testable import TaoData
import TaoTensor

/// The detection demo's scenes: on a black photograph, every object pixel is known, so each label
/// can be checked against the pixels — tight boxes, truncation only at the border, no object outside
/// its box but the faint fringe below half opacity; crops land in their class folders.
final class DetectionScenesTests: XCTestCase {
    func testLabelsAreTheTightBoxesOfTheVisibleObjects() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scenes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let black = "\(dir)/black.png"
        try Data(try ImageCodec.encodePNG(Image(width: 400, height: 300, channels: 3, pixels: [UInt8](repeating: 0, count: 400 * 300 * 3)))).write(to: URL(fileURLWithPath: black))
        var o = DetectionScenes.Options()
        (o.train, o.test, o.cropsTrain, o.cropsVal) = (40, 10, 30, 10)
        let (train, test) = try DetectionScenes.make(photos: [black], output: "\(dir)/out", options: o)
        XCTAssertEqual(train.scenes, 40)
        XCTAssertEqual(test.scenes, 10)
        XCTAssertGreaterThan(train.truncated, 0, "some objects reach past the border")
        var checked = 0
        for split in ["train", "test"] {
            for n in 0..<(split == "train" ? 40 : 10) {
                let name = String(format: "%05d", n)
                let img = try ImageCodec.decode(path: "\(dir)/out/\(split)/images/\(name).png", channels: 3)
                XCTAssertEqual([img.width, img.height], [o.width, o.height])
                let objects = try KITTI.read("\(dir)/out/\(split)/labels/\(name).txt")
                func level(_ x: Int, _ y: Int) -> UInt8 { (0..<3).map { img.pixels[(y * img.width + x) * 3 + $0] }.max()! }
                for b in objects {
                    XCTAssertTrue(DetectionScenes.classNames.contains(b.className))
                    let (x1, y1, x2, y2) = (Int(b.x1), Int(b.y1), Int(b.x2), Int(b.y2))
                    XCTAssertTrue(x1 >= 0 && y1 >= 0 && x2 <= o.width && y2 <= o.height && x2 - x1 >= 4 && y2 - y1 >= 4, "\(b)")
                    // Tight: each edge row and column holds a pixel of at least half opacity (≥ 0.5 · 90 · 0.55 ≈ 24).
                    XCTAssertTrue((x1..<x2).contains { level($0, y1) >= 20 } && (x1..<x2).contains { level($0, y2 - 1) >= 20 }, "\(split)/\(name): \(b)")
                    XCTAssertTrue((y1..<y2).contains { level(x1, $0) >= 20 } && (y1..<y2).contains { level(x2 - 1, $0) >= 20 }, "\(split)/\(name): \(b)")
                    if b.truncation > 0 { XCTAssertTrue(x1 == 0 || y1 == 0 || x2 == o.width || y2 == o.height, "truncated but inside: \(b)") }
                    checked += 1
                }
                // Outside every box only the fringe below half opacity (v < 1/8: at most 0.5 · 255 · 0.61 ≈ 78).
                for y in 0..<img.height {
                    for x in 0..<img.width where level(x, y) > 80 {
                        XCTAssertTrue(objects.contains { Float(x) >= $0.x1 && Float(x) < $0.x2 && Float(y) >= $0.y1 && Float(y) < $0.y2 },
                                      "\(split)/\(name): bright pixel (\(x), \(y)) outside every box")
                    }
                }
            }
        }
        XCTAssertEqual(checked, train.objects + test.objects)
        let crops = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out/crops/train")
        XCTAssertEqual(Set(crops), Set(DetectionScenes.classNames))
        let count = try crops.reduce(0) { $0 + (try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out/crops/train/\($1)").count) }
        XCTAssertEqual(count, 30)
        XCTAssertThrowsError(try DetectionScenes.make(photos: [], output: "\(dir)/x")) { XCTAssertTrue("\($0)".contains("no background photographs"), "\($0)") }
    }
}
