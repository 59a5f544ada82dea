import Foundation
import TaoTensor

/// The detection demo's data, made here with no download: Fashion-MNIST objects (Debian's
/// dataset-fashion-mnist) pasted at several scales and tints onto crops of real photographs (the
/// CC0 and public-domain images that scikit-image's wheel ships), with exact KITTI labels: each
/// box is the tight box of the object's visible mask, truncation is the share of the object cut
/// off by the border, occlusion comes from the share of its mask that later pastes cover.
///
/// Writes `out/{train,test}/{images,labels,masks}/NNNNN.{png,txt,png}` (masks: each pixel's class
/// index + 1, 0 the background, for semantic segmentation); training scenes take their objects
/// from Fashion-MNIST's training set, test scenes from its test set, and each split its own
/// backgrounds' crops, so no object image is seen in both.
public enum DetectionScenes {
    /// KITTI class names of the ten Fashion-MNIST classes.
    public static let classNames = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
    /// The pixel value of each class in the scenes' masks/ (0 is the background).
    public static var maskLabels: [String: Int] { Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0 + 1) }) }

    public struct Options: Sendable {
        public var width = 160, height = 96
        public var train = 2000, test = 300
        public var objectsPerScene = 1...4
        /// Pasted object size in pixels (a 28-pixel Fashion-MNIST image scaled to this).
        public var objectSize = 28...56
        public var seed: UInt64 = 7
        /// Single-object crops for pretraining a classifier backbone (TAO's flow: a classification
        /// model as the detector's pretrained weights): per split, in folders by class; 0 for none.
        public var cropsTrain = 0, cropsVal = 0
        public var cropSize = 32
        public init() {}
    }

    public struct Counts: Sendable { public var scenes = 0, objects = 0, truncated = 0, occluded = 0 }

    /// Makes both splits; returns their counts.
    @discardableResult
    public static func make(fashionMNIST source: String = FashionMNIST.defaultSource, photos: [String], output: String,
                            options o: Options = Options()) throws -> (train: Counts, test: Counts) {
        guard !photos.isEmpty else { throw DataError(output, "no background photographs given") }
        let backgrounds = try photos.map { try ImageCodec.decode(path: $0, channels: 3) }
        for (p, b) in zip(photos, backgrounds) where b.width < o.width || b.height < o.height {
            throw DataError(p, "\(b.width)×\(b.height) is smaller than the \(o.width)×\(o.height) scenes")
        }
        let train = try LabelledImages(idxImages: "\(source)/train-images-idx3-ubyte.gz", idxLabels: "\(source)/train-labels-idx1-ubyte.gz")
        let test = try LabelledImages(idxImages: "\(source)/t10k-images-idx3-ubyte.gz", idxLabels: "\(source)/t10k-labels-idx1-ubyte.gz")
        let a = try split(train, backgrounds, count: o.train, to: "\(output)/train", o, seed: o.seed)
        let b = try split(test, backgrounds, count: o.test, to: "\(output)/test", o, seed: o.seed &+ 1_000_003)
        if o.cropsTrain > 0 { try crops(train, backgrounds, count: o.cropsTrain, to: "\(output)/crops/train", o, seed: o.seed &+ 2_000_003) }
        if o.cropsVal > 0 { try crops(train, backgrounds, count: o.cropsVal, to: "\(output)/crops/val", o, seed: o.seed &+ 3_000_003) }
        return (a, b)
    }

    private struct Placed { var cls: Int; var mask: [Double]; var x: Int; var y: Int; var size: Int }

    private static func split(_ objects: LabelledImages, _ backgrounds: [Image], count: Int, to dir: String, _ o: Options, seed: UInt64) throws -> Counts {
        for sub in ["images", "labels", "masks"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        var rng = SplitMix64(seed: seed)
        func uniform(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(rng.next() % UInt64(r.count)) }
        var counts = Counts()
        let (w, h) = (o.width, o.height)
        for n in 0..<count {
            // A random crop of a photograph, scaled by up to 2× down, flipped half the time.
            let bg = backgrounds[Int(rng.next() % UInt64(backgrounds.count))]
            let maxScale = min(Double(bg.width) / Double(w), Double(bg.height) / Double(h), 2)
            let s = 1 + rng.nextDouble() * (maxScale - 1)
            let (cw, ch) = (Double(w) * s, Double(h) * s)
            let (ox, oy) = (rng.nextDouble() * (Double(bg.width) - cw), rng.nextDouble() * (Double(bg.height) - ch))
            let flip = rng.next() % 2 == 0
            var px = [Double](repeating: 0, count: w * h * 3)
            for y in 0..<h {
                for x in 0..<w {
                    let sx = min(bg.width - 1, Int(ox + (Double(flip ? w - 1 - x : x) + 0.5) * s))
                    let sy = min(bg.height - 1, Int(oy + (Double(y) + 0.5) * s))
                    for c in 0..<3 { px[(y * w + x) * 3 + c] = Double(bg.pixels[(sy * bg.width + sx) * 3 + c]) }
                }
            }
            // Objects, each placed so that it overlaps earlier ones by little; some reach past the border.
            var placed: [Placed] = []
            for _ in 0..<uniform(o.objectsPerScene) {
                let size = uniform(o.objectSize)
                var spot: (Int, Int)? = nil
                for _ in 0..<20 {
                    let x = uniform(-size / 4...(w - 3 * size / 4)), y = uniform(-size / 4...(h - 3 * size / 4))
                    let clear = placed.allSatisfy { p in
                        let ix = max(0, min(x + size, p.x + p.size) - max(x, p.x)), iy = max(0, min(y + size, p.y + p.size) - max(y, p.y))
                        return Double(ix * iy) < 0.2 * Double(min(size * size, p.size * p.size))
                    }
                    if clear { spot = (x, y); break }
                }
                guard let (x, y) = spot else { continue }
                let k = Int(rng.next() % UInt64(objects.count))
                placed.append(Placed(cls: objects.labels[k], mask: resample(objects, k, to: size), x: x, y: y, size: size))
            }
            // Paste in order: a tinted, shaded object with its intensity as opacity.
            var owner = [Int](repeating: -1, count: w * h)
            for (i, p) in placed.enumerated() {
                let tint = randomTint(&rng)
                for my in 0..<p.size {
                    for mx in 0..<p.size {
                        let (x, y) = (p.x + mx, p.y + my)
                        guard x >= 0, y >= 0, x < w, y < h else { continue }
                        let v = p.mask[my * p.size + mx]
                        let alpha = opacity(v)
                        guard alpha > 0 else { continue }
                        for c in 0..<3 { px[(y * w + x) * 3 + c] = (1 - alpha) * px[(y * w + x) * 3 + c] + alpha * shade(tint[c], v) }
                        if alpha >= 0.5 { owner[y * w + x] = i }
                    }
                }
            }
            // Labels from the masks: the visible box, truncation by the border, occlusion by later objects.
            var lines: [String] = []
            for (i, p) in placed.enumerated() {
                var (x1, y1, x2, y2) = (Int.max, Int.max, Int.min, Int.min)
                var total = 0, inside = 0, visible = 0
                for my in 0..<p.size {
                    for mx in 0..<p.size where opacity(p.mask[my * p.size + mx]) >= 0.5 {
                        total += 1
                        let (x, y) = (p.x + mx, p.y + my)
                        guard x >= 0, y >= 0, x < w, y < h else { continue }
                        inside += 1
                        if owner[y * w + x] == i { visible += 1 }
                        (x1, y1, x2, y2) = (min(x1, x), min(y1, y), max(x2, x + 1), max(y2, y + 1))
                    }
                }
                guard inside > 0, x2 - x1 >= 4, y2 - y1 >= 4 else { continue }
                let truncation = 1 - Double(inside) / Double(max(total, 1))
                let hidden = 1 - Double(visible) / Double(inside)
                let occlusion = hidden < 0.1 ? 0 : hidden < 0.5 ? 1 : 2
                let obj = KITTIObject(className: classNames[p.cls], truncation: Float((truncation * 100).rounded() / 100), occlusion: occlusion,
                                      x1: Float(x1), y1: Float(y1), x2: Float(x2), y2: Float(y2))
                lines.append(obj.line)
                counts.objects += 1
                if truncation > 0 { counts.truncated += 1 }
                if occlusion > 0 { counts.occluded += 1 }
            }
            let image = Image(width: w, height: h, channels: 3, pixels: px.map { UInt8(min(255, max(0, $0.rounded()))) })
            let name = String(format: "%05d", n)
            try Data(try ImageCodec.encodePNG(image)).write(to: URL(fileURLWithPath: "\(dir)/images/\(name).png"))
            try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: "\(dir)/labels/\(name).txt"))
            // The class mask: each pixel an object owns (the later paste on top) has its class's
            // index + 1 (`maskLabels`), the rest 0 (background).
            let mask = Image(width: w, height: h, channels: 1, pixels: owner.map { $0 < 0 ? 0 : UInt8(placed[$0].cls + 1) })
            try Data(try ImageCodec.encodePNG(mask)).write(to: URL(fileURLWithPath: "\(dir)/masks/\(name).png"))
            counts.scenes += 1
        }
        return counts
    }

    /// Single objects on photograph crops, `size`×`size`, the object 60–95% of the side, in
    /// `dir/<class>/NNNNN.png` (an image-folder classification dataset).
    private static func crops(_ objects: LabelledImages, _ backgrounds: [Image], count: Int, to dir: String, _ o: Options, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let n = o.cropSize
        for name in classNames { try FileManager.default.createDirectory(atPath: "\(dir)/\(name)", withIntermediateDirectories: true) }
        for i in 0..<count {
            let bg = backgrounds[Int(rng.next() % UInt64(backgrounds.count))]
            let side = n + Int(rng.next() % UInt64(min(bg.width, bg.height, 3 * n) - n + 1))
            let (ox, oy) = (Int(rng.next() % UInt64(bg.width - side + 1)), Int(rng.next() % UInt64(bg.height - side + 1)))
            var px = [Double](repeating: 0, count: n * n * 3)
            for y in 0..<n { for x in 0..<n { for c in 0..<3 {
                px[(y * n + x) * 3 + c] = Double(bg.pixels[((oy + y * side / n) * bg.width + ox + x * side / n) * 3 + c])
            } } }
            let size = Int(Double(n) * (0.6 + 0.35 * rng.nextDouble()))
            let (x0, y0) = (Int(rng.next() % UInt64(n - size + 1)), Int(rng.next() % UInt64(n - size + 1)))
            let k = Int(rng.next() % UInt64(objects.count))
            let mask = resample(objects, k, to: size)
            let tint = randomTint(&rng)
            for my in 0..<size { for mx in 0..<size {
                let v = mask[my * size + mx], alpha = opacity(v)
                guard alpha > 0 else { continue }
                let p = ((y0 + my) * n + x0 + mx) * 3
                for c in 0..<3 { px[p + c] = (1 - alpha) * px[p + c] + alpha * shade(tint[c], v) }
            } }
            let image = Image(width: n, height: n, channels: 3, pixels: px.map { UInt8(min(255, max(0, $0.rounded()))) })
            try Data(try ImageCodec.encodePNG(image)).write(to: URL(fileURLWithPath: "\(dir)/\(classNames[objects.labels[k]])/\(String(format: "%05d", i)).png"))
        }
    }

    /// How an object is pasted: its Fashion-MNIST intensity v (0…1) sets the opacity (solid from
    /// v = 0.25) and shades a random tint, so that the object keeps its texture and stands out.
    static func opacity(_ v: Double) -> Double { min(1, 4 * v) }
    static func shade(_ tint: Double, _ v: Double) -> Double { tint * (0.55 + 0.45 * v) }
    static func randomTint(_ rng: inout SplitMix64) -> [Double] { (0..<3).map { _ in 90 + rng.nextDouble() * 165 } }

    /// Image `k` of a 28×28 set scaled to size×size (bilinear), values 0…1.
    private static func resample(_ set: LabelledImages, _ k: Int, to size: Int) -> [Double] {
        let (sh, sw) = (set.shape[1], set.shape[2])
        let base = k * sh * sw
        func at(_ y: Int, _ x: Int) -> Double {
            guard y >= 0, x >= 0, y < sh, x < sw else { return 0 }
            return Double(set.images[base + y * sw + x])
        }
        var out = [Double](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                let fy = (Double(y) + 0.5) * Double(sh) / Double(size) - 0.5, fx = (Double(x) + 0.5) * Double(sw) / Double(size) - 0.5
                let (y0, x0) = (Int(fy.rounded(.down)), Int(fx.rounded(.down)))
                let (wy, wx) = (fy - Double(y0), fx - Double(x0))
                out[y * size + x] = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1))
            }
        }
        return out
    }
}
