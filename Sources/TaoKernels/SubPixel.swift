import TaoTensor

/// A strided transposed convolution as one stride-1 convolution and a pixel shuffle (inference).
///
/// With kernel K = S·T along an axis (stride S, T taps a phase), the output pixels o = S·m + r of one
/// phase r read T consecutive inputs: out[S·m + r] = Σⱼ in[m + q_r − (T−1) + j] · w[t_r + S·(T−1−j)],
/// with q_r = ⌊(r + p)/S⌋, t_r = (r + p) mod S for padding p. Every kernel tap belongs to exactly one
/// phase, so the S² phases of a 2-D transposed convolution are one ordinary T×T convolution with
/// S²·O output channels (the kernel taps permuted, no zeros) over the input padded by `padBefore` /
/// `padAfter`; phase r's output starts `offset[r]` rows into it. `gather` interleaves the phases into
/// the full output. The convolution does the transposed convolution's multiply-adds (plus a row and
/// a column of border), as a dense convolution with S²-times the output channels: oneDNN runs it
/// near its convolution speed where its own deconvolution kernels of 4×4 at stride 2 ran at 42–65%
/// of the processor's peak (UNet's decoders, AVX2 EPYC).
public struct SubPixelDeconvolution: Sendable, Equatable {
    /// One spatial axis of the decomposition.
    public struct Axis: Sendable, Equatable {
        public let stride, taps, padBefore, padAfter, convOutput: Int
        /// Per phase r: first row of the phase's outputs in the convolution's output, their count,
        /// and the kernel index of tap j (j = 0..<taps).
        public let offset, count: [Int]
        public let kernelIndex: [[Int]]

        /// nil unless the kernel is a multiple of the stride (> 1) and the padding non-negative.
        init?(input: Int, output: Int, kernel: Int, stride s: Int, pad p: Int) {
            guard s > 1, kernel % s == 0, p >= 0, output > 0 else { return nil }
            let t = kernel / s
            let q = (0..<s).map { ($0 + p) / s }
            let before = max(0, t - 1 - q[0])
            let offset = q.map { $0 - (t - 1) + before }
            let count = (0..<s).map { $0 < output ? (output - $0 + s - 1) / s : 0 }
            let need = (0..<s).map { offset[$0] + count[$0] }.max()!
            self.offset = offset; self.count = count
            let natural = input + before - t + 1
            stride = s; taps = t; padBefore = before; padAfter = max(0, need - natural)
            convOutput = natural + padAfter
            kernelIndex = (0..<s).map { r in (0..<t).map { j in (r + p) % s + s * (t - 1 - j) } }
        }
    }

    public let batch, inChannels, outChannels, outHeight, outWidth: Int
    public let h, w: Axis
    public var phases: Int { h.stride * w.stride }
    /// The convolution: weights [phases·O, I, taps_h, taps_w], output [N, phases·O, convOutput_h, convOutput_w].
    public var convWeightDims: [Int] { [phases * outChannels, inChannels, h.taps, w.taps] }
    public var convOutputDims: [Int] { [batch, phases * outChannels, h.convOutput, w.convOutput] }
    public var outputDims: [Int] { [batch, outChannels, outHeight, outWidth] }

    /// The decomposition of a transposed convolution from input [N, I, H, W] to output [N, O, OH, OW]
    /// with kernel [KH, KW], stride and top/left padding; nil where it does not apply (dilation, a
    /// kernel not a multiple of its stride, stride 1).
    public init?(input: [Int], output: [Int], kernel: [Int], stride: [Int], dilation: [Int], padTop: Int, padLeft: Int) {
        guard dilation == [1, 1], input.count == 4, output.count == 4,
              let h = Axis(input: input[2], output: output[2], kernel: kernel[0], stride: stride[0], pad: padTop),
              let w = Axis(input: input[3], output: output[3], kernel: kernel[1], stride: stride[1], pad: padLeft) else { return nil }
        batch = input[0]; inChannels = input[1]; outChannels = output[1]; outHeight = output[2]; outWidth = output[3]
        self.h = h; self.w = w
    }

    /// The convolution's weights from the transposed convolution's ([I, O, KH, KW], plain), each
    /// output channel o scaled by `scale[o]` when given (a folded batch norm).
    public func convWeights(from src: UnsafePointer<Float>, scale: UnsafePointer<Float>?, into dst: UnsafeMutablePointer<Float>) {
        forEachTap { conv, deconv, oc in dst[conv] = src[deconv] * (scale?[oc] ?? 1) }
    }

    /// The convolution's bias: the transposed convolution's ([O]) once for every phase.
    public func convBias(from src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<phases { (dst + p * outChannels).update(from: src, count: outChannels) }
    }

    /// The convolution's weight gradient back in the transposed convolution's layout (the inverse
    /// permutation of `convWeights` without a scale).
    public func deconvWeights(from src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        forEachTap { conv, deconv, _ in dst[deconv] = src[conv] }
    }

    /// Every weight's index in the convolution ([phases·O, I, T, T]) and in the transposed
    /// convolution ([I, O, KH, KW]), with its output channel: the permutation between the two.
    private func forEachTap(_ body: (_ conv: Int, _ deconv: Int, _ outChannel: Int) -> Void) {
        let (o, i, th, tw) = (outChannels, inChannels, h.taps, w.taps)
        let (kh, kw) = (h.stride * th, w.stride * tw)
        for ry in 0..<h.stride { for rx in 0..<w.stride {
            let phase = ry * w.stride + rx
            for oc in 0..<o { for ic in 0..<i { for jy in 0..<th { for jx in 0..<tw {
                body((((phase * o + oc) * i + ic) * th + jy) * tw + jx,
                     (ic * o + oc) * kh * kw + h.kernelIndex[ry][jy] * kw + w.kernelIndex[rx][jx], oc)
            } } } }
        } }
    }

    /// Interleaves the phases: dst[n, o, S·m + ry, S·l + rx] = src[n, phase·O + o, m + offset_ry, l + offset_rx].
    /// Both plain (NCHW, `block` 1) or both in channel blocks of `block` (nChw8c, nChw16c; O a multiple of it).
    public func gather(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, block: Int) {
        shuffle(conv: UnsafeMutablePointer(mutating: src), out: dst, block: block, toOutput: true)
    }

    /// The gradient of `gather`: the output gradient's pixels into the convolution's output
    /// gradient, zero where no output pixel reads the convolution.
    public func scatter(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, block: Int) {
        let total = convOutputDims.reduce(1, *)
        forEachSlice(of: total, parts: max(1, total / 65536)) { r in (dst + r.lowerBound).update(repeating: 0, count: r.count) }
        shuffle(conv: dst, out: UnsafeMutablePointer(mutating: src), block: block, toOutput: false)
    }

    /// Copies every output pixel from (or to) its place in the convolution's output, a row of
    /// output per task: `block` floats a pixel.
    private func shuffle(conv: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, block v: Int, toOutput: Bool) {
        precondition([1, 8, 16].contains(v) && outChannels % v == 0, "channel blocks of \(v) for \(outChannels) channels")
        let blocks = outChannels / v, totalBlocks = phases * blocks
        let (ch, cw, oh, ow, sw) = (h.convOutput, w.convOutput, outHeight, outWidth, w.stride)
        let rows = batch * blocks * oh
        forEachSlice(of: rows, parts: max(1, rows / 16)) { range in
            for row in range {
                let y = row % oh, nb = row / oh, b = nb % blocks, n = nb / blocks
                let ry = y % h.stride, m = y / h.stride
                let outRow = out + (nb * oh + y) * ow * v
                for rx in 0..<sw {
                    let phase = ry * sw + rx
                    let convRow = conv + (((n * totalBlocks + phase * blocks + b) * ch + m + h.offset[ry]) * cw + w.offset[rx]) * v
                    let o = outRow + rx * v, count = w.count[rx]
                    switch (v, toOutput) {
                    case (16, true): Self.copy(SIMD16<Float>.self, from: convRow, 16, to: o, sw * 16, count)
                    case (16, false): Self.copy(SIMD16<Float>.self, from: o, sw * 16, to: convRow, 16, count)
                    case (8, true): Self.copy(SIMD8<Float>.self, from: convRow, 8, to: o, sw * 8, count)
                    case (8, false): Self.copy(SIMD8<Float>.self, from: o, sw * 8, to: convRow, 8, count)
                    case (_, true): for l in 0..<count { o[l * sw] = convRow[l] }
                    case (_, false): for l in 0..<count { convRow[l] = o[l * sw] }
                    }
                }
            }
        }
    }

    /// `count` vectors of `V` from `src` (every `srcStride` floats) to `dst` (every `dstStride`).
    @inline(__always)
    private static func copy<V: SIMD>(_: V.Type, from src: UnsafeMutablePointer<Float>, _ srcStride: Int,
                                      to dst: UnsafeMutablePointer<Float>, _ dstStride: Int, _ count: Int) where V.Scalar == Float {
        for l in 0..<count {
            UnsafeMutableRawPointer(dst + l * dstStride).storeBytes(of: UnsafeRawPointer(src + l * srcStride).loadUnaligned(as: V.self), as: V.self)
        }
    }
}
