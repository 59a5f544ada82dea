import Foundation
import TaoGraph

/// Mixed precision for the INT8 engine: which convolutions to keep in fp32 so that the engine's
/// outputs stay close to the fp32 model's, as TensorRT's per-layer precision lets a user keep a
/// network's most sensitive layers in higher precision. Calibration alone cannot serve every
/// layer with one per-tensor scale: in the demo detector's deepest stage most images' largest
/// activations are near 2 and a few images' near 60, so int8 steps fit one kind of image or the
/// other; running those layers in fp32 serves both.
///
/// The choice is measured, not guessed: each convolution's *sensitivity* is the output error of the
/// engine with that convolution alone in int8 (the rest fp32); then convolutions go to fp32 one
/// after another, by sensitivity per cost (its share of the multiply-adds, plus 1%: a cheap layer
/// such as a detector's box head first when it matters as much), until the whole engine's error is
/// at most `maxError`. On the demo detector (max calibration, fp32 test mAP 80.8%): all int8 33.9%;
/// layer4.1's residual sum in fp32 77.5%; that and the box head 81.4%.
public enum Int8Precision {
    /// The outcome of `choose`.
    public struct Choice: Sendable {
        /// Convolutions (node names) to run in fp32, most sensitive first.
        public var fp32Layers: [String]
        /// The output error with every convolution in int8, and with `fp32Layers` in fp32.
        public var int8Error: Double, error: Double
        /// Each convolution's sensitivity (its output error alone in int8), in the order they are
        /// tried in fp32: by sensitivity per cost.
        public var sensitivity: [(layer: String, error: Double)]
        /// The share of the convolutions' multiply-adds left in int8.
        public var int8MACShare: Double
    }

    /// The fp32 model's outputs on each batch: the reference the errors are measured against.
    public static func reference(_ g: Graph, _ store: ParameterStore, batches: [Tensor]) throws -> [[[Float]]] {
        guard let first = batches.first else { throw Int8Error("mixed precision needs at least one batch of images") }
        let exec = try Executor(graph: g, batch: first.shape[0], mode: .inference, parameters: store)
        return try batches.map { b in
            try exec.setInput(0, b)
            exec.forward()
            return g.outputs.indices.map { i in Array(UnsafeBufferPointer(start: exec.outputPointer(i), count: exec.outputShape(i).dims.reduce(1, *))) }
        }
    }

    /// The engine's output error against `reference`: for each output and image, the squared
    /// difference over the reference's sum of squares, at most 1 (an image whose outputs are lost);
    /// the mean over the images, the largest over the outputs. Per image and bounded, so that the
    /// few images with unusually large activations, which a calibration may clip, count as much as
    /// any other lost image and no more, as they do in a detector's mAP.
    public static func error(_ g: Graph, _ store: ParameterStore, ranges: [String: Float], fp32Layers: Set<String>,
                             batches: [Tensor], reference: [[[Float]]]) throws -> Double {
        let engine = try Int8Engine(graph: g, parameters: store, maxAbs: ranges, batch: batches[0].shape[0], tactics: .direct, fp32Layers: fp32Layers)
        var total = [Double](repeating: 0, count: g.outputs.count), images = 0
        for (b, want) in zip(batches, reference) {
            try engine.setInput(b)
            engine.forward()
            let n = b.shape[0]
            images += n
            for i in g.outputs.indices {
                let got = UnsafeBufferPointer(start: engine.outputPointer(i), count: want[i].count)
                let per = want[i].count / n
                for k in 0..<n {
                    var diff = 0.0, norm = 0.0
                    for j in (k * per)..<((k + 1) * per) {
                        let d = Double(got[j]) - Double(want[i][j])
                        diff += d * d
                        norm += Double(want[i][j]) * Double(want[i][j])
                    }
                    total[i] += min(1, diff / max(norm, 1e-30))
                }
            }
        }
        return total.map { $0 / Double(max(images, 1)) }.max() ?? 0
    }

    /// Convolution node names in graph order, with their multiply-adds per image.
    public static func convolutions(_ g: Graph) -> [(name: String, macs: Double)] {
        g.nodes.compactMap { n in
            guard case .conv2d(let c) = n.op else { return nil }
            let out = g.shape(of: n.output).dims, cin = g.shape(of: n.inputs[0])[0]
            return (n.name, Double(out.reduce(1, *)) * Double(cin / c.groups * c.kernel[0] * c.kernel[1]))
        }
    }

    /// Chooses the convolutions to keep in fp32 (see the type's comment): none when the all-int8
    /// engine's error is already at most `maxError`; at most `limit` of them.
    public static func choose(_ g: Graph, _ store: ParameterStore, ranges: [String: Float], batches: [Tensor],
                              maxError: Double, limit: Int? = nil, log: (String) -> Void = { _ in }) throws -> Choice {
        let ref = try reference(g, store, batches: batches)
        let convs = convolutions(g)
        let names = convs.map(\.name)
        let all = Set(names)
        let int8Error = try error(g, store, ranges: ranges, fp32Layers: [], batches: batches, reference: ref)
        let totalMACs = convs.reduce(0) { $0 + $1.macs }
        func share(_ fp32: Set<String>) -> Double { convs.filter { !fp32.contains($0.name) }.reduce(0) { $0 + $1.macs } / max(totalMACs, 1) }
        var choice = Choice(fp32Layers: [], int8Error: int8Error, error: int8Error, sensitivity: [], int8MACShare: 1)
        guard int8Error > maxError else { return choice }
        let cost = Dictionary(uniqueKeysWithValues: convs.map { ($0.name, $0.macs / max(totalMACs, 1) + 0.01) })
        choice.sensitivity = try names.map { name in
            (name, try error(g, store, ranges: ranges, fp32Layers: all.subtracting([name]), batches: batches, reference: ref))
        }.sorted { $0.1 / cost[$0.0]! > $1.1 / cost[$1.0]! }
        log(String(format: "int8 output error %.4g (allowed %.4g); most sensitive convolutions per cost: %@", int8Error, maxError,
                   choice.sensitivity.prefix(5).map { String(format: "%@ %.3g", $0.layer, $0.error) }.joined(separator: ", ")))
        var fp32: [String] = []
        for (name, _) in choice.sensitivity.prefix(limit ?? names.count) {
            fp32.append(name)
            let e = try error(g, store, ranges: ranges, fp32Layers: Set(fp32), batches: batches, reference: ref)
            log(String(format: "  %d in fp32 (+%@): error %.4g, %.1f%% of multiply-adds in int8", fp32.count, name, e, 100 * share(Set(fp32))))
            if e < choice.error { (choice.error, choice.fp32Layers) = (e, fp32) }
            if e <= maxError { break }
        }
        choice.int8MACShare = share(Set(choice.fp32Layers))
        return choice
    }
}
