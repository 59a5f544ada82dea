import Foundation
import TaoTensor

/// An image and its label mask (a one-channel PNG whose pixel values are label_ids), as TAO's
/// unet dataset_config pairs them.
public struct SegmentationPair: Sendable, Equatable {
    public var image: String
    public var mask: String?
    public init(image: String, mask: String?) { self.image = image; self.mask = mask }
}

public enum SegmentationPairs {
    /// Images of `imageFolder` with the masks of `maskFolder` of the same name less extension.
    /// A mask without an image, or an image without its mask, is an error naming the file.
    public static func folders(images imageFolder: String, masks maskFolder: String?) throws -> [SegmentationPair] {
        let images = try listImages(imageFolder)
        guard let maskFolder else { return images.map { SegmentationPair(image: $0, mask: nil) } }
        let masks = try listImages(maskFolder)
        func stem(_ p: String) -> String { ((p as NSString).lastPathComponent as NSString).deletingPathExtension }
        var byStem: [String: String] = [:]
        for m in masks {
            if let other = byStem[stem(m)] { throw DataError(m, "two masks are named \(stem(m)) (also \(other)); which one labels the image is unclear") }
            byStem[stem(m)] = m
        }
        let imageStems = Set(images.map(stem))
        if let orphan = masks.first(where: { !imageStems.contains(stem($0)) }) {
            throw DataError(orphan, "a mask without an image: \(imageFolder) has no image named \(stem(orphan))")
        }
        return try images.map { img in
            guard let m = byStem[stem(img)] else { throw DataError(img, "an image without a mask: \(maskFolder) has no mask named \(stem(img)).png") }
            return SegmentationPair(image: img, mask: m)
        }
    }

    /// TAO's list-file data sources: one image path a line, and (optionally) one mask path a line
    /// in the same order. Relative paths are read from the list file's folder.
    public static func lists(images imageList: String, masks maskList: String?) throws -> [SegmentationPair] {
        func read(_ list: String) throws -> [String] {
            guard let data = FileManager.default.contents(atPath: list), let text = String(data: data, encoding: .utf8) else {
                throw DataError(list, "the list file cannot be read")
            }
            let base = (list as NSString).deletingLastPathComponent
            return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                .map { $0.hasPrefix("/") || base.isEmpty ? $0 : "\(base)/\($0)" }
        }
        let images = try read(imageList)
        guard let maskList else { return images.map { SegmentationPair(image: $0, mask: nil) } }
        let masks = try read(maskList)
        guard masks.count == images.count else {
            throw DataError(maskList, "lists \(masks.count) masks, but \(imageList) lists \(images.count) images; line N of one labels line N of the other")
        }
        for (n, p) in (images + masks).enumerated() where !FileManager.default.fileExists(atPath: p) {
            let (list, line) = n < images.count ? (imageList, n + 1) : (maskList, n - images.count + 1)
            throw DataError("\(list):\(line)", "\(p): no such file")
        }
        return zip(images, masks).map { SegmentationPair(image: $0, mask: $1) }
    }

    static func listImages(_ folder: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { throw DataError(folder, "no such folder") }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        return names.filter { !$0.hasPrefix(".") && ImageFolder.extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted().map { "\(folder)/\($0)" }
    }
}

/// How TAO's unet data loader turns an image and its mask into a training sample: the mask's
/// label_ids mapped to train ids (or, for grayscale data, thresholded at half of 255 into 0 / 1),
/// both resized to the network (the mask by nearest neighbour), the augmentation applied to both
/// alike, the image normalized and in BGR order, channels first.
public struct SegmentationPreparation: Sendable {
    public var inputWidth: Int, inputHeight: Int, channels: Int
    /// The size of the network's output, where masks are compared (smaller than the input for vanilla_unet).
    public var outputWidth: Int, outputHeight: Int
    public var grayscale: Bool
    /// label_id → train id.
    public var trainID: [Int: Int]
    /// "", div_by_255, min_max_0_1 or min_max_-1_1 (color images).
    public var preprocess = ""
    public var resizeMethod = "BILINEAR"
    public var resizePadding = false
    /// vanilla_unet: the image is resized to the output size and padded (centred) to the input size.
    public var padToInput = false
    // Augmentation (TAO's spatial_augmentation and brightness_augmentation).
    public var hflip: Double = 0, vflip: Double = 0, cropAndResizeProbability: Double = 0, cropAndResizeRatio: Double = 0, brightnessDelta: Double = 0

    public init(inputWidth: Int, inputHeight: Int, channels: Int, outputWidth: Int, outputHeight: Int, grayscale: Bool, trainID: [Int: Int]) {
        self.inputWidth = inputWidth; self.inputHeight = inputHeight; self.channels = channels
        self.outputWidth = outputWidth; self.outputHeight = outputHeight; self.grayscale = grayscale; self.trainID = trainID
    }

    /// A sample: the image at the network's input size and its train ids at the output size.
    public struct Sample: Sendable {
        public var image: Image
        public var mask: [UInt8]
    }

    /// The mask of `path` as train ids at its own size; a pixel value no class names, or a size
    /// other than the image's, is an error naming the file.
    public func readMask(_ path: String, width: Int, height: Int) throws -> [UInt8] {
        let m = try ImageCodec.decode(path: path, channels: 1)
        guard m.width == width, m.height == height else {
            throw DataError(path, "the mask is \(m.width)×\(m.height), but its image is \(width)×\(height)")
        }
        if grayscale { return m.pixels.map { $0 >= 128 ? 1 : 0 } }
        var table = [Int16](repeating: -1, count: 256)
        for (label, id) in trainID where (0..<256).contains(label) { table[label] = Int16(id) }
        var out = [UInt8](repeating: 0, count: m.pixels.count)
        for (i, v) in m.pixels.enumerated() {
            let t = table[Int(v)]
            guard t >= 0 else {
                throw DataError(path, "pixel (\(i % width), \(i / width)) has the value \(v), which no target class has as its label_id (the spec's label_ids: \(trainID.keys.sorted().map(String.init).joined(separator: ", ")))")
            }
            out[i] = UInt8(t)
        }
        return out
    }

    /// The image (and its mask, when it has one) at the network's sizes, before augmentation.
    public func load(_ pair: SegmentationPair) throws -> Sample {
        let img = try ImageCodec.decode(path: pair.image, channels: channels)
        let mask = try pair.mask.map { try readMask($0, width: img.width, height: img.height) }
        return Sample(image: resizeImage(img), mask: mask.map { resizeMask($0, width: img.width, height: img.height) } ?? [])
    }

    /// Where an image of `w` × `h` lands on a canvas of `cw` × `ch`: TAO's resize, or with
    /// resize_padding its aspect-keeping resize centred with zeros around.
    func placement(_ w: Int, _ h: Int, _ cw: Int, _ ch: Int) -> (x: Int, y: Int, w: Int, h: Int) {
        guard resizePadding else { return (0, 0, cw, ch) }
        let s = min(Double(cw) / Double(w), Double(ch) / Double(h))
        let (rw, rh) = (max(1, Int((Double(w) * s).rounded())), max(1, Int((Double(h) * s).rounded())))
        return ((cw - rw) / 2, (ch - rh) / 2, rw, rh)
    }

    public func resizeImage(_ img: Image) -> Image {
        let (cw, ch) = padToInput ? (outputWidth, outputHeight) : (inputWidth, inputHeight)
        let p = placement(img.width, img.height, cw, ch)
        let r: Image = switch resizeMethod {
        case "NEAREST_NEIGHBOR": Self.nearest(img, width: p.w, height: p.h)
        case "BICUBIC": resizeBicubic(img, width: p.w, height: p.h)
        default: resize(img, width: p.w, height: p.h)
        }
        let (ox, oy) = (p.x + (padToInput ? (inputWidth - outputWidth) / 2 : 0), p.y + (padToInput ? (inputHeight - outputHeight) / 2 : 0))
        if ox == 0, oy == 0, r.width == inputWidth, r.height == inputHeight { return r }
        var out = Image(width: inputWidth, height: inputHeight, channels: img.channels, pixels: [UInt8](repeating: 0, count: inputWidth * inputHeight * img.channels))
        for y in 0..<r.height where (0..<inputHeight).contains(y + oy) {
            for x in 0..<r.width where (0..<inputWidth).contains(x + ox) {
                for c in 0..<img.channels { out.pixels[((y + oy) * inputWidth + x + ox) * img.channels + c] = r.pixels[(y * r.width + x) * img.channels + c] }
            }
        }
        return out
    }

    public func resizeMask(_ mask: [UInt8], width: Int, height: Int) -> [UInt8] {
        let p = placement(width, height, outputWidth, outputHeight)
        let r = Self.nearest(Image(width: width, height: height, channels: 1, pixels: mask), width: p.w, height: p.h)
        if p.x == 0, p.y == 0, p.w == outputWidth, p.h == outputHeight { return r.pixels }
        var out = [UInt8](repeating: 0, count: outputWidth * outputHeight)
        for y in 0..<p.h { for x in 0..<p.w { out[(y + p.y) * outputWidth + x + p.x] = r.pixels[y * p.w + x] } }
        return out
    }

    /// A mask at the network's output size brought back onto an image of `width` × `height`
    /// (undoing resize_padding's border), nearest neighbour.
    public func maskToImage(_ mask: [UInt8], width: Int, height: Int) -> [UInt8] {
        let p = placement(width, height, outputWidth, outputHeight)
        var out = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            let sy: Int = min(outputHeight - 1, p.y + y * p.h / height)
            for x in 0..<width {
                let sx: Int = min(outputWidth - 1, p.x + x * p.w / width)
                out[y * width + x] = mask[sy * outputWidth + sx]
            }
        }
        return out
    }

    /// Nearest-neighbour resize as TensorFlow 1's (source pixel ⌊i · in / out⌋).
    public static func nearest(_ img: Image, width w: Int, height h: Int) -> Image {
        if img.width == w && img.height == h { return img }
        var out = [UInt8](repeating: 0, count: w * h * img.channels)
        for y in 0..<h {
            let sy = min(img.height - 1, y * img.height / h)
            for x in 0..<w {
                let sx = min(img.width - 1, x * img.width / w)
                for c in 0..<img.channels { out[(y * w + x) * img.channels + c] = img.pixels[(sy * img.width + sx) * img.channels + c] }
            }
        }
        return Image(width: w, height: h, channels: img.channels, pixels: out)
    }

    /// TAO's training augmentation: horizontal and vertical flips, then with crop_and_resize_prob a
    /// box whose sides move in by up to crop_and_resize_ratio resized back (TensorFlow's
    /// crop_and_resize: bilinear for the image, nearest for the mask); returns the brightness shift.
    public func augment(_ s: Sample, rng: inout SplitMix64) -> (Sample, brightness: Float) {
        var s = s
        let h = rng.nextDouble() < hflip, v = rng.nextDouble() < vflip
        if h || v {
            s.image = Self.flip(s.image, h, v)
            s.mask = Self.flip(Image(width: outputWidth, height: outputHeight, channels: 1, pixels: s.mask), h, v).pixels
        }
        let crop = rng.nextDouble() < cropAndResizeProbability
        let box = (left: rng.nextDouble() * cropAndResizeRatio, right: 1 - rng.nextDouble() * cropAndResizeRatio,
                   top: rng.nextDouble() * cropAndResizeRatio, bottom: 1 - rng.nextDouble() * cropAndResizeRatio)
        if crop {
            s.image = Self.cropAndResize(s.image, box, nearest: false)
            s.mask = Self.cropAndResize(Image(width: outputWidth, height: outputHeight, channels: 1, pixels: s.mask), box, nearest: true).pixels
        }
        let brightness = brightnessDelta > 0 ? Float((2 * rng.nextDouble() - 1) * brightnessDelta) : 0
        return (s, brightness)
    }

    static func flip(_ img: Image, _ h: Bool, _ v: Bool) -> Image {
        var out = img
        let c = img.channels
        for y in 0..<img.height {
            let sy = v ? img.height - 1 - y : y
            for x in 0..<img.width {
                let sx = h ? img.width - 1 - x : x
                for k in 0..<c { out.pixels[(y * img.width + x) * c + k] = img.pixels[(sy * img.width + sx) * c + k] }
            }
        }
        return out
    }

    /// TensorFlow's crop_and_resize of one normalized box back to the image's size: sample i of a
    /// side at box.start · (n − 1) + i · (box.end − box.start) · (n − 1) / (n − 1).
    static func cropAndResize(_ img: Image, _ box: (left: Double, right: Double, top: Double, bottom: Double), nearest: Bool) -> Image {
        let (w, h, c) = (img.width, img.height, img.channels)
        func coord(_ i: Int, _ n: Int, _ a: Double, _ b: Double) -> Double {
            n > 1 ? a * Double(n - 1) + Double(i) * (b - a) * Double(n - 1) / Double(n - 1) : 0.5 * (a + b) * Double(n - 1)
        }
        var out = img
        for y in 0..<h {
            let fy = coord(y, h, box.top, box.bottom)
            for x in 0..<w {
                let fx = coord(x, w, box.left, box.right)
                for k in 0..<c {
                    let v: Double
                    if nearest {
                        v = Double(img.pixels[(min(h - 1, Int(fy.rounded())) * w + min(w - 1, Int(fx.rounded()))) * c + k])
                    } else {
                        let (y0, x0) = (Int(fy), Int(fx)), (y1, x1) = (min(h - 1, Int(fy) + 1), min(w - 1, Int(fx) + 1))
                        let (dy, dx) = (fy - Double(y0), fx - Double(x0))
                        func p(_ yy: Int, _ xx: Int) -> Double { Double(img.pixels[(yy * w + xx) * c + k]) }
                        v = (1 - dy) * ((1 - dx) * p(y0, x0) + dx * p(y0, x1)) + dy * ((1 - dx) * p(y1, x0) + dx * p(y1, x1))
                    }
                    out.pixels[(y * w + x) * c + k] = UInt8(min(255, max(0, v.rounded())))
                }
            }
        }
        return out
    }

    /// The network's input for an image: channels first, BGR for color, scaled as `preprocess`
    /// says (grayscale: −1 … 1), plus a brightness shift (clipped to the scale's range where it has one).
    public func input(_ img: Image, brightness: Float = 0) -> [Float] {
        let c = img.channels, plane = img.width * img.height
        let (scale, shift): (Float, Float), clip: ClosedRange<Float>?
        if grayscale { (scale, shift, clip) = (1 / 127.5, -1, -1...1) } else {
            switch preprocess {
            case "div_by_255": (scale, shift, clip) = (1 / 255, 0, nil)
            case "min_max_0_1": (scale, shift, clip) = (1 / 255, 0, 0...1)
            case "min_max_-1_1": (scale, shift, clip) = (1 / 127.5, -1, -1...1)
            default: (scale, shift, clip) = (1, 0, nil)
            }
        }
        var x = [Float](repeating: 0, count: c * plane)
        img.pixels.withUnsafeBufferPointer { p in
            for ch in 0..<c {
                let src = c == 3 && !grayscale ? 2 - ch : ch
                for i in 0..<plane {
                    var v = Float(p[i * c + src]) * scale + shift + brightness
                    if let clip { v = min(clip.upperBound, max(clip.lowerBound, v)) }
                    x[ch * plane + i] = v
                }
            }
        }
        return x
    }
}
