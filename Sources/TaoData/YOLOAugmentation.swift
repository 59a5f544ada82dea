import Foundation
import TaoTensor

/// An image with its labelled boxes (pixels of that image), as YOLO's augmentation moves them.
public struct LabelledImage: Sendable {
    public struct Object: Sendable, Equatable {
        public var classIndex: Int
        public var x1: Double, y1: Double, x2: Double, y2: Double
        public var difficult = false
        public init(classIndex: Int, x1: Double, y1: Double, x2: Double, y2: Double, difficult: Bool = false) {
            self.classIndex = classIndex; self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2; self.difficult = difficult
        }
    }
    public var image: Image
    public var objects: [Object]
    public init(image: Image, objects: [Object]) { self.image = image; self.objects = objects }
}

/// TAO's YOLO augmentation (nvidia_tao_tf1/cv/common/dataio/augmentation_lib.py and the YOLOv4 data
/// sequence): HSV jitter, flips, YOLO's crop jitter (or a random crop inside a mosaic) resized to the
/// network's input without keeping the aspect ratio, mosaic of four images, and for evaluation the
/// letterbox resize that keeps it. Regions outside an image are filled with its mean colour, as TAO
/// fills them. Boxes follow every step; what is left of a box after clipping to the canvas is kept
/// when it is wider and taller than 1/1000 of the canvas.
public struct YOLOAugmentation: Sendable {
    public var width: Int, height: Int
    public var hue = 0.0, saturation = 1.0, exposure = 1.0
    public var vflip = 0.0, hflip = 0.0, jitter = 0.0
    public var mosaicProbability = 0.0, mosaicMinRatio = 0.0
    public init(width: Int, height: Int) { self.width = width; self.height = height }

    /// A source rectangle (pixels; may reach outside the image) drawn into a canvas rectangle.
    public struct Placement: Sendable, Equatable {
        public var sx: Double, sy: Double, sw: Double, sh: Double
        public var dx: Int, dy: Int, dw: Int, dh: Int
        /// Where an image point lands on the canvas.
        public func map(_ x: Double, _ y: Double) -> (Double, Double) {
            (Double(dx) + (x - sx) * Double(dw) / sw, Double(dy) + (y - sy) * Double(dh) / sh)
        }
    }

    // MARK: Evaluation

    /// TAO's letterbox: the image scaled by min(W / w, H / h) (sizes rounded), centred, the rest filled.
    public func letterbox(imageWidth w: Int, imageHeight h: Int) -> Placement {
        let ratio = min(Double(height) / Double(h), Double(width) / Double(w))
        let (nw, nh) = (Int((ratio * Double(w)).rounded()), Int((ratio * Double(h)).rounded()))
        return Placement(sx: 0, sy: 0, sw: Double(w), sh: Double(h), dx: (width - nw) / 2, dy: (height - nh) / 2, dw: nw, dh: nh)
    }

    /// The letterboxed canvas of `s` and its boxes on it.
    public func letterboxed(_ s: LabelledImage) -> LabelledImage {
        let p = letterbox(imageWidth: s.image.width, imageHeight: s.image.height)
        var canvas = Self.blank(width: width, height: height, fill: Self.mean(s.image))
        Self.draw(s.image, p, into: &canvas)
        return LabelledImage(image: canvas, objects: Self.moved(s.objects, p, width: width, height: height))
    }

    // MARK: Training

    /// One training sample: with probability `mosaicProbability` a mosaic of `s` and three images
    /// `other` gives (by index, drawn here), else `s` jittered and resized to the canvas.
    public func training(_ s: LabelledImage, count: Int, other: (Int) throws -> LabelledImage, rng: inout SplitMix64) throws -> LabelledImage {
        if mosaicProbability > 0, rng.nextDouble() < mosaicProbability {
            let yb = Self.uniformInt(Int(Double(height) * mosaicMinRatio), Int(Double(height) * (1 - mosaicMinRatio)), &rng)
            let xb = Self.uniformInt(Int(Double(width) * mosaicMinRatio), Int(Double(width) * (1 - mosaicMinRatio)), &rng)
            let quadrants = [(0, 0, xb, yb), (xb, 0, width - xb, yb), (0, yb, xb, height - yb), (xb, yb, width - xb, height - yb)]
            var canvas = Self.blank(width: width, height: height, fill: [0, 0, 0])
            var objects: [LabelledImage.Object] = []
            for (k, q) in quadrants.enumerated() {
                var img = k == 0 ? s : try other(Int(rng.next() % UInt64(max(count, 1))))
                colorAndFlip(&img, rng: &rng)
                let crop = Self.randomCrop(imageWidth: img.image.width, imageHeight: img.image.height, aspect: Double(q.2) / Double(q.3),
                                           minRatio: 1 - jitter, rng: &rng)
                let p = Placement(sx: crop.x, sy: crop.y, sw: crop.w, sh: crop.h, dx: q.0, dy: q.1, dw: q.2, dh: q.3)
                Self.draw(img.image, p, into: &canvas)
                objects += Self.moved(img.objects, p, width: width, height: height, clip: (q.0, q.1, q.2, q.3))
            }
            return LabelledImage(image: canvas, objects: objects)
        }
        var img = s
        colorAndFlip(&img, rng: &rng)
        let r = Self.jitterCrop(imageWidth: img.image.width, imageHeight: img.image.height, jitter: jitter, aspect: Double(width) / Double(height), rng: &rng)
        let p = Placement(sx: r.x, sy: r.y, sw: r.w, sh: r.h, dx: 0, dy: 0, dw: width, dh: height)
        var canvas = Self.blank(width: width, height: height, fill: Self.mean(img.image))
        Self.draw(img.image, p, into: &canvas)
        return LabelledImage(image: canvas, objects: Self.moved(img.objects, p, width: width, height: height))
    }

    /// HSV jitter, then the vertical and horizontal flips, each drawn in TAO's order.
    func colorAndFlip(_ s: inout LabelledImage, rng: inout SplitMix64) {
        Self.hsv(&s.image, hue: hue, saturation: saturation, exposure: exposure, rng: &rng)
        if rng.nextDouble() < vflip { s = Self.flipped(s, vertical: true) }
        if rng.nextDouble() < hflip { s = Self.flipped(s, vertical: false) }
    }

    /// TAO's aug_hsv on 8-bit RGB (OpenCV's HSV: hue in 0…180): saturation and value multiplied by a
    /// factor drawn in [1, s] (or its inverse, with even odds), hue shifted by up to ±hue · 180.
    public static func hsv(_ img: inout Image, hue: Double, saturation: Double, exposure: Double, rng: inout SplitMix64) {
        func randInv(_ x: Double, _ r: inout SplitMix64) -> Double { r.nextDouble() < 0.5 ? x : 1 / x }
        let s0 = rng.nextDouble() * (saturation - 1) + 1, v0 = rng.nextDouble() * (exposure - 1) + 1
        let sMul = randInv(s0, &rng), vMul = randInv(v0, &rng)
        let dh = (rng.nextDouble() * 2 - 1) * hue * 180
        guard img.channels == 3, sMul != 1 || vMul != 1 || dh != 0 else { return }
        img.pixels.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 3) {
                let (r, g, b) = (Double(p[i]), Double(p[i + 1]), Double(p[i + 2]))
                let mx = max(r, g, b), mn = min(r, g, b), d = mx - mn
                var h = 0.0
                if d > 0 {
                    if mx == r { h = 60 * (g - b) / d } else if mx == g { h = 120 + 60 * (b - r) / d } else { h = 240 + 60 * (r - g) / d }
                    if h < 0 { h += 360 }
                }
                // OpenCV's 8-bit HSV: H/2, S·255, V; shifted, rounded, wrapped and clipped as TAO does.
                var H = (h / 2 + dh).rounded(), S = (mx > 0 ? d / mx * 255 : 0) * sMul, V = mx * vMul
                H = H.truncatingRemainder(dividingBy: 180); if H < 0 { H += 180 }
                S = min(255, max(0, S.rounded())); V = min(255, max(0, V.rounded()))
                let hh = H * 2 / 60, c = V * S / 255, x = c * (1 - abs(hh.truncatingRemainder(dividingBy: 2) - 1)), m = V - c
                let (r1, g1, b1): (Double, Double, Double) = switch Int(hh) {
                case 0: (c, x, 0)
                case 1: (x, c, 0)
                case 2: (0, c, x)
                case 3: (0, x, c)
                case 4: (x, 0, c)
                default: (c, 0, x)
                }
                p[i] = UInt8(min(255, max(0, (r1 + m).rounded()))); p[i + 1] = UInt8(min(255, max(0, (g1 + m).rounded()))); p[i + 2] = UInt8(min(255, max(0, (b1 + m).rounded())))
            }
        }
    }

    /// The image mirrored left-right (or upside down) with its boxes.
    public static func flipped(_ s: LabelledImage, vertical: Bool) -> LabelledImage {
        let (w, h, c) = (s.image.width, s.image.height, s.image.channels)
        var out = [UInt8](repeating: 0, count: s.image.pixels.count)
        s.image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<h {
                for x in 0..<w {
                    let (sx, sy) = vertical ? (x, h - 1 - y) : (w - 1 - x, y)
                    for k in 0..<c { out[(y * w + x) * c + k] = src[(sy * w + sx) * c + k] }
                }
            }
        }
        let objects = s.objects.map { o in
            var o = o
            if vertical { (o.y1, o.y2) = (Double(h) - o.y2, Double(h) - o.y1) } else { (o.x1, o.x2) = (Double(w) - o.x2, Double(w) - o.x1) }
            return o
        }
        return LabelledImage(image: Image(width: w, height: h, channels: c, pixels: out), objects: objects)
    }

    /// TAO's aug_jitter: each side moved by up to ±jitter of the size (at most 0.8, opposite sides at
    /// most 0.8 together), then widened or heightened toward the network's aspect ratio. Returns the
    /// source rectangle (pixels, whole numbers; it may reach outside the image).
    public static func jitterCrop(imageWidth w0: Int, imageHeight h0: Int, jitter: Double, aspect: Double, rng: inout SplitMix64) -> (x: Double, y: Double, w: Double, h: Double) {
        var d = (0..<4).map { _ in min((rng.nextDouble() - 0.5) * 2 * jitter, 0.8) }
        if d[0] + d[2] > 0.8 { d[2] = min(d[2], 0.4); d[0] = min(d[0], 0.4) }
        if d[1] + d[3] > 0.8 { d[1] = min(d[1], 0.4); d[3] = min(d[3], 0.4) }
        let (w, h) = (Double(w0), Double(h0))
        var (dl, dt, dr, db) = (d[0] * w, d[1] * h, d[2] * w, d[3] * h)
        if w / h > aspect {
            var dw = w - h * aspect
            let shift = min(-min(dl, 0), -min(dr, 0), dw / 2)
            dl += shift; dr += shift; dw -= 2 * shift
            if dl < 0, 0 < dw { let s = min(dw, -dl); dl += s; dw -= s }
            if dr < 0, 0 < dw { let s = min(dw, -dr); dr += s; dw -= s }
            if dw > 0 { let dh = dw / aspect; dt -= dh / 2; db -= dh / 2 }
        } else {
            var dh = h - w / aspect
            let shift = min(-min(dt, 0), -min(db, 0), dh / 2)
            dt += shift; db += shift; dh -= 2 * shift
            if dt < 0, 0 < dh { let s = min(dh, -dt); dt += s; dh -= s }
            if db < 0, 0 < dh { let s = min(dh, -db); db += s; dh -= s }
            if dh > 0 { let dw = dh * aspect; dl -= dw / 2; dr -= dw / 2 }
        }
        return (dl.rounded(), dt.rounded(), (w - dl - dr).rounded(), (h - dt - db).rounded())
    }

    /// TAO's aug_random_crop (inside a mosaic): a crop of `aspect` whose shorter-fitting side is a
    /// random fraction in [minRatio, 1] of the image's, at a random place inside it.
    public static func randomCrop(imageWidth w: Int, imageHeight h: Int, aspect: Double, minRatio: Double, rng: inout SplitMix64) -> (x: Double, y: Double, w: Double, h: Double) {
        let ratio = rng.nextDouble() * (1 - minRatio) + minRatio
        var cw: Int, ch: Int
        if Double(w) / Double(h) > aspect {
            ch = Int((Double(h) * ratio).rounded()); cw = Int((Double(ch) * aspect).rounded())
        } else {
            cw = Int((Double(w) * ratio).rounded()); ch = Int((Double(cw) / aspect).rounded())
        }
        cw = max(1, min(cw, w)); ch = max(1, min(ch, h))
        let top = Int(rng.next() % UInt64(h - ch + 1)), left = Int(rng.next() % UInt64(w - cw + 1))
        return (Double(left), Double(top), Double(cw), Double(ch))
    }

    // MARK: Pixels and boxes

    static func uniformInt(_ lo: Int, _ hi: Int, _ rng: inout SplitMix64) -> Int { lo + Int(rng.next() % UInt64(max(hi - lo + 1, 1))) }

    /// The mean of each channel.
    public static func mean(_ img: Image) -> [Double] {
        var sums = [Double](repeating: 0, count: img.channels)
        img.pixels.withUnsafeBufferPointer { p in for i in 0..<p.count { sums[i % img.channels] += Double(p[i]) } }
        return sums.map { $0 / Double(max(img.width * img.height, 1)) }
    }

    static func blank(width: Int, height: Int, fill: [Double]) -> Image {
        let c = fill.count
        var px = [UInt8](repeating: 0, count: width * height * c)
        let f = fill.map { UInt8(min(255, max(0, $0.rounded()))) }
        for i in 0..<(width * height) { for k in 0..<c { px[i * c + k] = f[k] } }
        return Image(width: width, height: height, channels: c, pixels: px)
    }

    /// Draws the source rectangle of `p` into its canvas rectangle, bilinear with pixel centres
    /// aligned as OpenCV's resize aligns them; canvas pixels whose source lies outside the image keep
    /// their fill, and at the image's edge the fill is blended in.
    public static func draw(_ img: Image, _ p: Placement, into canvas: inout Image) {
        let c = img.channels, (iw, ih) = (img.width, img.height), cw = canvas.width
        let fx = p.sw / Double(p.dw), fy = p.sh / Double(p.dh)
        img.pixels.withUnsafeBufferPointer { src in
            canvas.pixels.withUnsafeMutableBufferPointer { dst in
                for y in max(p.dy, 0)..<min(p.dy + p.dh, canvas.height) {
                    let sy = p.sy + (Double(y - p.dy) + 0.5) * fy - 0.5
                    let y0 = Int(sy.rounded(.down)), wy = sy - Double(y0)
                    for x in max(p.dx, 0)..<min(p.dx + p.dw, cw) {
                        let sx = p.sx + (Double(x - p.dx) + 0.5) * fx - 0.5
                        let x0 = Int(sx.rounded(.down)), wx = sx - Double(x0)
                        guard x0 >= -1, y0 >= -1, x0 < iw, y0 < ih else { continue }
                        let at = (y * cw + x) * c
                        // Inside the image, OpenCV clamps to the border pixel; outside, the fill shows.
                        let xa = min(max(x0, 0), iw - 1), xb = min(max(x0 + 1, 0), iw - 1)
                        let ya = min(max(y0, 0), ih - 1), yb = min(max(y0 + 1, 0), ih - 1)
                        let inX = sx >= -0.5 && sx <= Double(iw) - 0.5, inY = sy >= -0.5 && sy <= Double(ih) - 0.5
                        for k in 0..<c {
                            let v = (1 - wy) * ((1 - wx) * Double(src[(ya * iw + xa) * c + k]) + wx * Double(src[(ya * iw + xb) * c + k]))
                                + wy * ((1 - wx) * Double(src[(yb * iw + xa) * c + k]) + wx * Double(src[(yb * iw + xb) * c + k]))
                            if inX && inY { dst[at + k] = UInt8(min(255, max(0, v.rounded()))) }
                        }
                    }
                }
            }
        }
    }

    /// Boxes moved by `p`, clipped to the canvas (or to `clip`, a canvas rectangle), the degenerate dropped.
    public static func moved(_ objects: [LabelledImage.Object], _ p: Placement, width: Int, height: Int,
                             clip: (x: Int, y: Int, w: Int, h: Int)? = nil) -> [LabelledImage.Object] {
        let r = clip ?? (0, 0, width, height)
        return objects.compactMap { o in
            let (a, b) = p.map(o.x1, o.y1), (c, d) = p.map(o.x2, o.y2)
            var m = o
            m.x1 = min(max(min(a, c), Double(r.x)), Double(r.x + r.w)); m.x2 = min(max(max(a, c), Double(r.x)), Double(r.x + r.w))
            m.y1 = min(max(min(b, d), Double(r.y)), Double(r.y + r.h)); m.y2 = min(max(max(b, d), Double(r.y)), Double(r.y + r.h))
            guard m.x2 - m.x1 > 1e-3 * Double(width), m.y2 - m.y1 > 1e-3 * Double(height) else { return nil }
            return m
        }
    }
}
