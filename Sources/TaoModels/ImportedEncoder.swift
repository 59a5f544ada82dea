// A backbone cut from any model (an imported ONNX file): the feature maps a decoder or detection
// head reads, found from the graph's shapes alone, so that a user's own pretrained network (a
// PaddleOCR text detector, a PicoDet layout detector, a classifier) can serve as an encoder.
import Foundation
import TaoGraph

public struct ImportedEncoder: Sendable, Equatable {
    /// The whole imported model; `features` are values of it.
    public let graph: Graph
    /// Where it came from (the .onnx path), for messages and equality.
    public let source: String
    /// The last map of each stride (2, 4, 8, …), shallowest first.
    public let features: [(stride: Int, value: ValueID)]

    public static func == (a: ImportedEncoder, b: ImportedEncoder) -> Bool { a.source == b.source }

    /// The feature maps of `graph`, walking its nodes in `order` (their names as the file lists
    /// them, which is the exporter's execution order) while each map's stride — input size over
    /// map size, alike in height and width — only grows: the backbone ends where the stride first
    /// falls (a neck's lateral convolution or upsampling, a decoder). Maps of one pixel (global
    /// pooling, squeeze-and-excitation) and of unequal strides (space-to-depth slices) are passed over.
    public init(graph: Graph, order: [String], source: String) throws {
        let input = graph.shape(of: graph.inputs[0])
        guard input.rank == 3 else { throw ModelError.unsupported("\(source): the encoder's input is \(input), not an image [C,H,W]") }
        let (height, width) = (input[1], input[2])
        var byName: [String: Node] = [:]
        for n in graph.nodes { byName[n.name] = n }
        var last: [Int: ValueID] = [:]
        var deepest = 1
        var inexact: (name: String, shape: Shape)?
        for name in order {
            guard let n = byName[name] else { continue }
            let s = graph.shape(of: n.output)
            guard s.rank == 3, s[1] * s[2] > 1 else { continue }
            guard height % s[1] == 0, width % s[2] == 0 else {
                if inexact == nil, s[1] < height, s[2] < width { inexact = (name, s) }
                continue
            }
            let stride = height / s[1]
            guard stride == width / s[2] else { continue }
            if stride < deepest { break }
            deepest = stride
            last[stride] = n.output
        }
        if let (name, s) = inexact {
            let stride = 1 << Int(log2(max(Double(height) / Double(s[1]), Double(width) / Double(s[2]))).rounded())
            throw ModelError.unsupported("\(source): node '\(name)' makes a \(s[1])×\(s[2]) map of the \(height)×\(width) input, not an exact fraction of it: "
                                         + "give an input height and width that are multiples of \(stride)")
        }
        let found = last.filter { $0.key >= 2 }.sorted { $0.key < $1.key }
        guard let bottom = found.last?.key, bottom >= 4 else {
            throw ModelError.unsupported("\(source): no backbone found — its feature maps at \(height)×\(width) never go below half the input's size "
                                         + "(an encoder halves it at least twice)")
        }
        self.graph = graph
        self.source = source
        features = found.map { (stride: $0.key, value: $0.value) }
    }

    /// The stride of the deepest map; the input's height and width are multiples of it.
    public var deepestStride: Int { features.last!.stride }

    /// One line for the log: each map's stride, name and size.
    public var summary: String {
        features.map { f in
            let name = graph.nodes.first { $0.output == f.value }?.name ?? "\(f.value)"
            return "stride \(f.stride): '\(name)' \(graph.shape(of: f.value))"
        }.joined(separator: ", ")
    }
}
