import Foundation
import TaoTensor

/// How images become network inputs: size, normalization and augmentation.
public struct Preprocessing: Sendable {
    public enum Mode: String, Sendable { case caffe, torch, tf }
    public var channels: Int, height: Int, width: Int
    public var mode: Mode
    /// Per-channel means (0–255 scale) overriding the mode's defaults, keyed r/g/b or l.
    public var mean: [String: Float]
    public var randomCrop = false
    public var centerCrop = false
    public var horizontalFlip = false
    public var colorAugmentation = false
    /// Bicubic instead of bilinear resizing (TAO's `resize_interpolation_method`).
    public var bicubic = false

    public init(channels: Int, height: Int, width: Int, mode: Mode = .caffe, mean: [String: Float] = [:]) {
        self.channels = channels; self.height = height; self.width = width; self.mode = mode; self.mean = mean
    }

    /// Writes `img` (already resized to height×width) as normalized planar floats into `dst`.
    /// caffe: BGR order, mean subtracted, 0–255 scale; torch: RGB /255, ImageNet mean/std; tf: RGB scaled to [-1, 1].
    func normalize(_ img: Image, into dst: UnsafeMutablePointer<Float>) {
        let plane = height * width
        for c in 0..<channels {
            let src = channels == 3 && mode == .caffe ? 2 - c : c   // caffe mode feeds BGR
            let (m, s) = stats(channel: src)
            for i in 0..<plane { dst[c * plane + i] = (Float(img.pixels[i * channels + src]) - m) / s }
        }
    }

    func stats(channel c: Int) -> (Float, Float) {
        let key = channels == 1 ? "l" : ["r", "g", "b"][c]
        switch mode {
        case .caffe: return (mean[key] ?? (channels == 1 ? 117.3786 : [123.68, 116.779, 103.939][c]), 1)
        case .torch:
            let std: Float = channels == 1 ? 0.226 : [0.229, 0.224, 0.225][c]
            return (mean[key] ?? (channels == 1 ? 0.449 * 255 : [0.485, 0.456, 0.406][c] * 255), std * 255)
        case .tf: return (mean[key] ?? 127.5, 127.5)
        }
    }
}

/// Bicubic resize (Keys kernel, a = −0.5; half-pixel centers; edges clamped).
public func resizeBicubic(_ img: Image, width w: Int, height h: Int) -> Image {
    if img.width == w && img.height == h { return img }
    func weights(_ t: Float) -> [Float] {
        func k(_ x: Float) -> Float {
            let a: Float = -0.5, x = abs(x)
            if x <= 1 { return (a + 2) * x * x * x - (a + 3) * x * x + 1 }
            if x < 2 { return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a }
            return 0
        }
        return [k(1 + t), k(t), k(1 - t), k(2 - t)]
    }
    var out = [UInt8](repeating: 0, count: w * h * img.channels)
    let sx = Float(img.width) / Float(w), sy = Float(img.height) / Float(h)
    for y in 0..<h {
        let fy = (Float(y) + 0.5) * sy - 0.5
        let y0 = Int(fy.rounded(.down)), wy = weights(fy - Float(y0))
        for x in 0..<w {
            let fx = (Float(x) + 0.5) * sx - 0.5
            let x0 = Int(fx.rounded(.down)), wx = weights(fx - Float(x0))
            for c in 0..<img.channels {
                var v: Float = 0
                for j in 0..<4 {
                    let yy = min(max(y0 - 1 + j, 0), img.height - 1)
                    for i in 0..<4 {
                        let xx = min(max(x0 - 1 + i, 0), img.width - 1)
                        v += wy[j] * wx[i] * Float(img.pixels[(yy * img.width + xx) * img.channels + c])
                    }
                }
                out[(y * w + x) * img.channels + c] = UInt8(min(255, max(0, v.rounded())))
            }
        }
    }
    return Image(width: w, height: h, channels: img.channels, pixels: out)
}

/// Bilinear resize of an 8-bit image (half-pixel centers).
public func resize(_ img: Image, width w: Int, height h: Int) -> Image {
    if img.width == w && img.height == h { return img }
    var out = [UInt8](repeating: 0, count: w * h * img.channels)
    let sx = Float(img.width) / Float(w), sy = Float(img.height) / Float(h)
    for y in 0..<h {
        let fy = max(0, (Float(y) + 0.5) * sy - 0.5)
        let y0 = min(Int(fy), img.height - 1), y1 = min(y0 + 1, img.height - 1), dy = fy - Float(y0)
        for x in 0..<w {
            let fx = max(0, (Float(x) + 0.5) * sx - 0.5)
            let x0 = min(Int(fx), img.width - 1), x1 = min(x0 + 1, img.width - 1), dx = fx - Float(x0)
            for c in 0..<img.channels {
                func p(_ yy: Int, _ xx: Int) -> Float { Float(img.pixels[(yy * img.width + xx) * img.channels + c]) }
                let v = (1 - dy) * ((1 - dx) * p(y0, x0) + dx * p(y0, x1)) + dy * ((1 - dx) * p(y1, x0) + dx * p(y1, x1))
                out[(y * w + x) * img.channels + c] = UInt8(min(255, max(0, v.rounded())))
            }
        }
    }
    return Image(width: w, height: h, channels: img.channels, pixels: out)
}

/// One batch: images as plain N×C×H×W floats and their labels.
public struct Batch: Sendable {
    public var images: [Float]
    public var labels: [Int]
    public var indices: [Int]
}

/// Decodes, augments and batches an `ImageFolder` on worker threads, ahead of the consumer.
///
/// Every sample's randomness comes from (seed, epoch, sample index), so a run repeats exactly
/// for a seed however the threads are scheduled. Errors (a corrupt image) surface in `next()`
/// naming the file; no sample is skipped silently.
public final class BatchLoader: @unchecked Sendable {
    public let folder: ImageFolder
    public let prep: Preprocessing
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64
    private let workers: Int
    private let lock = NSCondition()
    private var ready: [Int: Result<Batch, Error>] = [:]
    private var order: [Int] = []
    private var nextToHand = 0
    private var nextToClaim = 0
    private var epoch = 0
    private var threadsStarted = false
    private var closed = false
    private let depth: Int

    public init(folder: ImageFolder, preprocessing: Preprocessing, batchSize: Int, shuffle: Bool, dropLast: Bool,
                seed: UInt64, workers: Int = 2, prefetch: Int = 4) {
        self.folder = folder; prep = preprocessing; self.batchSize = batchSize; self.shuffle = shuffle
        self.dropLast = dropLast; self.seed = seed; self.workers = max(1, workers); depth = max(1, prefetch)
    }

    /// This rank's part of every epoch in data-parallel training (set before `start`; needs `dropLast`).
    public var shard: Shard = .whole {
        didSet { precondition(dropLast || shard.count == 1, "a sharded loader drops the last incomplete batch") }
    }

    public var batchesPerEpoch: Int {
        dropLast ? shard.steps(samples: folder.count, batchSize: batchSize) : (folder.count + batchSize - 1) / batchSize
    }

    /// Starts an epoch: a new shuffle, and workers filling the queue.
    public func start(epoch e: Int) {
        lock.lock()
        epoch = e
        order = Array(0..<folder.count)
        if shuffle {
            var rng = SplitMix64(seed: seed &* 1_000_003 &+ UInt64(e))
            order.shuffle(using: &rng)
        }
        ready = [:]
        nextToHand = 0
        nextToClaim = 0
        let start = !threadsStarted
        threadsStarted = true
        lock.broadcast()
        lock.unlock()
        if start {
            for _ in 0..<workers { Thread { [weak self] in self?.work() }.start() }
        }
    }

    /// The next batch of the epoch in order, or nil at its end; rethrows a decoding error.
    public func next() throws -> Batch? {
        lock.lock()
        defer { lock.unlock() }
        guard nextToHand < batchesPerEpoch else { return nil }
        while ready[nextToHand] == nil { lock.wait() }
        let r = ready.removeValue(forKey: nextToHand)!
        nextToHand += 1
        lock.broadcast()
        return try r.get()
    }

    /// Stops the worker threads (call when done; the loader cannot be restarted).
    public func close() {
        lock.lock()
        closed = true
        lock.broadcast()
        lock.unlock()
    }

    private func work() {
        while true {
            lock.lock()
            while !closed && (nextToClaim >= batchesPerEpoch || nextToClaim >= nextToHand + depth) { lock.wait() }
            if closed { lock.unlock(); return }
            let b = nextToClaim, e = epoch
            let idx = Array(order[shard.count > 1 ? shard.positions(step: b, batchSize: batchSize) : (b * batchSize)..<min((b + 1) * batchSize, order.count)])
            nextToClaim += 1
            lock.unlock()
            let result = Result { try makeBatch(idx, epoch: e) }
            lock.lock()
            if e == epoch { ready[b] = result }
            lock.broadcast()
            lock.unlock()
        }
    }

    /// Builds one batch (also usable directly, without threads).
    public func makeBatch(_ idx: [Int], epoch: Int) throws -> Batch {
        let (c, h, w) = (prep.channels, prep.height, prep.width)
        var images = [Float](repeating: 0, count: idx.count * c * h * w)
        for (k, i) in idx.enumerated() {
            var rng = SplitMix64(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9) ^ (UInt64(i) &* 0xBF58_476D_1CE4_E5B9))
            var img = try ImageCodec.decode(path: folder.paths[i], channels: c)
            img = augment(img, rng: &rng)
            images.withUnsafeMutableBufferPointer { prep.normalize(img, into: $0.baseAddress! + k * c * h * w) }
        }
        return Batch(images: images, labels: idx.map { folder.labels[$0] }, indices: idx)
    }

    func augment(_ src: Image, rng: inout SplitMix64) -> Image {
        var img = src
        let (h, w) = (prep.height, prep.width)
        // TAO's crops act only when the image is not already the target size.
        if (prep.randomCrop || prep.centerCrop) && (img.width != w || img.height != h) {
            // random: scale so that a crop of the target size is a fraction f ∈ [0.45, 1] of the image
            // (aspect kept), then crop at a random place; center: scale to target + 32 and crop the middle.
            let scale: Float
            if prep.randomCrop {
                let f = 0.45 + 0.55 * rng.nextFloat()
                scale = max(Float(w) / f / Float(img.width), Float(h) / f / Float(img.height))
            } else {
                scale = max(Float(w + 32) / Float(img.width), Float(h + 32) / Float(img.height))
            }
            let sw = max(w, Int(Float(img.width) * scale)), sh = max(h, Int(Float(img.height) * scale))
            img = prep.bicubic ? resizeBicubic(img, width: sw, height: sh) : resize(img, width: sw, height: sh)
            let (x, y) = prep.randomCrop
                ? (Int(rng.next() % UInt64(sw - w + 1)), Int(rng.next() % UInt64(sh - h + 1)))
                : ((sw - w + 1) / 2, (sh - h + 1) / 2)
            img = crop(img, x: x, y: y, w: w, h: h)
        }
        img = prep.bicubic ? resizeBicubic(img, width: w, height: h) : resize(img, width: w, height: h)
        if prep.horizontalFlip && rng.next() & 1 == 1 {
            var px = img.pixels
            for y in 0..<h { for x in 0..<(w / 2) { for c in 0..<img.channels {
                px.swapAt((y * w + x) * img.channels + c, (y * w + w - 1 - x) * img.channels + c)
            } } }
            img.pixels = px
        }
        if prep.colorAugmentation {
            // Brightness and contrast jitter of up to ±20%.
            let b = 0.8 + 0.4 * rng.nextFloat(), ct = 0.8 + 0.4 * rng.nextFloat()
            let mean = Float(img.pixels.reduce(0) { $0 + Int($1) }) / Float(img.pixels.count)
            img.pixels = img.pixels.map { UInt8(min(255, max(0, ((Float($0) - mean) * ct + mean) * b))) }
        }
        return img
    }

    func crop(_ img: Image, x: Int, y: Int, w: Int, h: Int) -> Image {
        var px = [UInt8](repeating: 0, count: w * h * img.channels)
        for r in 0..<h {
            let s = ((y + r) * img.width + x) * img.channels
            for k in 0..<(w * img.channels) { px[r * w * img.channels + k] = img.pixels[s + k] }
        }
        return Image(width: w, height: h, channels: img.channels, pixels: px)
    }
}
