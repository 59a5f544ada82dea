import Foundation
import TaoTensor

/// A 2-D affine map, x' = a·x + b·y + tx, y' = c·x + d·y + ty.
public struct Affine: Equatable, Sendable {
    public var a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double
    public static let identity = Affine(a: 1, b: 0, c: 0, d: 1, tx: 0, ty: 0)
    public init(a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double) { self.a = a; self.b = b; self.c = c; self.d = d; self.tx = tx; self.ty = ty }

    public func apply(_ x: Double, _ y: Double) -> (Double, Double) { (a * x + b * y + tx, c * x + d * y + ty) }
    /// `self` after `other`: x ↦ self(other(x)).
    public func after(_ o: Affine) -> Affine {
        Affine(a: a * o.a + b * o.c, b: a * o.b + b * o.d, c: c * o.a + d * o.c, d: c * o.b + d * o.d,
               tx: a * o.tx + b * o.ty + tx, ty: c * o.tx + d * o.ty + ty)
    }
    public var inverse: Affine {
        let det = a * d - b * c
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det)
        return Affine(a: ia, b: ib, c: ic, d: id, tx: -(ia * tx + ib * ty), ty: -(ic * tx + id * ty))
    }
    public static func translation(_ x: Double, _ y: Double) -> Affine { Affine(a: 1, b: 0, c: 0, d: 1, tx: x, ty: y) }
    public static func scaling(_ sx: Double, _ sy: Double) -> Affine { Affine(a: sx, b: 0, c: 0, d: sy, tx: 0, ty: 0) }
    public static func rotation(_ t: Double) -> Affine { Affine(a: cos(t), b: -sin(t), c: sin(t), d: cos(t), tx: 0, ty: 0) }
}

/// TAO's DetectNet_v2 `augmentation_config`: the image placed on an output-size canvas (cropped to
/// `crop` first when given), then one affine map of flips, zoom, rotation and translation about the
/// canvas centre applied to the pixels and the boxes alike; colour jitter on the pixels; boxes
/// clipped to the canvas and dropped below the minimum size.
public struct DetectionAugmentation: Sendable {
    public var width: Int, height: Int, channels: Int
    public var crop: (left: Int, top: Int, right: Int, bottom: Int)?
    public var hflip = 0.0, vflip = 0.0
    public var zoomMin = 1.0, zoomMax = 1.0
    public var translateX = 0.0, translateY = 0.0
    public var rotateMax = 0.0, rotateProbability = 0.0
    public var hueRotation = 0.0, saturationShift = 0.0, contrastScale = 0.0, contrastCenter = 0.5, colorShift = 0.0
    public var minBoxWidth = 1.0, minBoxHeight = 1.0

    public init(width: Int, height: Int, channels: Int) { self.width = width; self.height = height; self.channels = channels }

    /// The map from source pixels to canvas pixels without augmentation: the crop (if any) at the top left.
    public var base: Affine { Affine.translation(-Double(crop?.left ?? 0), -Double(crop?.top ?? 0)) }

    /// The map from source pixels to canvas pixels for one random draw.
    public func transform(rng r: inout SplitMix64) -> Affine {
        var m = base
        let (cx, cy) = (Double(width) / 2, Double(height) / 2)
        var s = Affine.identity
        if r.nextDouble() < hflip { s = Affine(a: -1, b: 0, c: 0, d: 1, tx: 0, ty: 0).after(s) }
        if r.nextDouble() < vflip { s = Affine(a: 1, b: 0, c: 0, d: -1, tx: 0, ty: 0).after(s) }
        let zoom = zoomMin + (zoomMax - zoomMin) * r.nextDouble()
        s = Affine.scaling(zoom, zoom).after(s)
        if rotateMax > 0, r.nextDouble() < rotateProbability { s = Affine.rotation((2 * r.nextDouble() - 1) * rotateMax).after(s) }
        let t = Affine.translation((2 * r.nextDouble() - 1) * translateX, (2 * r.nextDouble() - 1) * translateY)
        m = t.after(Affine.translation(cx, cy)).after(s).after(Affine.translation(-cx, -cy)).after(m)
        return m
    }

    /// The canvas image for `img` under `m` (bilinear; outside the source is 0).
    public func warp(_ img: Image, _ m: Affine) -> Image {
        let inv = m.inverse, ch = img.channels
        var out = [UInt8](repeating: 0, count: width * height * ch)
        img.pixels.withUnsafeBufferPointer { src in
            for y in 0..<height {
                for x in 0..<width {
                    let (sx, sy) = inv.apply(Double(x) + 0.5, Double(y) + 0.5)
                    let (fx, fy) = (sx - 0.5, sy - 0.5)
                    let (x0, y0) = (Int(fx.rounded(.down)), Int(fy.rounded(.down)))
                    guard x0 >= -1, y0 >= -1, x0 < img.width, y0 < img.height else { continue }
                    let (wx, wy) = (fx - Double(x0), fy - Double(y0))
                    for c in 0..<ch {
                        func p(_ yy: Int, _ xx: Int) -> Double {
                            yy >= 0 && yy < img.height && xx >= 0 && xx < img.width ? Double(src[(yy * img.width + xx) * ch + c]) : 0
                        }
                        let v = (1 - wy) * ((1 - wx) * p(y0, x0) + wx * p(y0, x0 + 1)) + wy * ((1 - wx) * p(y0 + 1, x0) + wx * p(y0 + 1, x0 + 1))
                        out[(y * width + x) * ch + c] = UInt8(min(255, max(0, v.rounded())))
                    }
                }
            }
        }
        return Image(width: width, height: height, channels: ch, pixels: out)
    }

    /// A box under `m`: the bounding box of its moved corners, clipped to the canvas; nil when what is
    /// left is narrower or shorter than the minimum.
    public func transform(box: (x1: Double, y1: Double, x2: Double, y2: Double), _ m: Affine) -> (x1: Double, y1: Double, x2: Double, y2: Double)? {
        let corners = [m.apply(box.x1, box.y1), m.apply(box.x2, box.y1), m.apply(box.x1, box.y2), m.apply(box.x2, box.y2)]
        let x1 = max(0, corners.map(\.0).min()!), x2 = min(Double(width), corners.map(\.0).max()!)
        let y1 = max(0, corners.map(\.1).min()!), y2 = min(Double(height), corners.map(\.1).max()!)
        guard x2 - x1 >= max(minBoxWidth, 1e-3), y2 - y1 >= max(minBoxHeight, 1e-3) else { return nil }
        return (x1, y1, x2, y2)
    }

    /// TAO's colour augmentation on an RGB image: hue rotation (degrees), saturation and contrast
    /// changes and a per-channel shift, each drawn uniformly within its maximum.
    public func jitterColor(_ img: inout Image, rng: inout SplitMix64) {
        guard img.channels == 3, hueRotation > 0 || saturationShift > 0 || contrastScale > 0 || colorShift > 0 else { return }
        let hue = (2 * rng.nextDouble() - 1) * hueRotation * Double.pi / 180
        let sat = 1 + (2 * rng.nextDouble() - 1) * saturationShift
        let con = 1 + (2 * rng.nextDouble() - 1) * contrastScale
        let shift = (0..<3).map { _ in colorShift * 255 * Double(rng.nextNormal()) }
        // Hue rotation about the grey axis and saturation as one 3×3 colour matrix (YIQ rotation).
        let (cs, sn) = (cos(hue), sin(hue))
        let toYIQ = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
        let toRGB = [[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]]
        let rot = [[1.0, 0, 0], [0, sat * cs, -sat * sn], [0, sat * sn, sat * cs]]
        func mul(_ p: [[Double]], _ q: [[Double]]) -> [[Double]] { (0..<3).map { i in (0..<3).map { j in (0..<3).reduce(0) { $0 + p[i][$1] * q[$1][j] } } } }
        let mat = mul(toRGB, mul(rot, toYIQ))
        let centre = contrastCenter * 255
        for i in 0..<(img.width * img.height) {
            let px = (0..<3).map { Double(img.pixels[3 * i + $0]) }
            for c in 0..<3 {
                var v = mat[c][0] * px[0] + mat[c][1] * px[1] + mat[c][2] * px[2]
                v = (v - centre) * con + centre + shift[c]
                img.pixels[3 * i + c] = UInt8(min(255, max(0, v.rounded())))
            }
        }
    }
}
