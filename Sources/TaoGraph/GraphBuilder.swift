import TaoTensor

/// Builds a `Graph` layer by layer, naming parameters by stable dotted paths
/// (`<layer name>.weight`, `.bias`, `.running_mean`, …).
///
/// Shapes are inferred as nodes are added; the first shape error is kept and thrown by `build`.
public struct GraphBuilder {
    private enum Entry { case input(String, Shape), parameter(ParameterInfo), node(name: String, op: Op, inputs: [ValueID]) }
    private var entries: [Entry] = []
    private var shapes: [Shape] = []
    private var firstError: GraphError?
    /// The initializer of the conv and dense weights added from now on (nil: the role's default).
    public var weightInitializer: ParameterInit?
    /// Gives a node whose name is taken the name with "_2", "_3", … appended, in place of the
    /// duplicate-name error `build` throws (an importer's own helper nodes beside a file's names).
    public var renamesDuplicateNodes = false
    private var names = Set<String>()

    public init() {}

    /// The per-sample shape of a value added so far.
    public func shape(_ v: ValueID) -> Shape { shapes[v.index] }

    /// The output of the last node added under `name`, if any.
    /// Whether a node or parameter has this name.
    public func isTaken(_ name: String) -> Bool { names.contains(name) }

    public func value(named name: String) -> ValueID? {
        guard let i = entries.lastIndex(where: { if case .node(name, _, _) = $0 { true } else { false } }) else { return nil }
        return ValueID(i)
    }

    public mutating func input(_ name: String, _ shape: Shape) -> ValueID {
        entries.append(.input(name, shape)); shapes.append(shape)
        return ValueID(entries.count - 1)
    }

    public mutating func parameter(_ name: String, _ shape: Shape, role: ParameterRole) -> ValueID {
        let initializer = [.convWeight, .denseWeight].contains(role) ? weightInitializer : nil
        entries.append(.parameter(ParameterInfo(name: name, shape: shape, role: role, initializer: initializer))); shapes.append(shape)
        names.insert(name)
        return ValueID(entries.count - 1)
    }

    /// Adds a node; its output shape follows from the op's shape rule.
    @discardableResult
    public mutating func node(_ name: String, _ op: Op, _ inputs: [ValueID]) -> ValueID {
        var name = name
        if renamesDuplicateNodes, names.contains(name) {
            var k = 2
            while names.contains("\(name)_\(k)") { k += 1 }
            name = "\(name)_\(k)"
        }
        names.insert(name)
        let inShapes = inputs.map { shapes[$0.index] }
        var out: Shape = inShapes.first ?? [1]
        do { out = try op.outputShape(inShapes) } catch {
            if firstError == nil { firstError = .shape(node: name, op: op.kind, inputShapes: inShapes, message: error.message) }
        }
        entries.append(.node(name: name, op: op, inputs: inputs)); shapes.append(out)
        return ValueID(entries.count - 1)
    }

    /// The names of the nodes added so far, in the order they were added (an imported file's order,
    /// which `Graph` may reorder).
    public var nodeNames: [String] {
        entries.compactMap { if case let .node(name, _, _) = $0 { name } else { nil } }
    }

    /// Adds the part of `g` that `outputs` depend on, `g`'s inputs bound to `inputs`; its parameters
    /// and nodes keep their names (a backbone cut from another model). Returns this builder's values
    /// for `outputs`.
    public mutating func append(_ g: Graph, inputs: [ValueID], outputs: [ValueID]) -> [ValueID] {
        precondition(inputs.count == g.inputs.count, "append: \(g.inputs.count) inputs to bind, \(inputs.count) given")
        var producer: [Int: Int] = [:]
        for (i, n) in g.nodes.enumerated() { producer[n.output.index] = i }
        var needed = Set<Int>(), stack = outputs.map(\.index)
        while let v = stack.popLast() {
            guard needed.insert(v).inserted else { continue }
            if let i = producer[v] { stack += g.nodes[i].inputs.map(\.index) }
        }
        var map: [Int: ValueID] = [:]
        for (k, v) in g.inputs.enumerated() { map[v.index] = inputs[k] }
        for (i, p) in g.parameters.enumerated() where needed.contains(g.parameterValue(i).index) {
            entries.append(.parameter(p)); shapes.append(p.shape); names.insert(p.name)
            map[g.parameterValue(i).index] = ValueID(entries.count - 1)
        }
        for n in g.nodes where needed.contains(n.output.index) {
            map[n.output.index] = node(n.name, n.op, n.inputs.map { map[$0.index]! })
        }
        return outputs.map { map[$0.index]! }
    }

    /// Renumbers values (inputs, then parameters, then nodes) and validates the graph.
    public func build(outputs: [ValueID]) throws(GraphError) -> Graph {
        if let e = firstError { throw e }
        for o in outputs where o.index < 0 || o.index >= entries.count { throw .unknownOutput(o) }
        var map = [Int](repeating: -1, count: entries.count)
        var next = 0
        var ins: [(String, Shape)] = [], params: [ParameterInfo] = []
        for (i, e) in entries.enumerated() { if case let .input(n, s) = e { map[i] = next; next += 1; ins.append((n, s)) } }
        for (i, e) in entries.enumerated() { if case let .parameter(p) = e { map[i] = next; next += 1; params.append(p) } }
        var nodes: [Node] = []
        for (i, e) in entries.enumerated() {
            if case let .node(name, op, inputs) = e {
                map[i] = next; next += 1
                nodes.append(Node(name: name, op: op, inputs: inputs.map { ValueID(map[$0.index]) }, output: ValueID(map[i])))
            }
        }
        return try Graph(inputs: ins, parameters: params, nodes: nodes, outputs: outputs.map { ValueID(map[$0.index]) })
    }
}

// Layer helpers: each adds its parameters under `name` and returns the output value.
extension GraphBuilder {
    public mutating func conv2d(_ x: ValueID, _ name: String, out: Int, kernel: Int, stride: Int = 1,
                                padding: Padding2D? = nil, dilation: Int = 1, groups: Int = 1, bias: Bool = false) -> ValueID {
        let cin = shape(x)[0]
        let pad = padding ?? Padding2D(((kernel - 1) * dilation) / 2)
        let w = parameter("\(name).weight", [out, cin / max(groups, 1), kernel, kernel], role: .convWeight)
        var ins = [x, w]
        if bias { ins.append(parameter("\(name).bias", [out], role: .convBias)) }
        return node(name, .conv2d(Conv2D(outChannels: out, kernel: [kernel, kernel], stride: [stride, stride],
                                         dilation: [dilation, dilation], padding: pad, groups: groups, hasBias: bias)), ins)
    }

    public mutating func convTranspose2d(_ x: ValueID, _ name: String, out: Int, kernel: Int, stride: Int = 1,
                                         padding: Padding2D = .zero, outputPadding: Int = 0, bias: Bool = false) -> ValueID {
        let cin = shape(x)[0]
        let w = parameter("\(name).weight", [cin, out, kernel, kernel], role: .convWeight)
        var ins = [x, w]
        if bias { ins.append(parameter("\(name).bias", [out], role: .convBias)) }
        return node(name, .convTranspose2d(ConvTranspose2D(outChannels: out, kernel: [kernel, kernel], stride: [stride, stride],
                                                           padding: padding, outputPadding: [outputPadding, outputPadding], hasBias: bias)), ins)
    }

    public mutating func batchNorm(_ x: ValueID, _ name: String, epsilon: Float = 1e-5, momentum: Float = 0.9) -> ValueID {
        let c = shape(x)[0]
        let ins = [x,
                   parameter("\(name).weight", [c], role: .bnScale),
                   parameter("\(name).bias", [c], role: .bnShift),
                   parameter("\(name).running_mean", [c], role: .bnMean),
                   parameter("\(name).running_var", [c], role: .bnVariance)]
        return node(name, .batchNorm(BatchNorm(epsilon: epsilon, momentum: momentum)), ins)
    }

    public mutating func activation(_ x: ValueID, _ a: Activation, _ name: String) -> ValueID {
        node(name, .activation(a), [x])
    }

    public mutating func relu(_ x: ValueID, _ name: String) -> ValueID { activation(x, .relu, name) }

    public mutating func dense(_ x: ValueID, _ name: String, out: Int, bias: Bool = true) -> ValueID {
        let f = shape(x)[0]
        let w = parameter("\(name).weight", [out, f], role: .denseWeight)
        var ins = [x, w]
        if bias { ins.append(parameter("\(name).bias", [out], role: .denseBias)) }
        return node(name, .dense(Dense(outFeatures: out, hasBias: bias)), ins)
    }

    public mutating func maxPool(_ x: ValueID, _ name: String, kernel: Int, stride: Int, padding: Int = 0) -> ValueID {
        node(name, .pool2d(Pool2D(.max, kernel: [kernel, kernel], stride: [stride, stride], padding: Padding2D(padding))), [x])
    }

    public mutating func avgPool(_ x: ValueID, _ name: String, kernel: Int, stride: Int, padding: Int = 0, countIncludePad: Bool = false) -> ValueID {
        node(name, .pool2d(Pool2D(.average, kernel: [kernel, kernel], stride: [stride, stride], padding: Padding2D(padding),
                                  countIncludePad: countIncludePad)), [x])
    }

    public mutating func globalAveragePool(_ x: ValueID, _ name: String) -> ValueID { node(name, .globalAveragePool, [x]) }
    public mutating func add(_ a: ValueID, _ b: ValueID, _ name: String) -> ValueID { node(name, .add, [a, b]) }
    public mutating func mul(_ a: ValueID, _ b: ValueID, _ name: String) -> ValueID { node(name, .mul, [a, b]) }
    public mutating func concat(_ xs: [ValueID], _ name: String, axis: Int = 1) -> ValueID { node(name, .concat(axis: axis), xs) }
    public mutating func flatten(_ x: ValueID, _ name: String) -> ValueID { node(name, .flatten, [x]) }
    public mutating func dropout(_ x: ValueID, _ name: String, rate: Float) -> ValueID { node(name, .dropout(rate: rate), [x]) }
}
