import XCTest
import Foundation
@testable import TaoData

final class ImageTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("img-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func gradient(_ w: Int, _ h: Int, channels: Int) -> Image {
        Image(width: w, height: h, channels: channels, pixels: (0..<(w * h * channels)).map { UInt8(($0 * 7) % 256) })
    }

    func testPNGRoundTripIsExactForRGBAndGray() throws {
        for c in [1, 3] {
            let img = gradient(13, 7, channels: c)
            XCTAssertEqual(try ImageCodec.decode(ImageCodec.encodePNG(img), name: "x.png", channels: c), img)
        }
    }

    func testJPEGRoundTripIsClose() throws {
        let pixels = (0..<(32 * 16)).flatMap { i -> [UInt8] in let x = i % 32, y = i / 32; return [UInt8(x * 8), UInt8(y * 16), 128] }
        let img = Image(width: 32, height: 16, channels: 3, pixels: pixels)
        let back = try ImageCodec.decode(ImageCodec.encodeJPEG(img, quality: 98), name: "x.jpg", channels: 3)
        XCTAssertEqual(back.width, 32); XCTAssertEqual(back.height, 16)
        let err = zip(back.pixels, img.pixels).map { abs(Int($0) - Int($1)) }.max()!
        XCTAssertLessThan(err, 12)
    }

    func testRGBToGrayUsesLuma() throws {
        let red = Image(width: 1, height: 1, channels: 3, pixels: [255, 0, 0])
        XCTAssertEqual(try ImageCodec.decode(ImageCodec.encodePNG(red), name: "r.png", channels: 1).pixels, [76])
    }

    func testCorruptAndNonImageFilesNameTheFile() throws {
        let jpeg = try ImageCodec.encodeJPEG(gradient(64, 64, channels: 3))
        let cut = dir.appendingPathComponent("cut.jpg")
        try Data(jpeg.prefix(jpeg.count / 2)).write(to: cut)
        XCTAssertThrowsError(try ImageCodec.decode(path: cut.path, channels: 3)) { XCTAssertTrue("\($0)".contains("cut.jpg") && "\($0)".contains("corrupt JPEG"), "\($0)") }
        let png = try ImageCodec.encodePNG(gradient(8, 8, channels: 3))
        let badPNG = dir.appendingPathComponent("bad.png")
        try Data(png.prefix(40)).write(to: badPNG)
        XCTAssertThrowsError(try ImageCodec.decode(path: badPNG.path, channels: 3)) { XCTAssertTrue("\($0)".contains("bad.png") && "\($0)".contains("corrupt PNG"), "\($0)") }
        let txt = dir.appendingPathComponent("notes.jpg")
        try Data("hello".utf8).write(to: txt)
        XCTAssertThrowsError(try ImageCodec.decode(path: txt.path, channels: 3)) { XCTAssertTrue("\($0)".contains("not a JPEG or PNG"), "\($0)") }
    }

    func testImageFolderScansClassesAndReportsProblems() throws {
        let fm = FileManager.default
        let root = dir.appendingPathComponent("train")
        for (cls, n) in [("cat", 2), ("dog", 3)] {
            try fm.createDirectory(at: root.appendingPathComponent(cls), withIntermediateDirectories: true)
            for i in 0..<n { try Data(ImageCodec.encodePNG(gradient(4, 4, channels: 3))).write(to: root.appendingPathComponent("\(cls)/\(i).png")) }
        }
        let set = try ImageFolder(root: root.path)
        XCTAssertEqual(set.classes, ["cat", "dog"])
        XCTAssertEqual(set.labels, [0, 0, 1, 1, 1])

        let val = dir.appendingPathComponent("val")
        try fm.createDirectory(at: val.appendingPathComponent("cat"), withIntermediateDirectories: true)
        try Data(ImageCodec.encodePNG(gradient(4, 4, channels: 3))).write(to: val.appendingPathComponent("cat/a.png"))
        XCTAssertThrowsError(try ImageFolder(root: val.path, expectedClasses: set.classes)) { XCTAssertTrue("\($0)".contains("missing class folders dog"), "\($0)") }

        try fm.createDirectory(at: root.appendingPathComponent("bird"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try ImageFolder(root: root.path)) { XCTAssertTrue("\($0)".contains("bird") && "\($0)".contains("no images"), "\($0)") }
        try Data("x".utf8).write(to: root.appendingPathComponent("bird/readme.txt"))
        XCTAssertThrowsError(try ImageFolder(root: root.path)) { XCTAssertTrue("\($0)".contains("readme.txt"), "\($0)") }
        XCTAssertThrowsError(try ImageFolder(root: dir.appendingPathComponent("nope").path)) { XCTAssertTrue("\($0)".contains("no such folder"), "\($0)") }
    }
}
