import CDNNL
import Foundation
import TaoKernelsAVX2

/// Winograd's F(4×4, 3×3) convolution for fp32 activations in nChw8c, for processors where oneDNN
/// has none (oneDNN 2.6 has fp32 Winograd for AVX-512 only; on AVX2 its convolutions are all direct).
///
/// The work is split in chunks of output tiles. For each chunk: the input transform (Bᵀ d B of every
/// 6×6 input patch, 8 channels at a time) writes V[ξ][tile][ic] for the 36 positions ξ; oneDNN's
/// batched matmul computes M[ξ] = V[ξ] · U[ξ] (U[ξ][ic][oc] = G g Gᵀ, from the weights once per
/// weight change); the output transform (Aᵀ m A) adds the bias, applies the fused post-ops and writes
/// the 4×4 outputs. A 3×3 stride-1 convolution costs 36 multiply-adds per 4×4 outputs instead of 144,
/// the GEMM runs near the machine's FMA peak, and the transforms are a few percent of it for 64 or
/// more channels.
///
/// Matrices (Lavin & Gray 2016, points 0, ±1, ±2):
///   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
///   G  = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1]
///   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
public final class WinogradConvolution: @unchecked Sendable {
    /// A 3×3 stride-1 convolution's shapes; channels are multiples of 8.
    public struct Geometry: Sendable, Equatable, CustomStringConvertible {
        public var batch, inChannels, outChannels, inHeight, inWidth, outHeight, outWidth, padTop, padLeft: Int
        public init(batch: Int, inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int,
                    outHeight: Int, outWidth: Int, padTop: Int, padLeft: Int) {
            self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
            self.inHeight = inHeight; self.inWidth = inWidth; self.outHeight = outHeight; self.outWidth = outWidth
            self.padTop = padTop; self.padLeft = padLeft
        }
        public var description: String {
            "\(batch)×\(inChannels)×\(inHeight)×\(inWidth) → \(outChannels)×\(outHeight)×\(outWidth)"
        }
    }

    /// An activation fused into the output transform: ReLU with a negative slope (0: plain ReLU).
    public enum Activation: Sendable, Equatable { case none, relu(slope: Float)
        var slope: Float? { if case .relu(let s) = self { return s }; return nil }
    }

    /// What follows the convolution and its bias, in oneDNN's post-op order: `activation`, then
    /// the destination's prior content added when `sum`, then `postActivation`.
    public struct PostOps: Sendable, Equatable {
        public var activation: Activation, sum: Bool, postActivation: Activation
        public init(activation: Activation = .none, sum: Bool = false, postActivation: Activation = .none) {
            self.activation = activation; self.sum = sum; self.postActivation = postActivation
        }
    }

    /// Whether this class computes `geometry` (channels in whole blocks of 8, a 3×3 window that fits).
    public static func supports(_ g: Geometry) -> Bool {
        g.inChannels % 8 == 0 && g.outChannels % 8 == 0 && g.inChannels > 0 && g.outChannels > 0
            && g.outHeight >= 1 && g.outWidth >= 1 && g.padTop >= 0 && g.padLeft >= 0 && g.padTop <= 2 && g.padLeft <= 2
    }

    public let geometry: Geometry
    public let postOps: PostOps
    let tilesH, tilesW, tiles, chunk: Int
    let matmul: Primitive
    /// The transformed weights U [36, ic, oc], kept between `setWeights` calls.
    let u: Memory
    /// Scratch layouts: transformed inputs V [36, chunk, ic] and products M [36, chunk, oc].
    public let scratchV: MemoryDesc, scratchM: MemoryDesc
    private let workers: Int

    /// Whether this processor runs the transforms (compiled for AVX2 with FMA).
    public static let available: Bool = {
        let isa = dnnl_get_effective_cpu_isa()
        return isa.rawValue >= dnnl_cpu_isa_avx2.rawValue && isa != dnnl_cpu_isa_all
    }()

    /// Plans the convolution. Chunks hold at least 4 MB of V and M, and at least half the bytes of U,
    /// so that U is not streamed from memory for every few tiles (measured on an AVX2 EPYC at
    /// 384×1248: 512 channels, 2 MB chunks 1.7× direct convolution, 20 MB chunks 2.2–2.5×).
    public init(_ g: Geometry, postOps: PostOps = PostOps(), chunkBytes: Int? = nil) throws(KernelError) {
        precondition(Self.supports(g), "Winograd F(4×4, 3×3) needs channels in blocks of 8: \(g)")
        geometry = g
        self.postOps = postOps
        tilesH = (g.outHeight + 3) / 4
        tilesW = (g.outWidth + 3) / 4
        tiles = g.batch * tilesH * tilesW
        let perTile = 36 * (g.inChannels + g.outChannels) * 4
        let bytes = chunkBytes ?? max(4 << 20, 36 * g.inChannels * g.outChannels * 4 / 2)
        let c = max(16, min(tiles, bytes / perTile))
        chunk = min(tiles, (c + 15) / 16 * 16)
        scratchV = MemoryDesc([36, chunk, g.inChannels])
        scratchM = MemoryDesc([36, chunk, g.outChannels])
        let umd = MemoryDesc([36, g.inChannels, g.outChannels])
        matmul = try Primitive(Kernels.matmul(src: scratchV, weights: umd, dst: scratchM))
        u = Memory(umd)
        workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Transforms plain weights into U = G g Gᵀ (in Double, rounded once): `w` is [oc, ic, 3, 3], or
    /// with `transposedAndFlipped` the forward convolution's [ic, oc, 3, 3] read as this one's
    /// w'[o][i][a][b] = w[i][o][2 − a][2 − b] (the data gradient of a 3×3 stride-1 convolution is
    /// this convolution of the output gradient, padding 2 − p).
    public func setWeights(_ w: UnsafePointer<Float>, transposedAndFlipped: Bool = false) {
        let (ic, oc) = (geometry.inChannels, geometry.outChannels)
        let (wp, up) = (Unchecked(w), Unchecked(u.floats))
        let parts = workers
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            var k = (Double(0), Double(0), Double(0), Double(0), Double(0), Double(0), Double(0), Double(0), Double(0))
            for i in (ic * part / parts)..<(ic * (part + 1) / parts) {
                for o in 0..<oc {
                    if transposedAndFlipped {
                        let p = wp.value + (i * oc + o) * 9
                        k = (Double(p[8]), Double(p[7]), Double(p[6]), Double(p[5]), Double(p[4]), Double(p[3]), Double(p[2]), Double(p[1]), Double(p[0]))
                    } else {
                        let p = wp.value + (o * ic + i) * 9
                        k = (Double(p[0]), Double(p[1]), Double(p[2]), Double(p[3]), Double(p[4]), Double(p[5]), Double(p[6]), Double(p[7]), Double(p[8]))
                    }
                    // Columns (G g: 3×3 → 6×3), then rows (· Gᵀ: 6×3 → 6×6).
                    let c0 = Self.g(k.0, k.3, k.6), c1 = Self.g(k.1, k.4, k.7), c2 = Self.g(k.2, k.5, k.8)
                    let base = up.value + i * oc + o, step = ic * oc
                    @inline(__always) func row(_ a: Int, _ x: Double, _ y: Double, _ z: Double) {
                        let r = Self.g(x, y, z)
                        base[(a * 6) * step] = Float(r.0); base[(a * 6 + 1) * step] = Float(r.1); base[(a * 6 + 2) * step] = Float(r.2)
                        base[(a * 6 + 3) * step] = Float(r.3); base[(a * 6 + 4) * step] = Float(r.4); base[(a * 6 + 5) * step] = Float(r.5)
                    }
                    row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2)
                    row(3, c0.3, c1.3, c2.3); row(4, c0.4, c1.4, c2.4); row(5, c0.5, c1.5, c2.5)
                }
            }
        }
    }

    /// G applied to three values.
    @inline(__always) private static func g(_ a: Double, _ b: Double, _ c: Double) -> (Double, Double, Double, Double, Double, Double) {
        let s = a + c
        return (a / 4, -(s + b) / 6, -(s - b) / 6, a / 24 + b / 12 + c / 6, a / 24 - b / 12 + c / 6, c)
    }

    /// dst = post-ops(conv(src) + bias); src and dst in nChw8c, bias [oc] or nil; `v` and `m`
    /// are scratch memories of layouts `scratchV` and `scratchM`.
    public func run(src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, v: Memory, m: Memory) {
        let args = [dnnl_exec_arg_t(arg: TAO_ARG_SRC, memory: v.handle), dnnl_exec_arg_t(arg: TAO_ARG_WEIGHTS, memory: u.handle),
                    dnnl_exec_arg_t(arg: TAO_ARG_DST, memory: m.handle)]
        let (vp, mp) = (v.floats, m.floats)
        let layout = WinogradTransforms.Layout(inChannels: geometry.inChannels, outChannels: geometry.outChannels,
                                               inHeight: geometry.inHeight, inWidth: geometry.inWidth,
                                               outHeight: geometry.outHeight, outWidth: geometry.outWidth,
                                               padTop: geometry.padTop, padLeft: geometry.padLeft,
                                               tilesH: tilesH, tilesW: tilesW, chunk: chunk)
        let ops = WinogradTransforms.PostOps(activationSlope: postOps.activation.slope, sum: postOps.sum,
                                             postActivationSlope: postOps.postActivation.slope)
        for start in stride(from: 0, to: tiles, by: chunk) {
            let count = min(chunk, tiles - start)
            parallel(count) { a, b in WinogradTransforms.input(src, vp, layout, start: start, from: a, to: b) }
            let s = args.withUnsafeBufferPointer { dnnl_primitive_execute(matmul.handle, DNNL.shared.stream, 3, $0.baseAddress) }
            precondition(s == dnnl_success, "Winograd matmul failed (\(s.rawValue))")
            parallel(count) { a, b in WinogradTransforms.output(mp, dst, bias, layout, ops, start: start, from: a, to: b) }
        }
    }

    /// `run` with scratch of its own (for tests and benchmarks).
    public func run(src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?) {
        if ownedScratch == nil { ownedScratch = (Memory(scratchV), Memory(scratchM)) }
        run(src: src, dst: dst, bias: bias, v: ownedScratch!.0, m: ownedScratch!.1)
    }
    private var ownedScratch: (Memory, Memory)?

    /// `body(from, to)` over `0..<count` split across the cores.
    private func parallel(_ count: Int, _ body: (Int, Int) -> Void) {
        let parts = min(workers, max(1, count / 8))
        if parts == 1 { body(0, count); return }
        withoutActuallyEscaping(body) { body in
            let f = Unchecked(body)
            DispatchQueue.concurrentPerform(iterations: parts) { p in f.value(count * p / parts, count * (p + 1) / parts) }
        }
    }
}

/// A value handed to worker threads that only touch disjoint parts of what it points at.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
