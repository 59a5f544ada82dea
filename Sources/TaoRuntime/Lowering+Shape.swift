import TaoGraph
import TaoKernels

// Ops that move data without arithmetic. They work on plain layouts (a reorder in front when the
// input is blocked); oneDNN reorders over sub-memory views do the copying in both directions.
extension Executor {
    func lowerReshape(_ n: Node) throws -> RValue {
        try reshape(value(n.inputs[0]), to: dims(n.output))
    }

    /// `v`'s elements (plain order) seen with `to` dims: a copy, and the reverse copy for the gradient.
    func reshape(_ v: RValue, to newDims: [Int]) throws -> RValue {
        let x = try ensure(v, MemoryDesc(v.md.dims))
        let y = newValue(MemoryDesc(newDims), needsGrad: x.needsGrad)
        let count = newDims.reduce(1, *)
        forwardSteps.append(.swift([x.mem, y.mem]) { y.mem.floats.update(from: x.mem.floats, count: count) })
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            try self.contribute(to: [x]) { t in
                let out = t[0]!
                return [.swift([dy, out]) { out.floats.update(from: dy.floats, count: count) }]
            }
        }
        return y
    }

    /// Concatenation, in the inputs' common channel-blocked layout when they share one (nChw8c or
    /// nChw16c, each input's channels filling whole blocks), else plain. UNet's decoders join an
    /// up-sampled map and a skip, both blocked: a plain result made the batch norm after it run
    /// oneDNN's plain-layout kernel (230 of 1,430 ms of a ResNet-18 UNet training step at 320²,
    /// batch 4, Xeon with AVX-512).
    func lowerConcat(_ n: Node, axis: Int) throws -> RValue {
        let outDims = dims(n.output)
        let blocked = [(Layout.nChw16c, 16), (.nChw8c, 8)].first { layout, block in
            axis == 1 && outDims.count == 4 && n.inputs.allSatisfy { dims($0)[1] % block == 0 && value($0).md == MemoryDesc(dims($0), layout) }
        }?.0
        let layout = blocked ?? .plain
        let xs = try n.inputs.map { try ensure(value($0), MemoryDesc(dims($0), layout)) }
        let pd = try Kernels.concat(srcs: xs.map(\.md), axis: axis, dst: MemoryDesc(outDims, layout))
        let y = newValue(MemoryDesc(outDims, layout), needsGrad: xs.contains { $0.needsGrad })
        var binds: [(Arg, Memory)] = xs.enumerated().map { (.multipleSrc($0.offset), $0.element.mem) }
        binds.append((.dst, y.mem))
        forwardSteps.append(try step(pd, binds))
        onBackward(y) { [unowned self] in
            let dy = self.grad(y)
            var offset = 0
            for x in xs {
                var offs = [Int](repeating: 0, count: outDims.count)
                offs[axis] = offset
                offset += x.md.dims[axis]
                guard x.needsGrad else { continue }
                let view = try y.md.submemory(dims: x.md.dims, offsets: offs)
                try self.contribute(to: [x]) { t in [try self.step(Kernels.reorder(from: view, to: x.md), [(.src, dy), (.dst, t[0]!)])] }
            }
        }
        return y
    }

    func lowerSlice(_ n: Node, _ s: Slice) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0])))
        let outDims = dims(n.output)
        if s.step != 1 { return try lowerStridedSlice(n, s, x, outDims) }
        var offs = [Int](repeating: 0, count: outDims.count)
        offs[s.axis] = s.start
        let view = try x.md.submemory(dims: outDims, offsets: offs)
        let y = newValue(MemoryDesc(outDims), needsGrad: x.needsGrad)
        forwardSteps.append(try step(Kernels.reorder(from: view, to: y.md), [(.src, x.mem), (.dst, y.mem)]))
        onBackward(y) { [unowned self] in
            try self.contribute(to: [x]) { t in
                let target = t[0]!
                return [.swift([target]) { target.zero() }, try self.step(Kernels.reorder(from: y.md, to: view), [(.src, self.grad(y)), (.dst, target)])]
            }
        }
        return y
    }

    /// Resize by its taps: along the height into a buffer [N·C, H_out, W_in], then along the width;
    /// backward the transposed sums the other way.
    func lowerResize(_ n: Node, _ r: Resize) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0])))
        let (inDims, outDims) = (x.md.dims, dims(n.output))
        let planes = inDims[0] * inDims[1], (h, w, oh, ow) = (inDims[2], inDims[3], outDims[2], outDims[3])
        let rows = r.taps(input: h, output: oh, axis: 0), cols = r.taps(input: w, output: ow, axis: 1)
        let (rowIndex, rowWeight) = (rows.map(\.index), rows.map { $0.weight.map(Float.init) })
        let (colIndex, colWeight) = (cols.map(\.index), cols.map { $0.weight.map(Float.init) })
        let y = newValue(MemoryDesc(outDims), needsGrad: x.needsGrad)
        let buffer = ResizeBuffer(count: planes * oh * w)
        forwardSteps.append(.swift([x.mem, y.mem]) {
            let (src, dst) = (x.mem.floats, y.mem.floats)
            let middle = buffer.pointer
            forEachSlice(of: planes) { range in for p in range {
                let s = src + p * h * w, m = middle + p * oh * w, d = dst + p * oh * ow
                for i in 0..<oh {
                    let row = m + i * w
                    row.update(repeating: 0, count: w)
                    for (k, at) in rowIndex[i].enumerated() where rowWeight[i][k] != 0 {
                        let c = rowWeight[i][k], from = s + at * w
                        for j in 0..<w { row[j] += c * from[j] }
                    }
                    for j in 0..<ow {
                        var acc: Float = 0
                        for (k, at) in colIndex[j].enumerated() { acc += colWeight[j][k] * row[at] }
                        d[i * ow + j] = acc
                    }
                }
            } }
        })
        onBackward(y) { [unowned self] in
            try self.contribute(to: [x]) { t in
                let target = t[0]!, g = self.grad(y)
                return [.swift([target, g]) {
                    target.zero()
                    let (dy, dx) = (g.floats, target.floats)
                    let middle = buffer.pointer
                    forEachSlice(of: planes) { range in for p in range {
                        let gy = dy + p * oh * ow, m = middle + p * oh * w, gx = dx + p * h * w
                        for i in 0..<oh {
                            let row = m + i * w
                            row.update(repeating: 0, count: w)
                            for j in 0..<ow { for (k, at) in colIndex[j].enumerated() { row[at] += colWeight[j][k] * gy[i * ow + j] } }
                            for (k, at) in rowIndex[i].enumerated() where rowWeight[i][k] != 0 {
                                let c = rowWeight[i][k], to = gx + at * w
                                for j in 0..<w { to[j] += c * row[j] }
                            }
                        }
                    } }
                }]
            }
        }
        return y
    }

    /// The rows resized along the height, between the two passes (one plane per thread at a time).
    final class ResizeBuffer: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Float>
        init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
        deinit { pointer.deallocate() }
    }

    /// Every step-th element along one axis (YOLOX's Focus), copied by a loop: oneDNN's descriptors
    /// cannot express a view whose stepped axis outruns the axis outside it. Backward scatters the
    /// gradient back (zeros between).
    func lowerStridedSlice(_ n: Node, _ s: Slice, _ x: RValue, _ outDims: [Int]) throws -> RValue {
        let inDims = x.md.dims
        let outer = inDims[..<s.axis].reduce(1, *), inner = inDims[(s.axis + 1)...].reduce(1, *)
        let (length, count, start, step) = (inDims[s.axis], outDims[s.axis], s.start, s.step)
        let y = newValue(MemoryDesc(outDims), needsGrad: x.needsGrad)
        func each(_ body: (_ from: Int, _ to: Int) -> Void) {
            for o in 0..<outer { for i in 0..<count { body((o * length + start + i * step) * inner, (o * count + i) * inner) } }
        }
        forwardSteps.append(.swift([x.mem, y.mem]) {
            let (src, dst) = (x.mem.floats, y.mem.floats)
            each { from, to in (dst + to).update(from: src + from, count: inner) }
        })
        onBackward(y) { [unowned self] in
            try self.contribute(to: [x]) { t in
                let target = t[0]!, g = self.grad(y)
                return [.swift([target, g]) {
                    target.zero()
                    let (src, dst) = (g.floats, target.floats)
                    each { from, to in (dst + from).update(from: src + to, count: inner) }
                }]
            }
        }
        return y
    }

    /// A reorder from the input seen through permuted strides (oneDNN's permute_axes) into the plain
    /// output; backward, the same the other way.
    func lowerTranspose(_ n: Node, _ perm: [Int]) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0])))
        let y = newValue(MemoryDesc(dims(n.output)), needsGrad: x.needsGrad)
        var inverse = [Int](repeating: 0, count: perm.count)
        for (k, p) in perm.enumerated() { inverse[p] = k }
        let view = try x.md.permuted(inverse)   // x's bytes with y's dims
        forwardSteps.append(try step(Kernels.reorder(from: view, to: y.md), [(.src, x.mem), (.dst, y.mem)]))
        onBackward(y) { [unowned self] in
            let back = try y.md.permuted(perm)   // y's gradient with x's dims
            try self.contribute(to: [x]) { t in [try self.step(Kernels.reorder(from: back, to: x.md), [(.src, self.grad(y)), (.dst, t[0]!)])] }
        }
        return y
    }

    func lowerPad(_ n: Node, _ p: Padding2D) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0])))
        let y = newValue(MemoryDesc(dims(n.output)), needsGrad: x.needsGrad)
        let view = try y.md.submemory(dims: x.md.dims, offsets: [0, 0, p.top, p.left])
        forwardSteps.append(.swift([y.mem]) { y.mem.zero() })
        forwardSteps.append(try step(Kernels.reorder(from: x.md, to: view), [(.src, x.mem), (.dst, y.mem)]))
        onBackward(y) { [unowned self] in
            try self.contribute(to: [x]) { t in [try self.step(Kernels.reorder(from: view, to: x.md), [(.src, self.grad(y)), (.dst, t[0]!)])] }
        }
        return y
    }

    func lowerUpsample(_ n: Node, _ u: Upsample) throws -> RValue {
        let x = value(n.inputs[0])
        let alg: Kernels.ResampleAlg = u.mode == .nearest ? .nearest : .linear
        let pd = try Kernels.resampleForward(prop, alg, src: x.md, dst: MemoryDesc(dims(n.output), .any))
        let y = newValue(pd.md(.dst), needsGrad: x.needsGrad)
        forwardSteps.append(try step(pd, [(.src, x.mem), (.dst, y.mem)]))
        onBackward(y) { [unowned self] in
            let bd = try Kernels.resampleBackward(alg, diffSrc: x.md, diffDst: y.md, hint: pd)
            try self.contribute(to: [x]) { t in [try self.step(bd, [(.diffDst, self.grad(y)), (.diffSrc, t[0]!)])] }
        }
        return y
    }

    /// Softmax or log-softmax over axis 1 (features or channels), oneDNN's both ways.
    func lowerSoftmax(_ n: Node, log: Bool) throws -> RValue {
        let x = try ensure(value(n.inputs[0]), MemoryDesc(dims(n.inputs[0])))
        let pd = log ? try Kernels.logSoftmaxForward(prop, data: x.md, axis: 1) : try Kernels.softmaxForward(prop, data: x.md, axis: 1)
        let y = newValue(x.md, needsGrad: x.needsGrad)
        forwardSteps.append(try step(pd, [(.src, x.mem), (.dst, y.mem)]))
        onBackward(y) { [unowned self] in
            let bd = log ? try Kernels.logSoftmaxBackward(diffData: x.md, data: x.md, axis: 1, hint: pd)
                : try Kernels.softmaxBackward(diffData: x.md, data: x.md, axis: 1, hint: pd)
            try self.contribute(to: [x]) { t in [try self.step(bd, [(.dst, y.mem), (.diffDst, self.grad(y)), (.diffSrc, t[0]!)])] }
        }
        return y
    }
}
