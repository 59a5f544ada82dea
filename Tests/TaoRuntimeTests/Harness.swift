import XCTest
import TaoGraph
import TaoTestSupport
import TaoRuntime
import TaoKernels

/// The shared op/graph checker: values against `Reference`, gradients against central finite
/// differences of `Reference` (in Double), for the graph inputs and every trainable parameter.
enum Harness {
    struct Tolerance { var forward = 2e-4; var gradient = 3e-3 }

    /// Builds the graph, runs it on random data and checks values and gradients.
    static func check(batch: Int, seed: UInt64 = 7, training: Bool = true, tolerance: Tolerance = Tolerance(),
                      samples: Int = 40, inputScale: Float = 1, frozenBatchNorm: Set<String> = [],
                      file: StaticString = #filePath, line: UInt = #line,
                      _ build: (inout GraphBuilder) -> ValueID) throws {
        try checkOutputs(batch: batch, seed: seed, training: training, tolerance: tolerance, samples: samples, inputScale: inputScale,
                         frozenBatchNorm: frozenBatchNorm, file: file, line: line) { [build(&$0)] }
    }

    /// The same for a graph of several outputs: every output checked against the reference, and the
    /// gradients of a loss that weighs all of them.
    static func checkOutputs(batch: Int, seed: UInt64 = 7, training: Bool = true, tolerance: Tolerance = Tolerance(),
                             samples: Int = 40, inputScale: Float = 1, frozenBatchNorm: Set<String> = [],
                             file: StaticString = #filePath, line: UInt = #line,
                             _ build: (inout GraphBuilder) -> [ValueID]) throws {
        var b = GraphBuilder()
        let outs = build(&b)
        let g = try b.build(outputs: outs)
        var rng = SplitMix64(seed: seed)
        let store = ParameterStore(graph: g, seed: seed)
        for (i, p) in g.parameters.enumerated() {
            store[i] = p.role == .bnVariance ? Tensor.randomUniform(p.shape, 0.5, 1.5, rng: &rng)
                                             : Tensor.randomNormal(p.shape, std: 0.5, rng: &rng)
        }
        let inputs = g.inputs.map { Tensor.randomNormal(g.shape(of: $0).batched(batch), std: inputScale, rng: &rng) }
        let exec = try Executor(graph: g, batch: batch, mode: training ? .training : .inference, parameters: store,
                                frozenBatchNorm: frozenBatchNorm, inputGradients: true)
        for (i, t) in inputs.enumerated() { try exec.setInput(i, t) }
        exec.forward()
        let refParams = (0..<store.count).map { RefTensor(store[$0]) }
        let refInputs = inputs.map(RefTensor.init)
        let refs = Reference.run(g, inputs: refInputs, params: refParams, training: training, frozenBatchNorm: frozenBatchNorm)
        var seeds: [Tensor] = []
        for (o, ref) in refs.enumerated() {
            let y = exec.output(o)
            XCTAssertEqual(y.shape.dims, ref.shape, "output \(o) shape", file: file, line: line)
            var worst = 0.0
            for i in 0..<min(y.count, ref.count) {
                worst = max(worst, abs(Double(y[flat: i]) - ref.data[i]) / max(1, abs(ref.data[i])))
            }
            XCTAssertLessThanOrEqual(worst, tolerance.forward, "output \(o) differs from the reference", file: file, line: line)
            seeds.append(Tensor.randomNormal(y.shape, rng: &rng))
        }
        defer {
            checkBF16(g, store, inputs: inputs, seeds: seeds, against: exec, training: training, frozenBatchNorm: frozenBatchNorm, file: file, line: line)
        }
        guard training else { return }

        for (o, seedGrad) in seeds.enumerated() {
            seedGrad.withUnsafeBufferPointer { exec.outputGradientPointer(o).update(from: $0.baseAddress!, count: $0.count) }
        }
        exec.backward()
        func loss(_ ins: [RefTensor], _ ps: [RefTensor]) -> Double {
            var s = 0.0
            for (o, r) in Reference.run(g, inputs: ins, params: ps, training: training, frozenBatchNorm: frozenBatchNorm).enumerated() {
                for i in 0..<r.count { s += r.data[i] * Double(seeds[o][flat: i]) }
            }
            return s
        }
        func compare(_ what: String, analytic: Tensor, perturb: (Int, Double) -> Double) {
            var pick = SplitMix64(seed: seed &+ 99)
            let idx = analytic.count <= samples ? Array(0..<analytic.count) : (0..<samples).map { _ in Int(pick.next() % UInt64(analytic.count)) }
            for i in idx {
                let h = 1e-5   // the reference is Double: a small step keeps ReLU kinks out of reach
                let fd = (perturb(i, h) - perturb(i, -h)) / (2 * h)
                let a = Double(analytic[flat: i])
                if abs(a - fd) > tolerance.gradient * max(1, abs(fd)) {
                    XCTFail("\(what)[\(i)]: gradient \(a) but finite difference \(fd)", file: file, line: line)
                    return
                }
            }
        }
        for (k, _) in inputs.enumerated() {
            guard let gx = exec.inputGradient(k) else { XCTFail("no input gradient", file: file, line: line); continue }
            compare("d/d input\(k)", analytic: gx) { i, h in
                var ins = refInputs; ins[k].data[i] += h
                return loss(ins, refParams)
            }
        }
        for (k, p) in g.parameters.enumerated() where p.role.isTrainable {
            guard let gp = exec.parameterGradient(p.name) else { XCTFail("no gradient for \(p.name)", file: file, line: line); continue }
            compare("d/d \(p.name)", analytic: gp) { i, h in
                var ps = refParams; ps[k].data[i] += h
                return loss(refInputs, ps)
            }
        }
    }

    /// The bf16 mode of the harness: the same graph, inputs and output gradients run with
    /// `arithmetic: .bf16`, every output and gradient against the fp32 executor's. Convolutions,
    /// transposed convolutions and dense layers round their operands to bf16 (unit roundoff
    /// u = 2⁻⁸), so a product of two rounded operands is off by at most 2u relative, and a sum of
    /// them, norm-wise, by about 2u of the result for these random operands of both signs; each
    /// further bf16 layer on the path adds the same again. The bound: ‖bf16 − fp32‖₂ ≤
    /// 8u·max(‖fp32‖₂, √n) per tensor of n values (2u for up to four bf16 steps on a path, forward
    /// then backward); gradients through K kinks, 2√(K·u) (see `kinks`). Where the graph has a bf16
    /// layer, some value must differ by more than fp32's rounding (bf16 really ran); a graph
    /// without one must match fp32 to fp32's rounding. Without AVX512-BF16 or AMX, the executor
    /// must refuse bf16.
    static func checkBF16(_ g: Graph, _ store: ParameterStore, inputs: [Tensor], seeds: [Tensor], against exec32: Executor,
                          training: Bool, frozenBatchNorm: Set<String>, file: StaticString, line: UInt) {
        let mode: TaoRuntime.Mode = training ? .training : .inference
        guard Kernels.hasBF16 else {
            XCTAssertThrowsError(try Executor(graph: g, batch: inputs[0].shape.dims[0], mode: mode, parameters: store, arithmetic: .bf16),
                                 "bf16 without AVX512-BF16 or AMX", file: file, line: line)
            return
        }
        let rounds = g.nodes.contains { node in
            switch node.op { case .conv2d, .convTranspose2d, .dense: return true; default: return false }
        }
        // A kink (ReLU and its kin, max pooling) after bf16 layers: the values that rounding moves
        // across it take or drop their whole gradient. The forward values move by up to a few u
        // (4u: two bf16 layers), so a fraction ~4u·p(0) ≤ 4u of them cross (p(0) ≤ 1 the density of
        // the normalized values at the kink): 2√u norm-wise rather than a multiple of u; independent
        // kinks add in quadrature: 2√(K·u) for K of them.
        let kinks = g.nodes.filter { node in
            switch node.op {
            case .activation(.relu), .activation(.relu6), .activation(.leakyRelu), .activation(.clip), .activation(.hardSwish): return true
            case .pool2d(let p): return p.kind == .max
            default: return false
            }
        }.count
        let u = 1.0 / 256
        var largest = 0.0
        func compare(_ what: String, _ b: Tensor?, _ a: Tensor?, gradient: Bool = false) {
            guard let a, let b else { XCTFail("bf16 mode: no \(what)", file: file, line: line); return }
            XCTAssertEqual(a.shape.dims, b.shape.dims, "bf16 mode: \(what) shape", file: file, line: line)
            var diff = 0.0, norm = 0.0
            for i in 0..<min(a.count, b.count) {
                let d = Double(b[flat: i]) - Double(a[flat: i])
                diff += d * d; norm += Double(a[flat: i]) * Double(a[flat: i])
            }
            // The scale: the tensor's norm, at least 1 per element (as the fp32 check's max(1, |fd|)):
            // a gradient that cancels to 0 in exact arithmetic (a bias before a training batch norm)
            // is bf16's rounding of the sum of its terms, not a fraction of its own tiny norm.
            let rel = diff.squareRoot() / max(norm.squareRoot(), Double(a.count).squareRoot())
            XCTAssertLessThanOrEqual(rel, !rounds ? 1e-6 : gradient && kinks > 0 ? 2 * (Double(kinks) * u).squareRoot() : 8 * u,
                                     rounds ? "bf16 mode: \(what) moved more than bf16's rounding allows (‖Δ‖/‖fp32‖)"
                                            : "bf16 mode: \(what) of a graph without bf16 layers differs from fp32's", file: file, line: line)
            largest = max(largest, rel)
        }
        defer { if rounds { XCTAssertGreaterThan(largest, 1e-5, "bf16 mode: every value equals fp32's — bf16 did not run", file: file, line: line) } }
        do {
            let e = try Executor(graph: g, batch: inputs[0].shape.dims[0], mode: mode, parameters: store,
                                 frozenBatchNorm: frozenBatchNorm, inputGradients: true, arithmetic: .bf16)
            for (i, t) in inputs.enumerated() { try e.setInput(i, t) }
            e.forward()
            for o in seeds.indices { compare("output \(o)", e.output(o), exec32.output(o)) }
            guard training else { return }
            for (o, s) in seeds.enumerated() {
                s.withUnsafeBufferPointer { e.outputGradientPointer(o).update(from: $0.baseAddress!, count: $0.count) }
            }
            e.backward()
            for k in inputs.indices { compare("d/d input\(k)", e.inputGradient(k), exec32.inputGradient(k), gradient: true) }
            for p in g.parameters where p.role.isTrainable {
                compare("d/d \(p.name)", e.parameterGradient(p.name), exec32.parameterGradient(p.name), gradient: true)
            }
        } catch {
            XCTFail("bf16 mode: \(error)", file: file, line: line)
        }
    }
}
