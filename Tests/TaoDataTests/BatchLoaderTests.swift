import XCTest
import Foundation
@testable import TaoData
import TaoTensor

final class BatchLoaderTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("loader-\(UUID().uuidString)")
        let fm = FileManager.default
        for cls in ["a", "b", "c"] {
            try? fm.createDirectory(at: dir.appendingPathComponent(cls), withIntermediateDirectories: true)
            for i in 0..<7 {
                let offset = Int(cls.unicodeScalars.first!.value) % 7
                let px: [UInt8] = (0..<(12 * 10 * 3)).map { (k: Int) -> UInt8 in UInt8((k * (i + 3) + offset) % 256) }
                let data = try! ImageCodec.encodePNG(Image(width: 12, height: 10, channels: 3, pixels: px))
                fm.createFile(atPath: dir.appendingPathComponent("\(cls)/\(i).png").path, contents: Data(data))
            }
        }
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func loader(seed: UInt64, workers: Int = 2) throws -> BatchLoader {
        var p = Preprocessing(channels: 3, height: 8, width: 8, mode: .torch)
        p.randomCrop = true; p.horizontalFlip = true; p.colorAugmentation = true
        return BatchLoader(folder: try ImageFolder(root: dir.path), preprocessing: p, batchSize: 4, shuffle: true, dropLast: true, seed: seed, workers: workers)
    }

    func epoch(_ l: BatchLoader, _ e: Int) throws -> [Batch] {
        l.start(epoch: e)
        var out: [Batch] = []
        while let b = try l.next() { out.append(b) }
        return out
    }

    func testSameSeedGivesTheSameAugmentedBatchesWhateverTheThreads() throws {
        let a = try loader(seed: 3, workers: 3), b = try loader(seed: 3, workers: 1), c = try loader(seed: 4)
        defer { a.close(); b.close(); c.close() }
        let ea = try epoch(a, 0), eb = try epoch(b, 0), ec = try epoch(c, 0)
        XCTAssertEqual(ea.count, 5)   // 21 images, batch 4, drop last
        XCTAssertEqual(ea.map(\.images), eb.map(\.images))
        XCTAssertEqual(ea.map(\.labels), eb.map(\.labels))
        XCTAssertNotEqual(ea.map(\.images), ec.map(\.images))
        // A new epoch reshuffles; the threaded batches equal direct construction.
        let e1 = try epoch(a, 1)
        XCTAssertNotEqual(e1.map(\.indices), ea.map(\.indices))
        XCTAssertEqual(try a.makeBatch(e1[2].indices, epoch: 1).images, e1[2].images)
        XCTAssertEqual(Set(ea.flatMap(\.indices)).count, 20, "no sample repeats within an epoch")
    }

    func testCorruptImageSurfacesWithItsName() throws {
        try Data([0xFF, 0xD8, 0xFF, 0x00, 0x01]).write(to: dir.appendingPathComponent("b/3.png"))
        let l = try loader(seed: 1)
        defer { l.close() }
        l.start(epoch: 0)
        var thrown: Error?
        do { while try l.next() != nil {} } catch { thrown = error }
        XCTAssertTrue("\(thrown.map { "\($0)" } ?? "no error")".contains("b/3.png"))
    }

    /// TAO's crops: nothing happens to an image already at the target size; a center crop scales to
    /// target + 32 and keeps the middle; a random crop keeps a window of 45–100% of each side.
    func testCropsFollowTAO() throws {
        func augmenter(random: Bool) throws -> BatchLoader {
            var p = Preprocessing(channels: 1, height: 8, width: 8, mode: .torch)
            p.randomCrop = random; p.centerCrop = !random
            return BatchLoader(folder: try ImageFolder(root: dir.path), preprocessing: p, batchSize: 1, shuffle: false, dropLast: false, seed: 0, workers: 1)
        }
        let random = try augmenter(random: true), center = try augmenter(random: false)
        defer { random.close(); center.close() }
        var rng = SplitMix64(seed: 9)
        let small = Image(width: 8, height: 8, channels: 1, pixels: (0..<64).map { _ in UInt8(rng.next() % 256) })
        XCTAssertEqual(random.augment(small, rng: &rng), small)
        XCTAssertEqual(center.augment(small, rng: &rng), small)
        // A 16×16 horizontal ramp, value 16·x.
        let ramp = Image(width: 16, height: 16, channels: 1, pixels: (0..<256).map { UInt8(($0 % 16) * 16) })
        let c = center.augment(ramp, rng: &rng)
        XCTAssertEqual(c.width, 8); XCTAssertEqual(c.height, 8)
        let row = Array(c.pixels[0..<8]).map(Int.init)
        XCTAssertEqual(Double(row.reduce(0, +)) / 8, 120, accuracy: 12, "the middle of the ramp")
        XCTAssertLessThan(row.last! - row.first!, 240 * 8 / 40 + 16, "8 of 40 scaled columns")
        var spans = Set<Int>()
        for _ in 0..<40 {
            let r = random.augment(ramp, rng: &rng)
            XCTAssertEqual(r.width, 8); XCTAssertEqual(r.height, 8)
            let span = Int(r.pixels[7]) - Int(r.pixels[0])
            XCTAssertGreaterThanOrEqual(span, 0)
            XCTAssertLessThanOrEqual(span, 240)
            XCTAssertGreaterThan(span, Int(0.45 * 240 * 7 / 8) - 24, "at least 45% of the width is kept")
            spans.insert(span)
        }
        XCTAssertGreaterThan(spans.count, 5, "crops vary")
    }

    func testNormalizationModes() {
        let img = Image(width: 1, height: 1, channels: 3, pixels: [255, 128, 0])
        var out = [Float](repeating: 0, count: 3)
        Preprocessing(channels: 3, height: 1, width: 1, mode: .torch).normalize(img, into: &out)
        XCTAssertEqual(out[0], (1 - 0.485) / 0.229, accuracy: 1e-4)
        Preprocessing(channels: 3, height: 1, width: 1, mode: .caffe).normalize(img, into: &out)
        XCTAssertEqual(out, [0 - 103.939, 128 - 116.779, 255 - 123.68], "caffe: BGR order, mean subtracted")
        Preprocessing(channels: 3, height: 1, width: 1, mode: .tf).normalize(img, into: &out)
        XCTAssertEqual(out[0], 1, accuracy: 1e-6)
        XCTAssertEqual(out[2], -1, accuracy: 1e-6)
    }

    func testBilinearResize() {
        let flat = Image(width: 5, height: 3, channels: 1, pixels: [UInt8](repeating: 77, count: 15))
        XCTAssertEqual(resize(flat, width: 9, height: 7).pixels, [UInt8](repeating: 77, count: 63))
        let ramp = Image(width: 2, height: 1, channels: 1, pixels: [0, 200])
        // Half-pixel centers: outputs at source x = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped).
        XCTAssertEqual(resize(ramp, width: 4, height: 1).pixels, [0, 50, 150, 200])
    }
}

extension BatchLoaderTests {
    func testBicubicResize() {
        let flat = Image(width: 5, height: 3, channels: 1, pixels: [UInt8](repeating: 77, count: 15))
        XCTAssertEqual(resizeBicubic(flat, width: 9, height: 7).pixels, [UInt8](repeating: 77, count: 63), "weights sum to one")
        // A linear ramp stays linear away from the clamped edges (cubic convolution reproduces lines).
        let ramp = Image(width: 8, height: 1, channels: 1, pixels: (0..<8).map { UInt8($0 * 20) })
        let up = resizeBicubic(ramp, width: 16, height: 1).pixels
        for x in 4..<12 { XCTAssertEqual(Float(up[x]), (Float(x) + 0.5) / 2 * 20 - 10, accuracy: 1, "x=\(x)") }
        XCTAssertNotEqual(resizeBicubic(ramp, width: 3, height: 1).pixels, resize(ramp, width: 3, height: 1).pixels)
    }
}
