import XCTest
import TaoTensor
@testable import TaoData

final class SegmentationDataTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "seg-\(UUID().uuidString)"
        for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: "\(dir!)/\(sub)", withIntermediateDirectories: true) }
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ img: Image, _ path: String) throws { try Data(try ImageCodec.encodePNG(img)).write(to: URL(fileURLWithPath: path)) }

    /// Images and masks pair by name; a mask without an image, an image without a mask, a mask of
    /// another size and a pixel value no class names are errors naming the file.
    func testPairsAndBadMasksNameTheFile() throws {
        let img = Image(width: 4, height: 3, channels: 3, pixels: [UInt8](repeating: 9, count: 36))
        try write(img, "\(dir!)/images/a.jpg".replacingOccurrences(of: ".jpg", with: ".png"))
        try write(img, "\(dir!)/images/b.png")
        try write(Image(width: 4, height: 3, channels: 1, pixels: [0, 0, 7, 7, 0, 0, 7, 7, 0, 0, 0, 0]), "\(dir!)/masks/a.png")
        XCTAssertThrowsError(try SegmentationPairs.folders(images: "\(dir!)/images", masks: "\(dir!)/masks")) {
            XCTAssertTrue("\($0)".contains("b.png") && "\($0)".contains("without a mask"), "\($0)")
        }
        try write(Image(width: 4, height: 3, channels: 1, pixels: [UInt8](repeating: 7, count: 12)), "\(dir!)/masks/b.png")
        try write(Image(width: 4, height: 3, channels: 1, pixels: [UInt8](repeating: 7, count: 12)), "\(dir!)/masks/c.png")
        XCTAssertThrowsError(try SegmentationPairs.folders(images: "\(dir!)/images", masks: "\(dir!)/masks")) {
            XCTAssertTrue("\($0)".contains("c.png") && "\($0)".contains("without an image"), "\($0)")
        }
        try FileManager.default.removeItem(atPath: "\(dir!)/masks/c.png")
        let pairs = try SegmentationPairs.folders(images: "\(dir!)/images", masks: "\(dir!)/masks")
        XCTAssertEqual(pairs.map { ($0.image as NSString).lastPathComponent }, ["a.png", "b.png"])
        XCTAssertEqual(pairs.map { ($0.mask! as NSString).lastPathComponent }, ["a.png", "b.png"])

        // label 0 → class 0, labels 7 and 8 → class 1 (a shared mapping_class).
        let prep = SegmentationPreparation(inputWidth: 4, inputHeight: 3, channels: 3, outputWidth: 4, outputHeight: 3, grayscale: false, trainID: [0: 0, 7: 1, 8: 1])
        XCTAssertEqual(try prep.load(pairs[0]).mask, [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0])
        try write(Image(width: 4, height: 3, channels: 1, pixels: [0, 0, 7, 7, 0, 5, 7, 7, 0, 0, 0, 0]), "\(dir!)/masks/a.png")
        XCTAssertThrowsError(try prep.load(pairs[0])) { XCTAssertTrue("\($0)".contains("masks/a.png") && "\($0)".contains("(1, 1) has the value 5"), "\($0)") }
        try write(Image(width: 3, height: 3, channels: 1, pixels: [UInt8](repeating: 0, count: 9)), "\(dir!)/masks/a.png")
        XCTAssertThrowsError(try prep.load(pairs[0])) { XCTAssertTrue("\($0)".contains("masks/a.png") && "\($0)".contains("3×3"), "\($0)") }

        // List files: a line each, relative to the list's folder; counts must agree.
        try "images/a.png\nimages/b.png\n".write(toFile: "\(dir!)/images.txt", atomically: true, encoding: .utf8)
        try "masks/a.png\n".write(toFile: "\(dir!)/masks.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SegmentationPairs.lists(images: "\(dir!)/images.txt", masks: "\(dir!)/masks.txt")) {
            XCTAssertTrue("\($0)".contains("masks.txt") && "\($0)".contains("1 masks"), "\($0)")
        }
        try "masks/a.png\nmasks/x.png\n".write(toFile: "\(dir!)/masks.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SegmentationPairs.lists(images: "\(dir!)/images.txt", masks: "\(dir!)/masks.txt")) {
            XCTAssertTrue("\($0)".contains("masks.txt:2") && "\($0)".contains("no such file"), "\($0)")
        }
    }

    /// Grayscale data (TAO's ISBI): masks thresholded at half of 255 into classes 0 and 1, the image
    /// scaled to −1 … 1; color images BGR, scaled as `preprocess` says.
    func testGrayscaleMasksAndInputScaling() throws {
        try write(Image(width: 2, height: 1, channels: 1, pixels: [200, 10]), "\(dir!)/images/g.png")
        try write(Image(width: 2, height: 1, channels: 1, pixels: [255, 127]), "\(dir!)/masks/g.png")
        let gray = SegmentationPreparation(inputWidth: 2, inputHeight: 1, channels: 1, outputWidth: 2, outputHeight: 1, grayscale: true, trainID: [0: 0, 255: 1])
        let s = try gray.load(SegmentationPair(image: "\(dir!)/images/g.png", mask: "\(dir!)/masks/g.png"))
        XCTAssertEqual(s.mask, [1, 0])
        for (a, b) in zip(gray.input(s.image), [200 / 127.5 - 1, 10 / 127.5 - 1]) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        var color = SegmentationPreparation(inputWidth: 1, inputHeight: 1, channels: 3, outputWidth: 1, outputHeight: 1, grayscale: false, trainID: [:])
        let rgb = Image(width: 1, height: 1, channels: 3, pixels: [255, 0, 51])
        XCTAssertEqual(color.input(rgb), [51, 0, 255], "BGR, 0 … 255 without preprocess")
        color.preprocess = "min_max_-1_1"
        for (a, b) in zip(color.input(rgb, brightness: 0.5), [51 / 127.5 - 1 + 0.5, -0.5, 1]) { XCTAssertEqual(Double(a), b, accuracy: 1e-6, "clipped to −1 … 1") }
    }

    /// Flips and crop-and-resize move image and mask alike: wherever the augmented image shows a
    /// block's colour exactly (away from the bilinear blend at its edges), the mask names that block.
    func testAugmentationKeepsMasksOnTheirPixels() throws {
        let (w, h) = (48, 32)
        let colors: [[UInt8]] = [[20, 20, 20], [250, 30, 30], [30, 250, 30], [30, 30, 250]]
        var img = Image(width: w, height: h, channels: 3, pixels: [UInt8](repeating: 0, count: w * h * 3))
        var mask = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                let c = x < 6 ? 0 : y < 12 ? 1 : x < 30 ? 2 : 3   // blocks of unequal sizes: no symmetry hides a flip
                mask[y * w + x] = UInt8(c)
                for k in 0..<3 { img.pixels[(y * w + x) * 3 + k] = colors[c][k] }
            }
        }
        var prep = SegmentationPreparation(inputWidth: w, inputHeight: h, channels: 3, outputWidth: w, outputHeight: h, grayscale: false, trainID: [:])
        (prep.hflip, prep.vflip, prep.cropAndResizeProbability, prep.cropAndResizeRatio) = (0.5, 0.5, 0.7, 0.3)
        var rng = SplitMix64(seed: 5)
        var changed = 0
        for _ in 0..<40 {
            let (s, _) = prep.augment(SegmentationPreparation.Sample(image: img, mask: mask), rng: &rng)
            if s.mask != mask { changed += 1 }
            var checked = 0
            for i in 0..<(w * h) {
                let px = Array(s.image.pixels[(i * 3)..<(i * 3 + 3)])
                guard let c = colors.firstIndex(of: px) else { continue }
                checked += 1
                XCTAssertEqual(Int(s.mask[i]), c, "pixel \(i % w), \(i / w)")
            }
            XCTAssertGreaterThan(checked, w * h / 2)
        }
        XCTAssertGreaterThan(changed, 20, "the augmentation moved the data")
    }
}
