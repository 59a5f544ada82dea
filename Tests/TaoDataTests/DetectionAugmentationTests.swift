import XCTest
import Foundation
@testable import TaoData
import TaoTensor

final class DetectionAugmentationTests: XCTestCase {
    /// Draw a box, transform image and box with one random draw, find the box again in the pixels.
    func testBoxesMoveWithThePixels() {
        var a = DetectionAugmentation(width: 96, height: 64, channels: 1)
        (a.hflip, a.vflip, a.zoomMin, a.zoomMax, a.translateX, a.translateY) = (0.5, 0.5, 0.8, 1.25, 10, 8)
        var rng = SplitMix64(seed: 3)
        var flips = 0
        for trial in 0..<40 {
            let (x1, y1) = (10 + trial % 30, 8 + trial % 20), (bw, bh) = (20 + trial % 7, 14 + trial % 5)
            var px = [UInt8](repeating: 0, count: 96 * 64)
            for y in y1..<(y1 + bh) { for x in x1..<(x1 + bw) { px[y * 96 + x] = 255 } }
            let m = a.transform(rng: &rng)
            if m.a < 0 { flips += 1 }
            let out = a.warp(Image(width: 96, height: 64, channels: 1, pixels: px), m)
            guard let b = a.transform(box: (Double(x1), Double(y1), Double(x1 + bw), Double(y1 + bh)), m) else { continue }
            var (mx1, my1, mx2, my2) = (96, 64, 0, 0)
            for y in 0..<64 { for x in 0..<96 where out.pixels[y * 96 + x] > 127 { (mx1, my1, mx2, my2) = (min(mx1, x), min(my1, y), max(mx2, x + 1), max(my2, y + 1)) } }
            XCTAssertEqual(Double(mx1), b.x1, accuracy: 1.01, "trial \(trial) left")
            XCTAssertEqual(Double(mx2), b.x2, accuracy: 1.01, "trial \(trial) right")
            XCTAssertEqual(Double(my1), b.y1, accuracy: 1.01, "trial \(trial) top")
            XCTAssertEqual(Double(my2), b.y2, accuracy: 1.01, "trial \(trial) bottom")
        }
        XCTAssertGreaterThan(flips, 5)
    }

    func testNoAugmentationPlacesTheImageAtTheTopLeft() {
        let a = DetectionAugmentation(width: 8, height: 4, channels: 1)
        let img = Image(width: 6, height: 3, channels: 1, pixels: (0..<18).map { UInt8($0 * 10) })
        let out = a.warp(img, a.base)
        XCTAssertEqual(Array(out.pixels[0..<8]), [0, 10, 20, 30, 40, 50, 0, 0])
        XCTAssertEqual(Array(out.pixels[24..<32]), Array(repeating: 0, count: 8))
        XCTAssertNil(a.transform(box: (7.5, 0, 10, 2), a.base), "a box left with less than a pixel is dropped")
    }
}
