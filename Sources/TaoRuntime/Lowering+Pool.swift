import TaoGraph
import TaoKernels

// Max/average pooling (max keeps a workspace of argmax positions for backward) and global average pooling.
extension Executor {
    func lowerPool(_ n: Node, _ p: Pool2D) throws -> RValue {
        let x = value(n.inputs[0])
        let alg: Kernels.PoolAlg = p.kind == .max ? .max : (p.countIncludePad ? .avgIncludePad : .avgExcludePad)
        let win = Window(strides: p.stride, padLeft: [p.padding.top, p.padding.left], padRight: [p.padding.bottom, p.padding.right])
        return try pool(x, alg: alg, outDims: dims(n.output), kernel: p.kernel, win)
    }

    func lowerGlobalAveragePool(_ n: Node) throws -> RValue {
        let x = value(n.inputs[0])
        let d = x.md.dims
        let pooled = try pool(x, alg: .avgExcludePad, outDims: [d[0], d[1], 1, 1], kernel: [d[2], d[3]],
                              Window(strides: [1, 1], padLeft: [0, 0], padRight: [0, 0]))
        return try reshape(pooled, to: [d[0], d[1]])
    }

    private func pool(_ x: RValue, alg: Kernels.PoolAlg, outDims: [Int], kernel: [Int], _ win: Window) throws -> RValue {
        // The result in the input's data type (bf16 pooling reads and writes bf16: `trainingStream`).
        let pd = try Kernels.poolForward(prop, alg, src: x.md, dst: MemoryDesc(outDims, .any, type: x.md.dataType ?? .f32), kernel: kernel, win)
        let y = newValue(pd.md(.dst), needsGrad: x.needsGrad)
        var binds: [(Arg, Memory)] = [(.src, x.mem), (.dst, y.mem)]
        let wsDesc = pd.md(.workspace)
        let ws = wsDesc.isZero ? nil : buffer(wsDesc)
        if let ws { binds.append((.workspace, ws)) }
        forwardSteps.append(try step(pd, binds))
        onBackward(y) { [unowned self] in
            let bd = try Kernels.poolBackward(alg, diffSrc: x.md, diffDst: y.md, kernel: kernel, win, hint: pd)
            try self.contribute(to: [x]) { t in
                var a: [(Arg, Memory)] = [(.diffDst, self.grad(y)), (.diffSrc, t[0]!)]
                if let ws { a.append((.workspace, ws)) }
                return [try self.step(bd, a)]
            }
        }
        return y
    }
}
