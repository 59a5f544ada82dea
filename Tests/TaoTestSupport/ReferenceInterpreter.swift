import Foundation
import TaoGraph

/// A dense Double tensor for the reference: NCHW with the batch axis.
public struct RefTensor {
    public var shape: [Int]
    public var data: [Double]
    public init(_ shape: [Int], _ data: [Double]) { self.shape = shape; self.data = data }
    init(zeros shape: [Int]) { self.shape = shape; data = Array(repeating: 0, count: shape.reduce(1, *)) }
    public init(_ t: Tensor) { shape = t.shape.dims; data = t.scalars.map(Double.init) }
    public var count: Int { data.count }
    func index(_ i: [Int]) -> Int { var k = 0; for (d, x) in zip(shape, i) { k = k * d + x }; return k }
    subscript(_ i: Int...) -> Double {
        get { data[index(i)] }
        set { data[index(i)] = newValue }
    }
}

/// Slow, obvious implementations of every op, in Double, straight from the definitions.
/// The oneDNN runtime is checked against these for values, and against their finite differences for
/// gradients; exported models are checked against them where fp32 results may differ.
public enum Reference {
    /// `frozenBatchNorm`: batch norms that use their running statistics even in training.
    public static func run(_ g: Graph, inputs: [RefTensor], params: [RefTensor], training: Bool, frozenBatchNorm: Set<String> = []) -> [RefTensor] {
        var vals = [RefTensor?](repeating: nil, count: g.valueCount)
        for (i, v) in g.inputs.enumerated() { vals[v.index] = inputs[i] }
        for i in 0..<params.count { vals[g.parameterValue(i).index] = params[i] }
        for n in g.nodes {
            vals[n.output.index] = apply(n.op, n.inputs.map { vals[$0.index]! }, training: training && !frozenBatchNorm.contains(n.name))
        }
        return g.outputs.map { vals[$0.index]! }
    }

    static func apply(_ op: Op, _ x: [RefTensor], training: Bool) -> RefTensor {
        switch op {
        case .conv2d(let c): return conv(x[0], x[1], c.hasBias ? x[2] : nil, c)
        case .convTranspose2d(let c): return convTranspose(x[0], x[1], c.hasBias ? x[2] : nil, c)
        case .batchNorm(let b): return batchNorm(x, eps: Double(b.epsilon), training: training)
        case .activation(let a): return RefTensor(x[0].shape, x[0].data.map { act(a, $0) })
        case .pool2d(let p): return pool(x[0], p)
        case .globalAveragePool:
            let (n, c, h, w) = (x[0].shape[0], x[0].shape[1], x[0].shape[2], x[0].shape[3])
            var y = RefTensor(zeros: [n, c])
            for a in 0..<n { for k in 0..<c { var s = 0.0; for i in 0..<h { for j in 0..<w { s += x[0][a, k, i, j] } }; y[a, k] = s / Double(h * w) } }
            return y
        case .dense(let d):
            let (n, f) = (x[0].shape[0], x[0].shape[1])
            var y = RefTensor(zeros: [n, d.outFeatures])
            for a in 0..<n { for o in 0..<d.outFeatures {
                var s = d.hasBias ? x[2].data[o] : 0
                for i in 0..<f { s += x[0][a, i] * x[1][o, i] }
                y[a, o] = s
            } }
            return y
        case .add: return broadcast(x[0], x[1], +)
        case .compare(let c): return broadcast(x[0], x[1]) { c.holds($0, $1) ? 1 : 0 }
        case .mul: return broadcast(x[0], x[1], *)
        case .concat(let axis): return concat(x, axis: axis)
        case .slice(let s): return slice(x[0], s)
        case .transpose(let perm): return transpose(x[0], perm)
        case .reshape(let s): return RefTensor([x[0].shape[0]] + s.dims, x[0].data)
        case .flatten: return RefTensor([x[0].shape[0], x[0].count / x[0].shape[0]], x[0].data)
        case .pad2d(let p):
            let (n, c, h, w) = (x[0].shape[0], x[0].shape[1], x[0].shape[2], x[0].shape[3])
            var y = RefTensor(zeros: [n, c, h + p.top + p.bottom, w + p.left + p.right])
            for a in 0..<n { for k in 0..<c { for i in 0..<h { for j in 0..<w { y[a, k, i + p.top, j + p.left] = x[0][a, k, i, j] } } } }
            return y
        case .upsample(let u): return upsample(x[0], u)
        case .resize(let r): return resize(x[0], r)
        case .dropout: return x[0]
        case .softmax, .logSoftmax:
            // Over axis 1 of [N, F, rest…]: each (sample, position in rest) normalized across F.
            var y = x[0]
            let (n, f) = (y.shape[0], y.shape[1]), inner = y.shape.dropFirst(2).reduce(1, *)
            for a in 0..<n {
                for p in 0..<inner {
                    let at = { (i: Int) in (a * f + i) * inner + p }
                    let row = (0..<f).map { x[0].data[at($0)] }
                    let m = row.max()!
                    let e = row.map { Foundation.exp($0 - m) }
                    let s = e.reduce(0, +)
                    for i in 0..<f { y.data[at(i)] = op == .softmax ? e[i] / s : row[i] - m - Foundation.log(s) }
                }
            }
            return y
        }
    }

    static func act(_ a: Activation, _ v: Double) -> Double {
        func sigmoid(_ t: Double) -> Double { 1 / (1 + Foundation.exp(-t)) }
        switch a {
        case .relu: return max(v, 0)
        case .relu6: return min(max(v, 0), 6)
        case .leakyRelu(let al): return v > 0 ? v : Double(al) * v
        case .elu(let al): return v > 0 ? v : Double(al) * (Foundation.exp(v) - 1)
        case .sigmoid: return sigmoid(v)
        case .tanh: return Foundation.tanh(v)
        case .swish: return v * sigmoid(v)
        case .hardSwish: return v * min(max(v + 3, 0), 6) / 6
        case .mish: return v * Foundation.tanh(Foundation.log(1 + Foundation.exp(v)))
        case .linear(let a, let b): return Double(a) * v + Double(b)
        case .clip(let lo, let hi): return min(max(v, Double(lo)), Double(hi))
        case .abs: return Swift.abs(v)
        case .sqrt: return v.squareRoot()
        case .exp: return Foundation.exp(v)
        case .log: return Foundation.log(v)
        case .softplus: return Foundation.log(1 + Foundation.exp(v))
        case .pow(let s, let e): return Double(s) * Foundation.pow(v, Double(e))
        case .gelu: return v * 0.5 * (1 + Foundation.erf(v / 2.0.squareRoot()))
        case .erf: return Foundation.erf(v)
        }
    }

    static func conv(_ x: RefTensor, _ w: RefTensor, _ b: RefTensor?, _ c: Conv2D) -> RefTensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = (c.kernel[0], c.kernel[1])
        let oh = (h + c.padding.top + c.padding.bottom - (kh - 1) * c.dilation[0] - 1) / c.stride[0] + 1
        let ow = (wd + c.padding.left + c.padding.right - (kw - 1) * c.dilation[1] - 1) / c.stride[1] + 1
        let cinG = cin / c.groups, coutG = c.outChannels / c.groups
        var y = RefTensor(zeros: [n, c.outChannels, oh, ow])
        // The definition, y[a,o,i,j] = b[o] + Σ x[a, g·cinG+ci, i·s−p+k·d, …]·w[o,ci,k,…], with the sum
        // reordered so that the innermost loop runs along a row (fast enough for ResNet-101 in a debug build).
        x.data.withUnsafeBufferPointer { xp in w.data.withUnsafeBufferPointer { wp in y.data.withUnsafeMutableBufferPointer { yp in
            for a in 0..<n { for o in 0..<c.outChannels {
                let g = o / coutG
                let out = yp.baseAddress! + (a * c.outChannels + o) * oh * ow
                for k in 0..<(oh * ow) { out[k] = b?.data[o] ?? 0 }
                for ci in 0..<cinG { for p in 0..<kh { for q in 0..<kw {
                    let weight = wp[((o * cinG + ci) * kh + p) * kw + q]
                    let plane = xp.baseAddress! + (a * cin + g * cinG + ci) * h * wd
                    for i in 0..<oh {
                        let hi = i * c.stride[0] - c.padding.top + p * c.dilation[0]
                        guard hi >= 0 && hi < h else { continue }
                        let row = plane + hi * wd, orow = out + i * ow
                        for j in 0..<ow {
                            let wi = j * c.stride[1] - c.padding.left + q * c.dilation[1]
                            if wi >= 0 && wi < wd { orow[j] += row[wi] * weight }
                        }
                    }
                } } }
            } }
        } } }
        return y
    }

    static func convTranspose(_ x: RefTensor, _ w: RefTensor, _ b: RefTensor?, _ c: ConvTranspose2D) -> RefTensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = (c.kernel[0], c.kernel[1])
        let oh = (h - 1) * c.stride[0] - c.padding.top - c.padding.bottom + (kh - 1) * c.dilation[0] + 1 + c.outputPadding[0]
        let ow = (wd - 1) * c.stride[1] - c.padding.left - c.padding.right + (kw - 1) * c.dilation[1] + 1 + c.outputPadding[1]
        var y = RefTensor(zeros: [n, c.outChannels, oh, ow])
        for a in 0..<n { for o in 0..<c.outChannels { for i in 0..<oh { for j in 0..<ow { y[a, o, i, j] = b?.data[o] ?? 0 } } } }
        for a in 0..<n { for ci in 0..<cin { for i in 0..<h { for j in 0..<wd { for o in 0..<c.outChannels { for p in 0..<kh { for q in 0..<kw {
            let ho = i * c.stride[0] - c.padding.top + p * c.dilation[0]
            let wo = j * c.stride[1] - c.padding.left + q * c.dilation[1]
            if ho >= 0 && ho < oh && wo >= 0 && wo < ow { y[a, o, ho, wo] += x[a, ci, i, j] * w[ci, o, p, q] }
        } } } } } } }
        return y
    }

    static func batchNorm(_ x: [RefTensor], eps: Double, training: Bool) -> RefTensor {
        let t = x[0]
        let c = t.shape[1]
        let inner = t.shape.count > 2 ? t.shape[2...].reduce(1, *) : 1
        let n = t.shape[0]
        var y = t
        for k in 0..<c {
            var mean = x[3].data[k], variance = x[4].data[k]
            if training {
                var s = 0.0, s2 = 0.0
                for a in 0..<n { for i in 0..<inner { let v = t.data[(a * c + k) * inner + i]; s += v; s2 += v * v } }
                let m = Double(n * inner)
                mean = s / m; variance = s2 / m - mean * mean
            }
            for a in 0..<n { for i in 0..<inner {
                let idx = (a * c + k) * inner + i
                y.data[idx] = (t.data[idx] - mean) / (variance + eps).squareRoot() * x[1].data[k] + x[2].data[k]
            } }
        }
        return y
    }

    static func pool(_ x: RefTensor, _ p: Pool2D) -> RefTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + p.padding.top + p.padding.bottom - p.kernel[0]) / p.stride[0] + 1
        let ow = (w + p.padding.left + p.padding.right - p.kernel[1]) / p.stride[1] + 1
        var y = RefTensor(zeros: [n, c, oh, ow])
        for a in 0..<n { for k in 0..<c { for i in 0..<oh { for j in 0..<ow {
            var best = -Double.infinity, sum = 0.0, cnt = 0
            for u in 0..<p.kernel[0] { for v in 0..<p.kernel[1] {
                let hi = i * p.stride[0] - p.padding.top + u, wi = j * p.stride[1] - p.padding.left + v
                if hi >= 0 && hi < h && wi >= 0 && wi < w { let e = x[a, k, hi, wi]; best = max(best, e); sum += e; cnt += 1 }
            } }
            y[a, k, i, j] = p.kind == .max ? best : sum / Double(p.countIncludePad ? p.kernel[0] * p.kernel[1] : cnt)
        } } } }
        return y
    }

    static func broadcast(_ a: RefTensor, _ b: RefTensor, _ f: (Double, Double) -> Double) -> RefTensor {
        var y = a
        let strides = a.shape.indices.map { i in a.shape[(i + 1)...].reduce(1, *) }
        for idx in 0..<a.count {
            var bi = 0
            for d in 0..<a.shape.count {
                let coord = (idx / strides[d]) % a.shape[d]
                bi = bi * b.shape[d] + (b.shape[d] == 1 ? 0 : coord)
            }
            y.data[idx] = f(a.data[idx], b.data[bi])
        }
        return y
    }

    static func concat(_ xs: [RefTensor], axis: Int) -> RefTensor {
        var shape = xs[0].shape
        shape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
        let outer = shape[..<axis].reduce(1, *)
        var data: [Double] = []
        for o in 0..<outer {
            for x in xs {
                let chunk = x.shape[axis...].reduce(1, *)
                data += x.data[(o * chunk)..<((o + 1) * chunk)]
            }
        }
        return RefTensor(shape, data)
    }

    static func transpose(_ x: RefTensor, _ perm: [Int]) -> RefTensor {
        let shape = perm.map { x.shape[$0] }
        var inStrides = [Int](repeating: 1, count: x.shape.count)
        for k in stride(from: x.shape.count - 2, through: 0, by: -1) { inStrides[k] = inStrides[k + 1] * x.shape[k + 1] }
        var data = [Double](repeating: 0, count: x.data.count)
        for i in 0..<data.count {
            var rest = i, src = 0
            for k in stride(from: shape.count - 1, through: 0, by: -1) {
                src += (rest % shape[k]) * inStrides[perm[k]]
                rest /= shape[k]
            }
            data[i] = x.data[src]
        }
        return RefTensor(shape, data)
    }

    static func slice(_ x: RefTensor, _ s: Slice) -> RefTensor {
        var shape = x.shape
        shape[s.axis] = s.count
        let outer = x.shape[..<s.axis].reduce(1, *), inner = x.shape[(s.axis + 1)...].reduce(1, *)
        var data: [Double] = []
        for o in 0..<outer {
            let base = o * x.shape[s.axis] * inner
            for i in stride(from: s.start, to: s.end, by: s.step) { data += x.data[(base + i * inner)..<(base + (i + 1) * inner)] }
        }
        return RefTensor(shape, data)
    }

    /// Each output pixel as the sum over its row taps and column taps (not separably).
    static func resize(_ x: RefTensor, _ r: Resize) -> RefTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (oh, ow) = (r.size[0], r.size[1])
        let rows = r.taps(input: h, output: oh, axis: 0), cols = r.taps(input: w, output: ow, axis: 1)
        var y = RefTensor(zeros: [n, c, oh, ow])
        for a in 0..<n { for ch in 0..<c { for i in 0..<oh { for j in 0..<ow {
            var v = 0.0
            for (ri, rw) in zip(rows[i].index, rows[i].weight) { for (ci, cw) in zip(cols[j].index, cols[j].weight) { v += rw * cw * x[a, ch, ri, ci] } }
            y[a, ch, i, j] = v
        } } } }
        return y
    }

    static func upsample(_ x: RefTensor, _ u: Upsample) -> RefTensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h * u.scale[0], w * u.scale[1])
        var y = RefTensor(zeros: [n, c, oh, ow])
        for a in 0..<n { for k in 0..<c { for i in 0..<oh { for j in 0..<ow {
            switch u.mode {
            case .nearest: y[a, k, i, j] = x[a, k, i / u.scale[0], j / u.scale[1]]
            case .bilinear:
                // Half-pixel centers, clamped at the borders (align_corners = false).
                let fy = max(0, (Double(i) + 0.5) / Double(u.scale[0]) - 0.5), fx = max(0, (Double(j) + 0.5) / Double(u.scale[1]) - 0.5)
                let y0 = min(Int(fy), h - 1), x0 = min(Int(fx), w - 1)
                let y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
                let dy = fy - Double(y0), dx = fx - Double(x0)
                y[a, k, i, j] = (1 - dy) * ((1 - dx) * x[a, k, y0, x0] + dx * x[a, k, y0, x1]) + dy * ((1 - dx) * x[a, k, y1, x0] + dx * x[a, k, y1, x1])
            }
        } } } }
        return y
    }
}
