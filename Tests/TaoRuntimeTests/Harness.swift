import XCTest
import TaoGraph
import TaoTestSupport
import TaoRuntime

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
}
