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

        /// Where output tile `tile` lies: its image, top-left output pixel, and the rows and columns
        /// of it inside the output (fewer than 4 at the bottom and right edges).
        @inline(__always) func outputTile(_ tile: Int) -> (n: Int, y0: Int, x0: Int, rows: Int, cols: Int) {
            let perImage = tilesH * tilesW
            let n = tile / perImage, r = tile % perImage
            let y0 = (r / tilesW) * 4, x0 = (r % tilesW) * 4
            return (n, y0, x0, min(4, outHeight - y0), min(4, outWidth - x0))
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

    /// G applied to three vectors: the six rows of G·(a, b, c)ᵀ.
    @inline(__always) static func g(_ a: V8, _ b: V8, _ c: V8) -> (V8, V8, V8, V8, V8, V8) {
        let s = a + c
        let quarter: Float = 1 / 4, sixth: Float = 1 / 6, twentyFourth: Float = 1 / 24, twelfth: Float = 1 / 12
        return (a * quarter, (s + b) * -sixth, (s - b) * -sixth,
                a * twentyFourth + b * twelfth + c * sixth, a * twentyFourth - b * twelfth + c * sixth, c)
    }

    /// U[ξ][i][o] = (G g Gᵀ)[ξ] for the input channels `from ..< to`, eight output channels a vector
    /// (U is [36][ic][oc]): g the 3×3 kernel of (o, i) in `w` [oc][ic][3][3], or with
    /// `transposedAndFlipped` that of (i, o) in `w` [ic][oc][3][3] turned by 180° (the data
    /// gradient's weights). In float: within a few units in the last place of the exact transform.
    public static func weights(_ w: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>, inChannels ic: Int, outChannels oc: Int,
                               transposedAndFlipped: Bool, from: Int, to: Int) {
        let k = UnsafeMutablePointer<V8>.allocate(capacity: 9)
        defer { k.deallocate() }
        let step = ic * oc
        for i in from..<to {
            for ob in stride(from: 0, to: oc, by: 8) {
                for l in 0..<8 {
                    let o = ob + l
                    if transposedAndFlipped {
                        let p = w + (i * oc + o) * 9
                        for t in 0..<9 { k[t][l] = p[8 - t] }
                    } else {
                        let p = w + (o * ic + i) * 9
                        for t in 0..<9 { k[t][l] = p[t] }
                    }
                }
                // Columns (G g: 3×3 → 6×3), then rows (· Gᵀ: 6×3 → 6×6).
                let c0 = g(k[0], k[3], k[6]), c1 = g(k[1], k[4], k[7]), c2 = g(k[2], k[5], k[8])
                let base = u + i * oc + ob
                @inline(__always) func row(_ a: Int, _ x: V8, _ y: V8, _ z: V8) {
                    let r = g(x, y, z)
                    store(r.0, base + (a * 6) * step); store(r.1, base + (a * 6 + 1) * step); store(r.2, base + (a * 6 + 2) * step)
                    store(r.3, base + (a * 6 + 3) * step); store(r.4, base + (a * 6 + 4) * step); store(r.5, base + (a * 6 + 5) * step)
                }
                row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2)
                row(3, c0.3, c1.3, c2.3); row(4, c0.4, c1.4, c2.4); row(5, c0.5, c1.5, c2.5)
            }
        }
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

    /// A applied to four vectors: the adjoint of `at` (six results).
    @inline(__always) static func a(_ y0: V8, _ y1: V8, _ y2: V8, _ y3: V8) -> (V8, V8, V8, V8, V8, V8) {
        let p02 = y0 + y2, p13 = y1 + y3
        let two: Float = 2, four: Float = 4, eight: Float = 8
        let q = y0 + four * y2, r = two * y1 + eight * y3
        return (y0, p02 + p13, p02 - p13, q + r, q - r, y3)
    }

    /// dM[ξ][t][oc] = (A dY Aᵀ)[ξ] for the tiles `start + from ..< start + to` of `dy` (nChw8c): the
    /// adjoint of `output` without post-ops (dY read as zero beyond the output's edges, where
    /// `output` clips).
    public static func outputGradient(_ dy: UnsafePointer<Float>, _ mp: UnsafeMutablePointer<Float>, _ g: Layout,
                                      start: Int, from: Int, to: Int) {
        let (oh, ow, ocb, oc) = (g.outHeight, g.outWidth, g.outChannels / 8, g.outChannels)
        let yv = UnsafeMutablePointer<V8>.allocate(capacity: 16)
        let tm = UnsafeMutablePointer<V8>.allocate(capacity: 24)
        defer { yv.deallocate(); tm.deallocate() }
        let plane = oh * ow * 8
        let step = g.chunk * oc
        for t in from..<to {
            let (n, y0, x0, rows, cols) = g.outputTile(start + t)
            for ob in 0..<ocb {
                let base = dy + (n * ocb + ob) * plane
                for k in 0..<4 {
                    for l in 0..<4 { yv[k * 4 + l] = k < rows && l < cols ? load(base + ((y0 + k) * ow + x0 + l) * 8) : V8() }
                }
                // Columns: 4×4 → 6×4 (A dY); rows: 6×4 → 6×6 (· Aᵀ).
                for l in 0..<4 {
                    let c = a(yv[l], yv[4 + l], yv[8 + l], yv[12 + l])
                    tm[l] = c.0; tm[4 + l] = c.1; tm[8 + l] = c.2; tm[12 + l] = c.3; tm[16 + l] = c.4; tm[20 + l] = c.5
                }
                let out = mp + t * oc + ob * 8
                for i in 0..<6 {
                    let r = a(tm[i * 4], tm[i * 4 + 1], tm[i * 4 + 2], tm[i * 4 + 3])
                    store(r.0, out + (i * 6) * step); store(r.1, out + (i * 6 + 1) * step); store(r.2, out + (i * 6 + 2) * step)
                    store(r.3, out + (i * 6 + 3) * step); store(r.4, out + (i * 6 + 4) * step); store(r.5, out + (i * 6 + 5) * step)
                }
            }
        }
    }

    /// Gᵀ applied to six vectors (stride `s`): the adjoint of `g`.
    @inline(__always) static func gt(_ v: UnsafePointer<V8>, _ s: Int) -> (V8, V8, V8) {
        let (v0, v1, v2, v3, v4, v5) = (v[0], v[s], v[2 * s], v[3 * s], v[4 * s], v[5 * s])
        let quarter: Float = 1 / 4, sixth: Float = 1 / 6, twentyFourth: Float = 1 / 24, twelfth: Float = 1 / 12
        let p12 = v1 + v2, p34 = v3 + v4
        return (v0 * quarter - p12 * sixth + p34 * twentyFourth, (v2 - v1) * sixth + (v3 - v4) * twelfth, (p34 - p12) * sixth + v5)
    }

    /// dW[o][i] = Gᵀ dU[·][i][o] G for the input channels `from ..< to`: the adjoint of `weights`
    /// (dU [36][ic][oc]; dW [oc][ic][3][3], overwritten).
    public static func weightGradient(_ du: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>, inChannels ic: Int, outChannels oc: Int,
                                      from: Int, to: Int) {
        let d = UnsafeMutablePointer<V8>.allocate(capacity: 36)
        let t = UnsafeMutablePointer<V8>.allocate(capacity: 18)
        defer { d.deallocate(); t.deallocate() }
        let step = ic * oc
        for i in from..<to {
            for ob in stride(from: 0, to: oc, by: 8) {
                let src = du + i * oc + ob
                for xi in 0..<36 { d[xi] = load(src + xi * step) }
                // Columns: 6×6 → 3×6 (Gᵀ dU); rows: 3×6 → 3×3 (· G).
                for q in 0..<6 { let c = gt(d + q, 6); t[q] = c.0; t[6 + q] = c.1; t[12 + q] = c.2 }
                for r in 0..<3 {
                    let (w0, w1, w2) = gt(t + r * 6, 1)
                    for l in 0..<8 {
                        let p = dw + ((ob + l) * ic + i) * 9 + r * 3
                        p[0] = w0[l]; p[1] = w1[l]; p[2] = w2[l]
                    }
                }
            }
        }
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
        let mm = UnsafeMutablePointer<V8>.allocate(capacity: 36)
        let tm = UnsafeMutablePointer<V8>.allocate(capacity: 24)
        let outs = UnsafeMutablePointer<V8>.allocate(capacity: 4)
        defer { mm.deallocate(); tm.deallocate(); outs.deallocate() }
        let plane = oh * ow * 8
        let step = g.chunk * oc
        for t in from..<to {
            let (n, y0, x0, rows, cols) = g.outputTile(start + t)
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
