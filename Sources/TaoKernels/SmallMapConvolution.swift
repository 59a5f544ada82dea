import CDNNL
import Foundation
import TaoTensor

/// A dense convolution on feature maps of a few pixels (2×2 and smaller), as one matrix product.
///
/// On a 2×2 map a 3×3 kernel with padding 1 touches each input pixel from each output pixel through
/// exactly one tap, so the convolution is a dense layer: with W'[(o, oy, ox), (i, iy, ix)] =
/// w[o][i][iy − oy·s + pt][ix − ox·s + pl] (zero where that tap is outside the kernel), the output is
/// x·W'ᵀ over the flattened maps (batch × C·H·W times C·H·W × O·OH·OW), the input gradient dy·W'
/// and W''s gradient dyᵀ·x, whose entries sum back onto the taps. All three are oneDNN matmuls, which run
/// near the processor's peak, where oneDNN's own convolutions on 2×2 maps run at 12–24% of it
/// (ResNet-10's last stage on Fashion-MNIST, batch 128, on an AVX2 EPYC). Activations are plain NCHW.
public final class SmallMapConvolution: @unchecked Sendable {
    public struct Geometry: Sendable, Equatable {
        public var batch, inChannels, outChannels, inHeight, inWidth, outHeight, outWidth: Int
        public var kernelHeight, kernelWidth, strideHeight, strideWidth, padTop, padLeft: Int
        public init(batch: Int, inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int,
                    kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int, padTop: Int, padLeft: Int) {
            self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
            self.inHeight = inHeight; self.inWidth = inWidth; self.outHeight = outHeight; self.outWidth = outWidth
            self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth; self.strideHeight = strideHeight
            self.strideWidth = strideWidth; self.padTop = padTop; self.padLeft = padLeft
        }
    }

    public let geometry: Geometry
    /// C·H·W and O·OH·OW: the sides of W'.
    let features, outputs: Int
    /// (input pixel, output pixel, tap) for every tap that lands inside the input.
    let pairs: [(input: Int, output: Int, tap: Int)]
    /// W' [outputs, features] (each output pixel's row over the input pixels), kept between `setWeights` calls.
    let wt: Memory
    let forward, backwardData, backwardWeights: Primitive
    let srcMD, dstMD, transposedWeights, transposedDst: MemoryDesc
    /// The layout of `weightGradient`'s scratch (W''s gradient).
    public let gradientScratch: MemoryDesc

    public init(_ g: Geometry) throws(KernelError) {
        geometry = g
        features = g.inChannels * g.inHeight * g.inWidth
        outputs = g.outChannels * g.outHeight * g.outWidth
        var p: [(Int, Int, Int)] = []
        for oy in 0..<g.outHeight { for ox in 0..<g.outWidth { for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
            let iy = oy * g.strideHeight - g.padTop + ky, ix = ox * g.strideWidth - g.padLeft + kx
            guard iy >= 0, iy < g.inHeight, ix >= 0, ix < g.inWidth else { continue }
            p.append((iy * g.inWidth + ix, oy * g.outWidth + ox, ky * g.kernelWidth + kx))
        } } } }
        pairs = p
        let n = g.batch
        srcMD = MemoryDesc([n, features]); dstMD = MemoryDesc([n, outputs])
        gradientScratch = MemoryDesc([outputs, features])
        transposedWeights = MemoryDesc(dims: [features, outputs], strides: [1, features])
        transposedDst = MemoryDesc(dims: [outputs, n], strides: [1, outputs])
        wt = Memory(gradientScratch)
        forward = try Primitive(Kernels.matmul(src: srcMD, weights: transposedWeights, dst: dstMD))
        backwardData = try Primitive(Kernels.matmul(src: dstMD, weights: gradientScratch, dst: srcMD))
        backwardWeights = try Primitive(Kernels.matmul(src: transposedDst, weights: srcMD, dst: gradientScratch))
    }

    /// W' from the plain weights [O, I, KH, KW].
    public func setWeights(_ w: UnsafePointer<Float>) {
        let (ic, oc, taps) = (geometry.inChannels, geometry.outChannels, geometry.kernelHeight * geometry.kernelWidth)
        let (hw, ohw, pairs) = (geometry.inHeight * geometry.inWidth, geometry.outHeight * geometry.outWidth, pairs)
        let wt = wt.floats
        // Every (input pixel, output pixel) reached by a tap: then every entry of W' is written.
        let (full, features) = (pairs.count == hw * ohw, features)
        forEachSlice(of: oc) { slice in
            for o in slice {
                if !full { (wt + o * ohw * features).update(repeating: 0, count: ohw * features) }
                let src = w + o * ic * taps
                for (pin, pout, tap) in pairs {
                    let row = wt + (o * ohw + pout) * features + pin
                    for i in 0..<ic { row[i * hw] = src[i * taps + tap] }
                }
            }
        }
    }

    /// dst [N, O, OH, OW] = conv(src [N, C, H, W]).
    public func run(src: UnsafeMutablePointer<Float>, dst: UnsafeMutablePointer<Float>) {
        execute(forward, [(TAO_ARG_SRC, srcMD, src), (TAO_ARG_WEIGHTS, transposedWeights, wt.floats), (TAO_ARG_DST, dstMD, dst)])
    }

    /// diffSrc (overwritten) = the input gradient for diffDst.
    public func dataGradient(diffDst: UnsafeMutablePointer<Float>, diffSrc: UnsafeMutablePointer<Float>) {
        execute(backwardData, [(TAO_ARG_SRC, dstMD, diffDst), (TAO_ARG_WEIGHTS, gradientScratch, wt.floats), (TAO_ARG_DST, srcMD, diffSrc)])
    }

    /// diffWeights [O, I, KH, KW] (overwritten) for src and diffDst; `scratch` has the layout `gradientScratch`.
    public func weightGradient(src: UnsafeMutablePointer<Float>, diffDst: UnsafeMutablePointer<Float>,
                               diffWeights: UnsafeMutablePointer<Float>, scratch: Memory) {
        let dwt = scratch.floats
        execute(backwardWeights, [(TAO_ARG_SRC, transposedDst, diffDst), (TAO_ARG_WEIGHTS, srcMD, src), (TAO_ARG_DST, gradientScratch, dwt)])
        let (ic, oc, taps) = (geometry.inChannels, geometry.outChannels, geometry.kernelHeight * geometry.kernelWidth)
        let (hw, ohw, features, pairs) = (geometry.inHeight * geometry.inWidth, geometry.outHeight * geometry.outWidth, features, pairs)
        forEachSlice(of: oc) { slice in
            for o in slice {
                let out = diffWeights + o * ic * taps
                out.update(repeating: 0, count: ic * taps)
                for (pin, pout, tap) in pairs {
                    let row = dwt + (o * ohw + pout) * features + pin
                    for i in 0..<ic { out[i * taps + tap] += row[i * hw] }
                }
            }
        }
    }

    /// Runs a matmul on caller-owned buffers, each seen through the descriptor given with it.
    private func execute(_ p: Primitive, _ args: [(Int32, MemoryDesc, UnsafeMutablePointer<Float>)]) {
        let mems = args.map { Memory($0.1, wrapping: UnsafeMutableRawPointer($0.2)) }
        let raw = zip(args, mems).map { dnnl_exec_arg_t(arg: $0.0.0, memory: $0.1.handle) }
        let s = raw.withUnsafeBufferPointer { dnnl_primitive_execute(p.handle, DNNL.shared.stream, Int32($0.count), $0.baseAddress) }
        precondition(s == dnnl_success, "small-map convolution matmul failed (\(s.rawValue))")
        withExtendedLifetime(mems) {}
    }
}
