import XCTest
import Foundation
import TaoKernels
import TaoTensor

/// Our own Winograd F(4×4, 3×3) kernel against a float64 direct convolution.
final class WinogradKernelTests: XCTestCase {
    /// nChw8c index of (n, c, y, x).
    static func blocked(_ n: Int, _ c: Int, _ y: Int, _ x: Int, channels: Int, h: Int, w: Int) -> Int {
        (((n * (channels / 8) + c / 8) * h + y) * w + x) * 8 + c % 8
    }

    func testMatchesFloat64DirectConvolution() throws {
        var rng = SplitMix64(seed: 3)
        let cases: [(WinogradConvolution.Geometry, WinogradConvolution.PostOps)] = [
            (.init(batch: 2, inChannels: 16, outChannels: 24, inHeight: 9, inWidth: 13, outHeight: 9, outWidth: 13, padTop: 1, padLeft: 1), .init()),
            (.init(batch: 1, inChannels: 8, outChannels: 8, inHeight: 7, inWidth: 6, outHeight: 5, outWidth: 4, padTop: 0, padLeft: 0),
             .init(activation: .relu(slope: 0))),
            (.init(batch: 3, inChannels: 32, outChannels: 16, inHeight: 12, inWidth: 12, outHeight: 12, outWidth: 12, padTop: 1, padLeft: 1),
             .init(activation: .none, sum: true, postActivation: .relu(slope: 0))),
            (.init(batch: 1, inChannels: 24, outChannels: 8, inHeight: 5, inWidth: 11, outHeight: 6, outWidth: 12, padTop: 2, padLeft: 1),
             .init(activation: .relu(slope: 0.1), sum: true)),
        ]
        for (g, ops) in cases {
            let w = Tensor.randomNormal([g.outChannels, g.inChannels, 3, 3], std: 0.3, rng: &rng)
            let bias = Tensor.randomNormal([g.outChannels], rng: &rng)
            let x = Tensor.randomNormal([g.batch * g.inChannels * g.inHeight * g.inWidth], rng: &rng)
            let prior = Tensor.randomNormal([g.batch * g.outChannels * g.outHeight * g.outWidth], rng: &rng)
            let conv = try WinogradConvolution(g, postOps: ops, chunkBytes: 4096)
            w.withUnsafeBufferPointer { conv.setWeights($0.baseAddress!) }
            var dst = prior.scalars
            x.withUnsafeBufferPointer { xp in bias.withUnsafeBufferPointer { bp in
                dst.withUnsafeMutableBufferPointer { conv.run(src: xp.baseAddress!, dst: $0.baseAddress!, bias: bp.baseAddress!) }
            } }
            func act(_ a: WinogradConvolution.Activation, _ v: Double) -> Double {
                if case .relu(let s) = a { return v < 0 ? v * Double(s) : v }
                return v
            }
            var worst = 0.0
            for n in 0..<g.batch { for o in 0..<g.outChannels { for y in 0..<g.outHeight { for xx in 0..<g.outWidth {
                var s = Double(bias[flat: o]), mag = abs(s)
                for i in 0..<g.inChannels { for a in 0..<3 { for b in 0..<3 {
                    let iy = y + a - g.padTop, ix = xx + b - g.padLeft
                    guard iy >= 0, iy < g.inHeight, ix >= 0, ix < g.inWidth else { continue }
                    let p = Double(w[flat: ((o * g.inChannels + i) * 3 + a) * 3 + b]) * Double(x[flat: Self.blocked(n, i, iy, ix, channels: g.inChannels, h: g.inHeight, w: g.inWidth)])
                    s += p; mag += abs(p)
                } } }
                let k = Self.blocked(n, o, y, xx, channels: g.outChannels, h: g.outHeight, w: g.outWidth)
                var ref = act(ops.activation, s)
                if ops.sum { ref += Double(prior[flat: k]) }
                ref = act(ops.postActivation, ref)
                // Error relative to the sum of magnitudes (the scale of fp32 rounding in any order).
                worst = max(worst, abs(Double(dst[k]) - ref) / max(mag, 1))
            } } } }
            XCTAssertLessThan(worst, 2e-5, "\(g) \(ops)")
        }
    }

    /// The weight gradient by the adjoint transforms against a float64 direct computation,
    /// dw[o][i][a][b] = Σ dY[n][o][y][x]·X[n][i][y + a − pt][x + b − pl]: padding 1, 0 and 2, outputs
    /// that end inside a tile (clipped), several chunks with a partial last one, and a second call on
    /// the same scratch (nothing from the first may remain).
    func testWeightGradientMatchesFloat64() throws {
        guard WinogradConvolution.available else { return }
        var rng = SplitMix64(seed: 7)
        let cases: [WinogradConvolution.Geometry] = [
            .init(batch: 2, inChannels: 16, outChannels: 24, inHeight: 9, inWidth: 13, outHeight: 9, outWidth: 13, padTop: 1, padLeft: 1),
            .init(batch: 3, inChannels: 8, outChannels: 16, inHeight: 7, inWidth: 6, outHeight: 5, outWidth: 4, padTop: 0, padLeft: 0),
            .init(batch: 1, inChannels: 24, outChannels: 8, inHeight: 5, inWidth: 11, outHeight: 7, outWidth: 13, padTop: 2, padLeft: 2),
        ]
        for g in cases {
            let conv = try WinogradConvolution(g, chunkBytes: 4096)
            try conv.planWeightGradient()
            let (v, m, du) = (Memory(conv.scratchV), Memory(conv.scratchM), Memory(conv.gradientScratch))
            for round in 0..<2 {
                let x = Tensor.randomNormal([g.batch * g.inChannels * g.inHeight * g.inWidth], rng: &rng)
                let dy = Tensor.randomNormal([g.batch * g.outChannels * g.outHeight * g.outWidth], rng: &rng)
                var dw = [Float](repeating: .nan, count: g.outChannels * g.inChannels * 9)
                x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { yp in dw.withUnsafeMutableBufferPointer {
                    conv.weightGradient(src: xp.baseAddress!, diffDst: yp.baseAddress!, diffWeights: $0.baseAddress!, v: v, m: m, du: du)
                } } }
                var worst = 0.0
                for o in 0..<g.outChannels { for i in 0..<g.inChannels { for a in 0..<3 { for b in 0..<3 {
                    var s = 0.0, mag = 0.0
                    for n in 0..<g.batch { for y in 0..<g.outHeight { for xx in 0..<g.outWidth {
                        let iy = y + a - g.padTop, ix = xx + b - g.padLeft
                        guard iy >= 0, iy < g.inHeight, ix >= 0, ix < g.inWidth else { continue }
                        let p = Double(dy[flat: Self.blocked(n, o, y, xx, channels: g.outChannels, h: g.outHeight, w: g.outWidth)])
                            * Double(x[flat: Self.blocked(n, i, iy, ix, channels: g.inChannels, h: g.inHeight, w: g.inWidth)])
                        s += p; mag += abs(p)
                    } } }
                    worst = max(worst, abs(Double(dw[((o * g.inChannels + i) * 3 + a) * 3 + b]) - s) / max(mag, 1))
                } } } }
                XCTAssertLessThan(worst, 2e-5, "\(g) round \(round)")
            }
        }
    }
}
