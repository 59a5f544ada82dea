import XCTest
import TaoGraph
import TaoTensor
import TaoKernels
@testable import TaoRuntime

/// bf16 inference plans (issue 15, first step): convolutions, transposed convolutions and dense
/// layers on bfloat16 inputs and weights with fp32 accumulation. Each output is within bf16's
/// rounding of the fp32 plan's: rounding x and w to 8 significant bits moves each product x·w by at
/// most 2u|x||w| (u = 2⁻⁸), so |y_bf16 − y_fp32| ≤ 2u·Σ|x||w| plus fp32's own accumulation error —
/// where Σ|x||w| is the same layer run in fp32 on |x| and |w|. On a processor without bf16 the plan
/// is refused with a message that says so.
final class BF16InferenceTests: XCTestCase {
    func layers() -> [(String, (inout GraphBuilder) -> ValueID)] {
        [("conv 3×3 + ReLU", { b in b.relu(b.conv2d(b.input("x", [16, 9, 11]), "c", out: 32, kernel: 3), "r") }),
         ("conv 1×1 stride 2", { b in b.conv2d(b.input("x", [32, 8, 8]), "c", out: 16, kernel: 1, stride: 2) }),
         ("transposed conv 4×4 stride 2", { b in b.convTranspose2d(b.input("x", [32, 5, 6]), "t", out: 16, kernel: 4, stride: 2, padding: Padding2D(1)) }),
         ("transposed conv 3×3 stride 2", { b in b.convTranspose2d(b.input("x", [16, 5, 6]), "t", out: 16, kernel: 3, stride: 2, padding: Padding2D(1)) }),
         ("dense", { b in b.dense(b.flatten(b.input("x", [64, 2, 2]), "f"), "fc", out: 10) })]
    }

    func testBF16LayersWithinRoundingOfFP32() throws {
        for (name, build) in layers() {
            var b = GraphBuilder()
            let out = build(&b)
            let g = try b.build(outputs: [out])
            let store = ParameterStore(graph: g, seed: 3)
            var rng = SplitMix64(seed: 5)
            let x = Tensor.randomNormal(Shape([4] + g.shape(of: g.inputs[0]).dims), rng: &rng)
            guard Kernels.hasBF16 else {
                XCTAssertThrowsError(try Executor(graph: g, batch: 4, mode: .inference, parameters: store, arithmetic: .bf16), name) { e in
                    XCTAssertTrue("\(e)".contains("AVX512-BF16"), "\(e)")
                }
                continue
            }
            func run(_ arithmetic: Arithmetic, _ s: ParameterStore, _ input: Tensor) throws -> [Float] {
                let e = try Executor(graph: g, batch: 4, mode: .inference, parameters: s, arithmetic: arithmetic)
                try e.setInput(0, input)
                e.forward()
                return e.output().scalars
            }
            let y32 = try run(.fp32, store, x), y16 = try run(.bf16, store, x)
            let absStore = ParameterStore(graph: g, seed: 3)
            for i in 0..<g.parameters.count { absStore[i] = Tensor(shape: store[i].shape, values: store[i].scalars.map(abs)) }
            let bound = try run(.fp32, absStore, Tensor(shape: x.shape, values: x.scalars.map(abs)))
            let u: Float = 1.0 / 256
            var worst: Float = 0, maxDiff: Float = 0
            for k in y32.indices {
                let d = abs(y16[k] - y32[k])
                maxDiff = max(maxDiff, d)
                worst = max(worst, d / (2.02 * u * bound[k] + 1e-5))
            }
            XCTAssertLessThanOrEqual(worst, 1, "\(name): an output moved more than bf16's rounding allows")
            // bf16 really ran: rounding the inputs and weights moves the outputs.
            XCTAssertGreaterThan(maxDiff, 1e-4, "\(name): bf16 output equals fp32's — the plan did not run in bf16")
        }
    }

    /// A fused block (conv + batch norm + ReLU + residual add) in bf16 stays close to fp32 (the
    /// batch norm folded into the weights before they are rounded), and training in bf16 is refused.
    func testFusedBlockAndTrainingRefusal() throws {
        var b = GraphBuilder()
        let x = b.input("x", [16, 8, 8])
        let y = b.relu(b.add(b.batchNorm(b.conv2d(x, "c", out: 16, kernel: 3), "bn"), x, "add"), "r")
        let logits = b.dense(b.globalAveragePool(y, "gap"), "fc", out: 5)
        let g = try b.build(outputs: [logits])
        let store = ParameterStore(graph: g, seed: 1)
        XCTAssertThrowsError(try Executor(graph: g, batch: 2, mode: .training, parameters: store, arithmetic: .bf16)) { e in
            XCTAssertTrue("\(e)".contains("bf16 training"), "\(e)")
        }
        guard Kernels.hasBF16 else { return }
        var rng = SplitMix64(seed: 2)
        let input = Tensor.randomNormal(Shape([2, 16, 8, 8]), rng: &rng)
        let outs = try [Arithmetic.fp32, .bf16].map { a -> [Float] in
            let e = try Executor(graph: g, batch: 2, mode: .inference, parameters: store, arithmetic: a)
            try e.setInput(0, input)
            e.forward()
            return e.output().scalars
        }
        let scale = outs[0].map(abs).max()!
        let diff = zip(outs[0], outs[1]).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(diff, 0.03 * scale, "two bf16 layers: relative error \(diff / scale)")
        XCTAssertGreaterThan(diff, 0)
    }
}
