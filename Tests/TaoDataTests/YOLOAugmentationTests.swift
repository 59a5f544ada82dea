import XCTest
@testable import TaoData
import TaoTensor

/// YOLO's augmentation moves boxes with the pixels: coloured rectangles on a grey image, labelled
/// exactly, must stay inside their moved boxes (and not outside them) after letterboxing, flips,
/// jitter and mosaic.
final class YOLOAugmentationTests: XCTestCase {
    static let colors: [[UInt8]] = [[220, 30, 30], [30, 200, 40], [40, 60, 230], [230, 220, 40]]

    /// A grey w×h image with rectangles (x1, y1, x2, y2) of the given colour indices.
    func scene(_ w: Int, _ h: Int, _ rects: [(Int, Int, Int, Int, Int)]) -> LabelledImage {
        var px = [UInt8](repeating: 90, count: w * h * 3)
        for (x1, y1, x2, y2, c) in rects {
            for y in y1..<y2 { for x in x1..<x2 { for k in 0..<3 { px[(y * w + x) * 3 + k] = Self.colors[c][k] } } }
        }
        return LabelledImage(image: Image(width: w, height: h, channels: 3, pixels: px),
                             objects: rects.map { LabelledImage.Object(classIndex: $0.4, x1: Double($0.0), y1: Double($0.1), x2: Double($0.2), y2: Double($0.3)) })
    }

    func isColor(_ img: Image, _ x: Int, _ y: Int, _ c: Int) -> Bool {
        (0..<3).allSatisfy { abs(Int(img.pixels[(y * img.width + x) * 3 + $0]) - Int(Self.colors[c][$0])) < 40 }
    }

    /// Every box: its interior (2 pixels in) is its colour; the ring 2 pixels outside it holds almost
    /// none of that colour (where no other box of that colour is).
    func assertBoxesFollowPixels(_ s: LabelledImage, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let img = s.image
        for o in s.objects {
            let (x1, y1, x2, y2) = (Int((o.x1 + 2).rounded(.up)), Int((o.y1 + 2).rounded(.up)), Int((o.x2 - 2).rounded(.down)), Int((o.y2 - 2).rounded(.down)))
            if x2 > x1, y2 > y1 {
                var inside = 0, total = 0
                for y in y1..<y2 { for x in x1..<x2 { total += 1; if isColor(img, x, y, o.classIndex) { inside += 1 } } }
                XCTAssertGreaterThanOrEqual(Double(inside), 0.97 * Double(total), "\(what): box \(o) interior", file: file, line: line)
            }
            var ring = 0, ringTotal = 0
            let (a1, b1, a2, b2) = (Int((o.x1 - 2).rounded(.down)), Int((o.y1 - 2).rounded(.down)), Int((o.x2 + 2).rounded(.up)), Int((o.y2 + 2).rounded(.up)))
            for y in max(b1, 0)..<min(b2 + 1, img.height) {
                for x in max(a1, 0)..<min(a2 + 1, img.width) where x == a1 || x == a2 || y == b1 || y == b2 {
                    let covered = s.objects.contains { $0.classIndex == o.classIndex && Double(x) >= $0.x1 - 1 && Double(x) <= $0.x2 && Double(y) >= $0.y1 - 1 && Double(y) <= $0.y2 }
                    guard !covered else { continue }
                    ringTotal += 1
                    if isColor(img, x, y, o.classIndex) { ring += 1 }
                }
            }
            XCTAssertLessThanOrEqual(Double(ring), 0.05 * Double(max(ringTotal, 1)), "\(what): box \(o) has its colour outside", file: file, line: line)
        }
    }

    /// TAO's letterbox of 120×80 into 64×64: scale min(64/80, 64/120) = 0.533, the image 64×43 at
    /// rows 10…52, the rest the image's mean colour.
    func testLetterboxKeepsAspectAndMovesBoxes() {
        let s = scene(120, 80, [(30, 20, 70, 50, 0), (90, 10, 110, 70, 2)])
        let aug = YOLOAugmentation(width: 64, height: 64)
        let p = aug.letterbox(imageWidth: 120, imageHeight: 80)
        XCTAssertEqual([p.dx, p.dy, p.dw, p.dh], [0, 10, 64, 43])
        let out = aug.letterboxed(s)
        XCTAssertEqual(out.objects[0].x1, 30 * 64 / 120.0, accuracy: 1e-9)
        XCTAssertEqual(out.objects[0].y1, 10 + 20 * 43 / 80.0, accuracy: 1e-9)
        XCTAssertEqual(out.objects[1].y2, 10 + 70 * 43 / 80.0, accuracy: 1e-9)
        assertBoxesFollowPixels(out, "letterbox")
        let mean = YOLOAugmentation.mean(s.image).map { UInt8($0.rounded()) }
        XCTAssertEqual(Array(out.image.pixels[0..<3]), mean, "the border is the image's mean colour")
        XCTAssertEqual(Array(out.image.pixels[(63 * 64 + 5) * 3..<(63 * 64 + 5) * 3 + 3]), mean)
    }

    func testFlipsMoveBoxesWithPixels() {
        let s = scene(60, 40, [(5, 4, 25, 18, 1), (40, 20, 57, 38, 3)])
        for vertical in [false, true] {
            let f = YOLOAugmentation.flipped(s, vertical: vertical)
            XCTAssertEqual(vertical ? f.objects[0].y1 : f.objects[0].x1, vertical ? 40 - 18 : 60 - 25)
            assertBoxesFollowPixels(f, vertical ? "vertical flip" : "horizontal flip")
        }
    }

    /// YOLO's jitter (crop moved by up to ±30 % per side, then resized to the input, flips on) and
    /// mosaic (four images' random crops, one per quadrant, boxes clipped to their quadrant).
    func testJitterAndMosaicMoveBoxesWithPixels() throws {
        let images = [scene(120, 80, [(10, 10, 50, 40, 0), (70, 30, 110, 75, 1)]),
                      scene(100, 100, [(20, 50, 60, 90, 2)]),
                      scene(90, 60, [(5, 5, 40, 30, 3), (50, 20, 85, 55, 0)]),
                      scene(80, 120, [(10, 60, 70, 110, 1)])]
        var aug = YOLOAugmentation(width: 96, height: 64)
        (aug.jitter, aug.hflip, aug.vflip) = (0.3, 0.5, 0.5)
        var moved = 0
        for seed in 0..<12 {
            var rng = SplitMix64(seed: UInt64(seed))
            let out = try aug.training(images[seed % 4], count: 4, other: { images[$0] }, rng: &rng)
            XCTAssertEqual([out.image.width, out.image.height], [96, 64])
            assertBoxesFollowPixels(out, "jitter, seed \(seed)")
            moved += out.objects.count
        }
        XCTAssertGreaterThan(moved, 12, "boxes survive the jitter")
        aug.mosaicProbability = 1; aug.mosaicMinRatio = 0.2
        var sawFour = false
        for seed in 0..<12 {
            var rng = SplitMix64(seed: UInt64(100 + seed))
            let out = try aug.training(images[seed % 4], count: 4, other: { images[$0] }, rng: &rng)
            assertBoxesFollowPixels(out, "mosaic, seed \(seed)")
            // Boxes come from at least three of the four quadrants in some mosaics.
            let quadrants = Set(out.objects.map { [($0.x1 + $0.x2) / 2 > 48, ($0.y1 + $0.y2) / 2 > 32] })
            if quadrants.count >= 3 { sawFour = true }
        }
        XCTAssertTrue(sawFour, "mosaic draws boxes from several images")
    }

    /// HSV jitter scales value (and saturation) and turns hue; grey stays grey.
    func testHSVScalesValueAndKeepsGreyGrey() {
        var rng = SplitMix64(seed: 4)
        var img = Image(width: 2, height: 1, channels: 3, pixels: [100, 100, 100, 200, 100, 50])
        YOLOAugmentation.hsv(&img, hue: 0.1, saturation: 1.5, exposure: 1.5, rng: &rng)
        XCTAssertEqual(img.pixels[0], img.pixels[1]); XCTAssertEqual(img.pixels[1], img.pixels[2])
        XCTAssertTrue((67...150).contains(Int(img.pixels[0])), "value × a factor in [1/1.5, 1.5]: \(img.pixels[0])")
        XCTAssertNotEqual(Array(img.pixels[3...]), [200, 100, 50])
    }
}
