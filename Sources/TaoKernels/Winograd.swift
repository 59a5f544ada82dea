import CDNNL
import Foundation
import TaoTensor
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
        /// 4×4 output tiles a row and a column, and in the whole batch.
        public var tilesH: Int { (outHeight + 3) / 4 }
        public var tilesW: Int { (outWidth + 3) / 4 }
        public var tiles: Int { batch * tilesH * tilesW }
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
    let chunk: Int
    var tiles: Int { geometry.tiles }
    let matmul: Primitive
    /// The transformed weights U [36, ic, oc], kept between `setWeights` calls.
    let u: Memory
    /// Scratch layouts: transformed inputs V [36, chunk, ic] and products M [36, chunk, oc].
    public let scratchV: MemoryDesc, scratchM: MemoryDesc

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
        let tiles = g.tiles
        let perTile = 36 * (g.inChannels + g.outChannels) * 4
        let bytes = chunkBytes ?? max(4 << 20, 36 * g.inChannels * g.outChannels * 4 / 2)
        let c = max(16, min(tiles, bytes / perTile))
        chunk = min(tiles, (c + 15) / 16 * 16)
        scratchV = MemoryDesc([36, chunk, g.inChannels])
        scratchM = MemoryDesc([36, chunk, g.outChannels])
        let umd = MemoryDesc([36, g.inChannels, g.outChannels])
        matmul = try Primitive(Kernels.matmul(src: scratchV, weights: umd, dst: scratchM))
        u = Memory(umd)
    }

    /// Transforms plain weights into U = G g Gᵀ (SIMD float, within a few ulps of the exact
    /// transform): `w` is [oc, ic, 3, 3], or
    /// with `transposedAndFlipped` the forward convolution's [ic, oc, 3, 3] read as this one's
    /// w'[o][i][a][b] = w[i][o][2 − a][2 − b] (the data gradient of a 3×3 stride-1 convolution is
    /// this convolution of the output gradient, padding 2 − p). Twice a training step, so it must
    /// be cheap: 23 ns of CPU a 3×3 kernel (6 ms for 512×512 channels), against 123 ns in the
    /// scalar Double version it replaced (profiles of DetectNet_v2 training on an AVX2 EPYC).
    public func setWeights(_ w: UnsafePointer<Float>, transposedAndFlipped: Bool = false) {
        let (ic, oc) = (geometry.inChannels, geometry.outChannels)
        let u = u.floats
        forEachSlice(of: ic, parts: ic / 8) { s in
            WinogradTransforms.weights(w, u, inChannels: ic, outChannels: oc, transposedAndFlipped: transposedAndFlipped,
                                       from: s.lowerBound, to: s.upperBound)
        }
    }

    /// dst = post-ops(conv(src) + bias); src and dst in nChw8c, bias [oc] or nil; `v` and `m`
    /// are scratch memories of layouts `scratchV` and `scratchM`.
    public func run(src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, v: Memory, m: Memory) {
        let args = [dnnl_exec_arg_t(arg: TAO_ARG_SRC, memory: v.handle), dnnl_exec_arg_t(arg: TAO_ARG_WEIGHTS, memory: u.handle),
                    dnnl_exec_arg_t(arg: TAO_ARG_DST, memory: m.handle)]
        let (vp, mp) = (v.floats, m.floats)
        let layout = self.layout
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

    /// Plans `weightGradient` (its matmul: Vᵀ, i.e. V's [36][chunk][ic] read as [36][ic][chunk],
    /// times dM, summed into dU chunk after chunk).
    public func planWeightGradient() throws(KernelError) {
        guard gradientMatmul == nil else { return }
        let attr = Attributes()
        try attr.setPostOps([.sum(scale: 1)])
        let vt = MemoryDesc(dims: [36, geometry.inChannels, chunk], strides: [chunk * geometry.inChannels, 1, geometry.inChannels])
        var d = dnnl_matmul_desc_t()
        var s = vt.raw, w = scratchM.raw, o = gradientScratch.raw
        try check(dnnl_matmul_desc_init(&d, &s, &w, nil, &o), "matmul desc")
        gradientMatmul = try Primitive(PrimitiveDesc.create(&d, attr: attr, hint: nil, "Winograd weight-gradient matmul"))
        transposedV = vt
    }

    /// The weight gradient dw [oc, ic, 3, 3] (overwritten) of this convolution (without bias) for
    /// `src` and the output gradient `diffDst` (both nChw8c), by the adjoint transforms:
    /// dU[ξ] = Σ over tiles of V[ξ]ᵀ dM[ξ] (oneDNN's batched matmul, accumulating chunk by chunk),
    /// with V = Bᵀ d B as in `run` and dM = A dY Aᵀ, then dw = Gᵀ dU G. `v`, `m` are scratch as in
    /// `run`; `du` has the layout `gradientScratch`. Needs `planWeightGradient` first.
    public func weightGradient(src: UnsafePointer<Float>, diffDst: UnsafePointer<Float>, diffWeights: UnsafeMutablePointer<Float>,
                               v: Memory, m: Memory, du: Memory) {
        precondition(gradientMatmul != nil, "planWeightGradient() first")
        let (vp, mp, dup) = (v.floats, m.floats, du.floats)
        let vt = Memory(transposedV!, wrapping: UnsafeMutableRawPointer(vp))
        let args = [dnnl_exec_arg_t(arg: TAO_ARG_SRC, memory: vt.handle), dnnl_exec_arg_t(arg: TAO_ARG_WEIGHTS, memory: m.handle),
                    dnnl_exec_arg_t(arg: TAO_ARG_DST, memory: du.handle)]
        let layout = self.layout
        let (ic, oc) = (geometry.inChannels, geometry.outChannels)
        dup.update(repeating: 0, count: 36 * ic * oc)
        for start in stride(from: 0, to: tiles, by: chunk) {
            let count = min(chunk, tiles - start)
            if count < chunk {
                // The rows past the last tile hold an earlier chunk's values: zero them, or they count twice.
                for xi in 0..<36 {
                    (vp + (xi * chunk + count) * ic).update(repeating: 0, count: (chunk - count) * ic)
                    (mp + (xi * chunk + count) * oc).update(repeating: 0, count: (chunk - count) * oc)
                }
            }
            parallel(count) { a, b in
                WinogradTransforms.input(src, vp, layout, start: start, from: a, to: b)
                WinogradTransforms.outputGradient(diffDst, mp, layout, start: start, from: a, to: b)
            }
            let s = args.withUnsafeBufferPointer { dnnl_primitive_execute(gradientMatmul!.handle, DNNL.shared.stream, 3, $0.baseAddress) }
            precondition(s == dnnl_success, "Winograd weight-gradient matmul failed (\(s.rawValue))")
        }
        forEachSlice(of: ic, parts: ic / 8) { s in
            WinogradTransforms.weightGradient(dup, diffWeights, inChannels: ic, outChannels: oc, from: s.lowerBound, to: s.upperBound)
        }
    }
    private var gradientMatmul: Primitive?
    private var transposedV: MemoryDesc?
    /// The layout of `weightGradient`'s dU scratch: [36, ic, oc].
    public var gradientScratch: MemoryDesc { MemoryDesc([36, geometry.inChannels, geometry.outChannels]) }

    var layout: WinogradTransforms.Layout {
        WinogradTransforms.Layout(inChannels: geometry.inChannels, outChannels: geometry.outChannels,
                                  inHeight: geometry.inHeight, inWidth: geometry.inWidth,
                                  outHeight: geometry.outHeight, outWidth: geometry.outWidth,
                                  padTop: geometry.padTop, padLeft: geometry.padLeft,
                                  tilesH: geometry.tilesH, tilesW: geometry.tilesW, chunk: chunk)
    }

    /// `run` with scratch of its own (for tests and benchmarks).
    public func run(src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?) {
        if ownedScratch == nil { ownedScratch = (Memory(scratchV), Memory(scratchM)) }
        run(src: src, dst: dst, bias: bias, v: ownedScratch!.0, m: ownedScratch!.1)
    }
    private var ownedScratch: (Memory, Memory)?

    /// `body(from, to)` over `0..<count` split across the cores.
    private func parallel(_ count: Int, _ body: (Int, Int) -> Void) {
        forEachSlice(of: count, parts: count / 8) { body($0.lowerBound, $0.upperBound) }
    }
}
