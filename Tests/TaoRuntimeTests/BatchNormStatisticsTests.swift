import XCTest
import TaoGraph
import TaoTestSupport
@testable import TaoRuntime

final class BatchNormStatisticsTests: XCTestCase {
    /// Re-estimated running statistics equal the batch statistics of each batch norm's input,
    /// averaged over the batches, as the Double reference computes them in training mode (each
    /// earlier batch norm normalizing with its batch's own statistics).
    func testRunningStatisticsBecomeTheAverageBatchStatistics() throws {
        var b = GraphBuilder()
        let x = b.input("x", [3, 8, 8])
        let c1 = b.conv2d(x, "c1", out: 4, kernel: 3)
        let r1 = b.relu(b.batchNorm(c1, "bn1"), "r1")
        let c2 = b.conv2d(r1, "c2", out: 5, kernel: 3, stride: 2)
        let d = b.dropout(b.relu(b.batchNorm(c2, "bn2"), "r2"), "drop", rate: 0.5)
        let gap = b.globalAveragePool(d, "gap")
        let fc = b.dense(gap, "fc", out: 3)
        let g = try b.build(outputs: [fc])
        let s = ParameterStore(graph: g, seed: 1)
        var rng = SplitMix64(seed: 2)
        for name in ["bn1.weight", "bn2.weight"] {
            let i = g.parameterIndex(named: name)!
            s[i] = Tensor(shape: s[i].shape, values: (0..<s[i].shape.count).map { _ in 0.5 + rng.nextFloat() })
        }
        let batches = (0..<3).map { _ in Tensor.randomNormal([6, 3, 8, 8], rng: &rng) }
        let before = s.infos.indices.filter { !s.infos[$0].name.contains("running") }.map { s[$0].scalars }
        let params = (0..<g.parameters.count).map { RefTensor(s[$0]) }
        XCTAssertEqual(try BatchNormStatistics.reestimate(g, s, batches: batches), 2)

        // The reference: the same graph with the convolutions' outputs exposed, in training mode.
        let probe = try Graph(inputs: [("x", g.shape(of: g.inputs[0]))], parameters: g.parameters, nodes: g.nodes,
                              outputs: [g.nodes[0].output, g.nodes.first { $0.name == "c2" }!.output])
        var means = [[Double]](repeating: [], count: 2), vars = [[Double]](repeating: [], count: 2)
        for batch in batches {
            let outs = Reference.run(probe, inputs: [RefTensor(batch)], params: params, training: true)
            for (k, o) in outs.enumerated() {
                let (n, c, hw) = (o.shape[0], o.shape[1], o.shape[2] * o.shape[3])
                let per = (0..<c).map { ch in (0..<n).flatMap { i in (0..<hw).map { o.data[(i * c + ch) * hw + $0] } } }
                let m = per.map { $0.reduce(0, +) / Double($0.count) }
                let v = per.enumerated().map { ch, xs in xs.map { ($0 - m[ch]) * ($0 - m[ch]) }.reduce(0, +) / Double(xs.count - 1) }
                means[k] = means[k].isEmpty ? m : zip(means[k], m).map(+)
                vars[k] = vars[k].isEmpty ? v : zip(vars[k], v).map(+)
            }
        }
        for (k, bn) in ["bn1", "bn2"].enumerated() {
            let m = s[g.parameterIndex(named: "\(bn).running_mean")!].scalars, v = s[g.parameterIndex(named: "\(bn).running_var")!].scalars
            for ch in m.indices {
                XCTAssertEqual(Double(m[ch]), means[k][ch] / 3, accuracy: 1e-4 * max(1, abs(means[k][ch] / 3)), "\(bn) mean \(ch)")
                XCTAssertEqual(Double(v[ch]), vars[k][ch] / 3, accuracy: 1e-4 * max(1, vars[k][ch] / 3), "\(bn) variance \(ch)")
            }
        }
        // Nothing else changed.
        XCTAssertEqual(s.infos.indices.filter { !s.infos[$0].name.contains("running") }.map { s[$0].scalars }, before)
        XCTAssertThrowsError(try BatchNormStatistics.reestimate(g, s, batches: [])) { XCTAssertTrue("\($0)".contains("at least one batch"), "\($0)") }
    }
}
