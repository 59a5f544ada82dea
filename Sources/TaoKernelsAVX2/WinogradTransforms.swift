/// The transforms of Winograd's F(4×4, 3×3) convolution (`TaoKernels.WinogradConvolution`), in a
/// target of their own compiled for AVX2 with FMA (`-target-cpu haswell`): SIMD8 arithmetic is one
/// instruction there and two with the x86-64 baseline, and the transforms ran 2.2× faster. Called
/// only where oneDNN reports AVX2 or better; nothing else lives here.
public enum WinogradTransforms {
    /// Shapes and tiling of one convolution (channels in whole blocks of 8, nChw8c).
    public struct Layout: Sendable {
        public var inChannels, outChannels, inHeight, inWidth, outHeight, outWidth, padTop, padLeft, tilesH, tilesW, chunk: Int
        public init(inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int,
                    padTop: Int, padLeft: Int, tilesH: Int, tilesW: Int, chunk: Int) {
            self.inChannels = inChannels; self.outChannels = outChannels; self.inHeight = inHeight; self.inWidth = inWidth
            self.outHeight = outHeight; self.outWidth = outWidth; self.padTop = padTop; self.padLeft = padLeft
            self.tilesH = tilesH; self.tilesW = tilesW; self.chunk = chunk
        }
    }

    /// Fused after bias: leaky-ReLU `activation` (slope; nil: none), `sum` of dst's prior content,
    /// then `postActivation`.
    public struct PostOps: Sendable {
        public var activationSlope: Float?, sum: Bool, postActivationSlope: Float?
        public init(activationSlope: Float?, sum: Bool, postActivationSlope: Float?) {
            self.activationSlope = activationSlope; self.sum = sum; self.postActivationSlope = postActivationSlope
        }
    }

    typealias V8 = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V8 {
        UnsafeRawPointer(p).loadUnaligned(as: V8.self)
    }
    @inline(__always) static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
    }

    /// Bᵀ applied to six vectors (stride `s`), in place.
    @inline(__always) static func bt(_ d: UnsafeMutablePointer<V8>, _ s: Int) {
        let (d0, d1, d2, d3, d4, d5) = (d[0], d[s], d[2 * s], d[3 * s], d[4 * s], d[5 * s])
        let four: Float = 4, five: Float = 5, two: Float = 2
        d[0] = four * d0 - five * d2 + d4
        d[s] = (d3 + d4) - four * (d1 + d2)
        d[2 * s] = (d4 - d3) + four * (d1 - d2)
        d[3 * s] = (d4 - d2) + two * (d3 - d1)
        d[4 * s] = (d4 - d2) - two * (d3 - d1)
        d[5 * s] = four * d1 - five * d3 + d5
    }

    /// V[ξ][t][ic] = (Bᵀ d B)[ξ] for the tiles `start + from ..< start + to` of `src` (nChw8c),
    /// zero outside the image (the padding).
    public static func input(_ src: UnsafePointer<Float>, _ vp: UnsafeMutablePointer<Float>, _ g: Layout,
                             start: Int, from: Int, to: Int) {
        let (ih, iw, icb, ic) = (g.inHeight, g.inWidth, g.inChannels / 8, g.inChannels)
        let perImage = g.tilesH * g.tilesW
        let d = UnsafeMutablePointer<V8>.allocate(capacity: 36)
        defer { d.deallocate() }
        let plane = ih * iw * 8
        let step = g.chunk * ic
        for t in from..<to {
            let tile = start + t
            let n = tile / perImage, r = tile % perImage
            let y0 = (r / g.tilesW) * 4 - g.padTop, x0 = (r % g.tilesW) * 4 - g.padLeft
            let interior = y0 >= 0 && x0 >= 0 && y0 + 6 <= ih && x0 + 6 <= iw
            for cb in 0..<icb {
                let base = src + (n * icb + cb) * plane
                if interior {
                    for a in 0..<6 {
                        let row = base + ((y0 + a) * iw + x0) * 8
                        for b in 0..<6 { d[a * 6 + b] = load(row + b * 8) }
                    }
                } else {
                    for a in 0..<6 {
                        let y = y0 + a
                        for b in 0..<6 {
                            let x = x0 + b
                            d[a * 6 + b] = y >= 0 && y < ih && x >= 0 && x < iw ? load(base + (y * iw + x) * 8) : V8()
                        }
                    }
                }
                for b in 0..<6 { bt(d + b, 6) }
                for a in 0..<6 { bt(d + a * 6, 1) }
                let out = vp + t * ic + cb * 8
                for xi in 0..<36 { store(d[xi], out + xi * step) }
            }
        }
    }

    /// Aᵀ applied to six vectors (stride `s`), four results.
    @inline(__always) static func at(_ m: UnsafePointer<V8>, _ s: Int) -> (V8, V8, V8, V8) {
        let (m0, m1, m2, m3, m4, m5) = (m[0], m[s], m[2 * s], m[3 * s], m[4 * s], m[5 * s])
        let p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4
        let two: Float = 2, four: Float = 4, eight: Float = 8
        return (m0 + p12 + p34, d12 + two * d34, p12 + four * p34, d12 + eight * d34 + m5)
    }

    @inline(__always) static func relu(_ slope: Float?, _ x: V8) -> V8 {
        guard let slope else { return x }
        if slope == 0 { return x.replacing(with: 0, where: x .< 0) }
        return x.replacing(with: x * slope, where: x .< 0)
    }

    /// dst = post-ops((Aᵀ M A) + bias) for the tiles `start + from ..< start + to`, clipped at the
    /// output's edges.
    public static func output(_ mp: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?,
                              _ g: Layout, _ ops: PostOps, start: Int, from: Int, to: Int) {
        let (oh, ow, ocb, oc) = (g.outHeight, g.outWidth, g.outChannels / 8, g.outChannels)
        let perImage = g.tilesH * g.tilesW
        let mm = UnsafeMutablePointer<V8>.allocate(capacity: 36)
        let tm = UnsafeMutablePointer<V8>.allocate(capacity: 24)
        let outs = UnsafeMutablePointer<V8>.allocate(capacity: 4)
        defer { mm.deallocate(); tm.deallocate(); outs.deallocate() }
        let plane = oh * ow * 8
        let step = g.chunk * oc
        for t in from..<to {
            let tile = start + t
            let n = tile / perImage, r = tile % perImage
            let y0 = (r / g.tilesW) * 4, x0 = (r % g.tilesW) * 4
            let rows = min(4, oh - y0), cols = min(4, ow - x0)
            for ob in 0..<ocb {
                let src = mp + t * oc + ob * 8
                for xi in 0..<36 { mm[xi] = load(src + xi * step) }
                // Columns: 6×6 → 4×6; rows: 4×6 → 4×4.
                for b in 0..<6 {
                    let (r0, r1, r2, r3) = at(mm + b, 6)
                    tm[b] = r0; tm[6 + b] = r1; tm[12 + b] = r2; tm[18 + b] = r3
                }
                let bv = bias.map { load($0 + ob * 8) } ?? V8()
                let base = dst + (n * ocb + ob) * plane
                for k in 0..<rows {
                    (outs[0], outs[1], outs[2], outs[3]) = at(tm + k * 6, 1)
                    let row = base + ((y0 + k) * ow + x0) * 8
                    for l in 0..<cols {
                        var y = relu(ops.activationSlope, outs[l] + bv)
                        if ops.sum { y += load(row + l * 8) }
                        store(relu(ops.postActivationSlope, y), row + l * 8)
                    }
                }
            }
        }
    }
}
