@_exported import TaoTensor

/// Identifies a value (graph input, parameter or node output) within one `Graph`.
public struct ValueID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }
    public var description: String { "%\(index)" }
}

/// What a parameter is for; decides its initial value, regularization scope and whether it trains.
public enum ParameterRole: String, Hashable, Sendable, Codable {
    case convWeight, convBias, denseWeight, denseBias, bnScale, bnShift, bnMean, bnVariance

    /// Running statistics are state, not trained by gradient descent.
    public var isTrainable: Bool { self != .bnMean && self != .bnVariance }
}

/// A named parameter: its stable dotted path (`layer1.0.conv1.weight`), shape and role.
public struct ParameterInfo: Hashable, Sendable, Codable {
    public var name: String
    public var shape: Shape
    public var role: ParameterRole
    /// How fresh values are drawn when not the role's default (e.g. Keras's Glorot-uniform for
    /// the architectures TAO builds with Keras defaults).
    public var initializer: ParameterInit?
    public init(name: String, shape: Shape, role: ParameterRole, initializer: ParameterInit? = nil) {
        self.name = name; self.shape = shape; self.role = role; self.initializer = initializer
    }
}

/// A fresh-value rule other than a role's default.
public enum ParameterInit: String, Hashable, Sendable, Codable {
    /// U(−b, b) with b = √(6 / (fan_in + fan_out)): Keras's default kernel initializer.
    case glorotUniform
}

/// Where a value comes from.
public enum ValueSource: Hashable, Sendable {
    case input(name: String)
    case parameter(index: Int)
    case node(index: Int)
}

/// One operation: its op, the values it reads and the value it produces.
public struct Node: Hashable, Sendable, Codable {
    public var name: String
    public var op: Op
    public var inputs: [ValueID]
    public var output: ValueID
    public init(name: String, op: Op, inputs: [ValueID], output: ValueID) {
        self.name = name; self.op = op; self.inputs = inputs; self.output = output
    }
}

/// Problems with a graph's structure, each naming the node concerned.
public enum GraphError: Error, CustomStringConvertible, Sendable, Equatable {
    case shape(node: String, op: String, inputShapes: [Shape], message: String)
    case cycle(nodes: [String])
    case undefinedValue(node: String, value: ValueID)
    case duplicateName(String)
    case unknownOutput(ValueID)

    public var description: String {
        switch self {
        case let .shape(node, op, shapes, message):
            "node '\(node)' (\(op)) with input shapes \(shapes.map(\.description).joined(separator: ", ")): \(message)"
        case let .cycle(nodes):
            "the graph has a cycle through nodes \(nodes.map { "'\($0)'" }.joined(separator: " -> "))"
        case let .undefinedValue(node, value):
            "node '\(node)' reads value \(value), which no input, parameter or node defines"
        case let .duplicateName(n):
            "two nodes or parameters are named '\(n)'"
        case let .unknownOutput(v):
            "graph output \(v) is not defined"
        }
    }
}

/// A model: nodes in topological order over values with known shapes.
///
/// Activation shapes are per sample (no batch axis); parameter shapes are full.
/// A graph is immutable once built and always valid: `init` sorts and checks it.
public struct Graph: Sendable {
    public private(set) var nodes: [Node]
    public private(set) var parameters: [ParameterInfo]
    public private(set) var inputs: [ValueID]
    public private(set) var inputNames: [String]
    public private(set) var outputs: [ValueID]
    public private(set) var sources: [ValueSource]
    public private(set) var shapes: [Shape]

    /// Builds a graph from nodes in any order; sorts them topologically and infers shapes.
    ///
    /// - Parameters:
    ///   - inputs: (name, per-sample shape) of each graph input; they get value ids 0..<inputs.count.
    ///   - parameters: parameters; they get the ids after the inputs.
    ///   - nodes: nodes whose outputs use the ids after the parameters.
    public init(inputs: [(String, Shape)], parameters: [ParameterInfo], nodes: [Node], outputs: [ValueID]) throws(GraphError) {
        let valueCount = inputs.count + parameters.count + nodes.count
        var sources = [ValueSource?](repeating: nil, count: valueCount)
        var shapes = [Shape?](repeating: nil, count: valueCount)
        for (i, (name, shape)) in inputs.enumerated() { sources[i] = .input(name: name); shapes[i] = shape }
        var names = Set<String>()
        for (i, p) in parameters.enumerated() {
            guard names.insert(p.name).inserted else { throw .duplicateName(p.name) }
            sources[inputs.count + i] = .parameter(index: i); shapes[inputs.count + i] = p.shape
        }
        var producer = [ValueID: Int]()
        for (i, n) in nodes.enumerated() {
            guard names.insert(n.name).inserted else { throw .duplicateName(n.name) }
            guard n.output.index < valueCount, sources[n.output.index] == nil, producer[n.output] == nil else {
                throw .undefinedValue(node: n.name, value: n.output)
            }
            producer[n.output] = i
        }
        // Kahn's algorithm; what remains unsorted lies on or behind a cycle.
        var pending = nodes.map { n in Set(n.inputs.filter { producer[$0] != nil }.map { producer[$0]! }) }
        for (i, n) in nodes.enumerated() {
            for v in n.inputs where v.index >= valueCount || (sources[v.index] == nil && producer[v] == nil) {
                throw .undefinedValue(node: nodes[i].name, value: v)
            }
        }
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, deps) in pending.enumerated() { for d in deps { consumers[d].append(i) } }
        var ready = (0..<nodes.count).filter { pending[$0].isEmpty }
        var order: [Int] = []
        while let i = ready.first {
            ready.removeFirst()
            order.append(i)
            for c in consumers[i] {
                pending[c].remove(i)
                if pending[c].isEmpty { ready.append(c) }
            }
        }
        if order.count < nodes.count {
            let stuck = Set(0..<nodes.count).subtracting(order)
            throw .cycle(nodes: Graph.findCycle(stuck: stuck, pending: pending, nodes: nodes))
        }
        var sorted: [Node] = []
        for i in order {
            let n = nodes[i]
            let inShapes = n.inputs.map { shapes[$0.index]! }
            do {
                shapes[n.output.index] = try n.op.outputShape(inShapes)
            } catch {
                throw .shape(node: n.name, op: n.op.kind, inputShapes: inShapes, message: error.message)
            }
            sources[n.output.index] = .node(index: sorted.count)
            sorted.append(n)
        }
        for o in outputs where o.index >= valueCount || shapes[o.index] == nil { throw .unknownOutput(o) }
        self.nodes = sorted
        self.parameters = parameters
        self.inputs = (0..<inputs.count).map(ValueID.init)
        self.inputNames = inputs.map(\.0)
        self.outputs = outputs
        self.sources = sources.map { $0! }
        self.shapes = shapes.map { $0! }
    }

    private static func findCycle(stuck: Set<Int>, pending: [Set<Int>], nodes: [Node]) -> [String] {
        // Walk dependencies inside the stuck set until a node repeats.
        var path: [Int] = []
        var seen = [Int: Int]()
        var cur = stuck.min()!
        while seen[cur] == nil {
            seen[cur] = path.count
            path.append(cur)
            cur = pending[cur].filter { stuck.contains($0) }.min()!
        }
        return (path[seen[cur]!...] + [cur]).reversed().map { nodes[$0].name }
    }

    public var valueCount: Int { shapes.count }
    public func shape(of v: ValueID) -> Shape { shapes[v.index] }
    public func source(of v: ValueID) -> ValueSource { sources[v.index] }
    /// The value holding parameter `i`.
    public func parameterValue(_ i: Int) -> ValueID { ValueID(inputs.count + i) }
    public func parameterIndex(named name: String) -> Int? { parameters.firstIndex { $0.name == name } }

    /// Parameter count of trainable parameters (running statistics excluded, as PyTorch counts).
    public var trainableParameterCount: Int {
        parameters.filter { $0.role.isTrainable }.reduce(0) { $0 + $1.shape.count }
    }

    /// Multiply-accumulates per sample over all nodes.
    public var macsPerSample: Int {
        nodes.reduce(0) { $0 + $1.op.macs(inputs: $1.inputs.map(shape(of:)), output: shape(of: $1.output)) }
    }

    /// For each value, the indices of the nodes that read it.
    public func consumers() -> [[Int]] {
        var c = [[Int]](repeating: [], count: valueCount)
        for (i, n) in nodes.enumerated() { for v in n.inputs { c[v.index].append(i) } }
        return c
    }
}

extension Graph {
    /// The same graph on inputs of other per-sample shapes (a fully convolutional model at another
    /// image size); every shape is inferred again, so a node that cannot take the new size is an error.
    public func withInputShapes(_ shapes: [Shape]) throws(GraphError) -> Graph {
        try Graph(inputs: Array(zip(inputNames, shapes)), parameters: parameters, nodes: nodes, outputs: outputs)
    }
}
