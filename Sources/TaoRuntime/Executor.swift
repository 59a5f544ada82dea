import TaoGraph
import TaoKernels

/// Whether a plan computes gradients and uses batch statistics.
public enum Mode: Sendable { case training, inference }

/// The arithmetic of an inference plan's convolutions and matrix products: fp32, or bfloat16
/// inputs and weights with fp32 accumulation and fp32 outputs (`Kernels.hasBF16` processors).
public enum Arithmetic: String, Sendable, CaseIterable { case fp32, bf16 }

extension Executor {
    /// Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX), and what it dispatches to.
    public static var supportsBF16: Bool { Kernels.hasBF16 }
    public static var cpuISA: String { Kernels.cpuISA }
    /// Where bf16 runs but slower than fp32 (AVX512-BF16 without AMX), the warning that says so;
    /// nil with AMX (or without bf16 at all, where bf16 is refused).
    public static var bf16SlowerNote: String? {
        guard Kernels.hasBF16, !Kernels.hasAMX else { return nil }
        return "note: bf16 without AMX (oneDNN finds \(Kernels.cpuISA)): oneDNN 2.6's bf16 convolutions run at about half fp32's rate on "
            + "such processors (measured on an AVX512-BF16 Xeon, a 3×3 convolution 64→64 at 56², batch 32: 161–176 against 338–344 GFLOP/s "
            + "forward, 160–172 against 256–300 backward), so this runs slower than fp32; bf16 pays on processors with AMX"
    }
}

/// Errors from planning a graph for execution.
public enum RuntimeError: Error, CustomStringConvertible {
    case kernel(node: String, KernelError)
    case badInput(String)
    public var description: String {
        switch self {
        case let .kernel(node, e): "node '\(node)': \(e)"
        case let .badInput(m): m
        }
    }
}

/// A tensor during execution: its oneDNN layout, its buffer and, when training, its gradient.
final class RValue {
    let md: MemoryDesc
    let mem: Memory
    let needsGrad: Bool
    /// Computed from parameters only: its reorders run when the parameters change, not every pass.
    let constant: Bool
    var grad: Memory?
    var contributions = 0
    init(_ md: MemoryDesc, _ mem: Memory, needsGrad: Bool, constant: Bool = false) {
        self.md = md; self.mem = mem; self.needsGrad = needsGrad; self.constant = constant
    }
}

/// One unit of work in a plan: a bound oneDNN primitive or a small Swift kernel with the memories
/// it touches (Swift kernels read `Memory.floats` when they run: buffers are bound after planning).
enum RStep {
    case prim(Step)
    case swift([Memory], () -> Void)
    /// A kernel of our own standing for a oneDNN primitive kind (e.g. "convolution"), with its
    /// implementation's name for reports (e.g. "winograd_4x3:tao_avx2").
    case kernel(kind: String, implementation: String, [Memory], () -> Void)
    @inline(__always) func run() {
        switch self {
        case .prim(let s): s.run()
        case .swift(_, let f), .kernel(_, _, _, let f): f()
        }
    }
    var memories: [Memory] {
        switch self {
        case .prim(let s): s.memories
        case .swift(let m, _), .kernel(_, _, let m, _): m
        }
    }
}

/// Runs a `Graph` for one batch size: forward, and in training mode reverse-mode autodiff.
///
/// Planning walks the graph once, creates every oneDNN primitive (activations stay in the blocked
/// layouts the primitives choose; reorders are inserted only where layouts disagree) and binds all
/// buffers, so `forward()` and `backward()` allocate nothing and create no primitives.
public final class Executor {
    public let graph: Graph
    public let batch: Int
    public let mode: Mode
    public let parameters: ParameterStore

    var values: [RValue?]
    var paramValues: [Int: RValue] = [:]
    var forwardSteps: [RStep] = []
    var prepSteps: [RStep] = []
    var backwardSteps: [RStep] = []
    var backwardRules: [(String, RValue, () throws -> Void)] = []
    var deferred: [Memory] = []
    var memoryPlan: MemoryPlan?
    /// Layout conversions already planned, by source value. Each entry holds its source: a value
    /// freed during planning would let a new value take its address, and with it the conversions
    /// of the dead one (wrong data, seen as EfficientNet-B1 results that changed from run to run).
    var conversions: [ObjectIdentifier: (source: RValue, converted: [(MemoryDesc, RValue)])] = [:]
    var currentNode = ""
    var frozen: Set<Int>
    var frozenBatchNorm: Set<String>
    var preparedVersion = -1
    var rng: SplitMix64
    var constantMemories: [Memory] = []
    let winograd: Bool
    public let arithmetic: Arithmetic
    /// Convolutions planned on our own Winograd kernel (`WinogradConvolution`, AVX2 processors).
    public internal(set) var ownWinogradConvolutions = 0
    /// Training convolutions planned as one matrix product on small maps (`SmallMapConvolution`).
    public internal(set) var smallMapConvolutions = 0
    var graphConsumers: [[Int]] = []
    /// bf16: the activations (value indices) kept in bf16 between convolutions (`bf16Chains`).
    var bf16Outputs: Set<Int> = []
    /// How many activations bf16 keeps in bf16 (see `bf16Chains`).
    public var bf16Activations: Int { bf16Outputs.count }
    private var outputValues: [RValue] = []
    private var inputValues: [RValue] = []

    /// Plans `graph` for `batch` samples.
    ///
    /// - Parameters:
    ///   - frozen: parameter names that receive no gradient.
    ///   - frozenBatchNorm: batch-norm node names that use their running statistics even in training.
    ///   - inputGradients: also compute gradients with respect to the graph inputs.
    ///   - fuse: run chains of ops as one primitive where oneDNN can (conv+BN+activation+add at
    ///     inference, BN+ReLU in training); off only to compare against the unfused plan.
    ///   - winograd: compute 3×3 stride-1 convolutions with Winograd's algorithm (F(4×4, 3×3)):
    ///     ~1.4× faster ResNet training here, at a rounding error still far below training noise.
    ///   - arithmetic: bf16 runs the convolutions, transposed convolutions and dense layers on
    ///     bfloat16 inputs and weights (fp32 accumulation, fp32 outputs; at inference batch norms
    ///     folded in fp32 before the weights are rounded). In training their backward passes take the
    ///     output gradient in bf16 too and give fp32 weight gradients to the fp32 master weights.
    ///     Activations between them stay bf16 where every reader takes bf16 (`bf16Chains`); the
    ///     loss, batch-norm statistics and the ops without bf16 kernels stay fp32.
    public init(graph: Graph, batch: Int, mode: Mode, parameters: ParameterStore, frozen: Set<String> = [],
                frozenBatchNorm: Set<String> = [], inputGradients: Bool = false, seed: UInt64 = 0, fuse: Bool = true,
                winograd: Bool = true, arithmetic: Arithmetic = .fp32) throws {
        guard batch >= 1 else { throw RuntimeError.badInput("batch size must be at least 1, got \(batch)") }
        if arithmetic == .bf16 {
            guard Kernels.hasBF16 else {
                throw RuntimeError.badInput("bf16 needs a processor with AVX512-BF16 or AMX; oneDNN finds \(Kernels.cpuISA) here (it would only emulate bf16, slower than fp32): use fp32")
            }
        }
        self.arithmetic = arithmetic
        self.graph = graph
        self.batch = batch
        self.mode = mode
        self.parameters = parameters
        self.frozen = Set(frozen.compactMap { graph.parameterIndex(named: $0) })
        self.frozenBatchNorm = frozenBatchNorm
        self.rng = SplitMix64(seed: seed)
        self.winograd = winograd
        values = Array(repeating: nil, count: graph.valueCount)
        for v in graph.inputs {
            let md = MemoryDesc(graph.shape(of: v).batched(batch).dims)
            let r = RValue(md, buffer(md), needsGrad: mode == .training && inputGradients)
            values[v.index] = r
            inputValues.append(r)
        }
        graphConsumers = graph.consumers()
        let plan = fuse ? FusionPlan(graph: graph, mode: mode, frozenBatchNorm: frozenBatchNorm) : FusionPlan()
        if arithmetic == .bf16 { bf16Outputs = Self.bf16Chains(graph, plan, graphConsumers, mode: mode) }
        for (i, node) in graph.nodes.enumerated() where !plan.absorbed.contains(i) {
            currentNode = node.name
            do {
                if let tail = plan.convTails[i], case .conv2d(let c) = node.op {
                    values[tail.output.index] = try lowerFusedConv(node, index: i, c, tail)
                } else if let tail = plan.convTails[i], case .convTranspose2d(let c) = node.op {
                    values[tail.output.index] = try lowerInferenceConvTranspose(node, c, tail)
                } else if let j = plan.bnReLU[i], case .batchNorm(let bn) = node.op {
                    values[graph.nodes[j].output.index] = try lowerBatchNorm(node, bn, fuseReLU: true)
                } else {
                    values[node.output.index] = try lower(node)
                }
            } catch let e as KernelError { throw RuntimeError.kernel(node: node.name, e) }
        }
        currentNode = "outputs"
        for o in graph.outputs {
            let v = values[o.index]!
            let plain = MemoryDesc(v.md.dims)
            do { outputValues.append(try ensure(v, plain)) } catch let e as KernelError { throw RuntimeError.kernel(node: "output", e) }
        }
        if mode == .training {
            for o in outputValues where o.needsGrad { _ = grad(o); o.contributions = 1 }
            for (name, out, rule) in backwardRules.reversed() {
                currentNode = name
                // A value nobody downstream contributed to has a zero gradient (buffers are reused, not zeroed).
                if out.contributions == 0 {
                    let g = grad(out)
                    backwardSteps.append(.swift([g]) { g.zero() })
                }
                do { try rule() } catch let e as KernelError { throw RuntimeError.kernel(node: name, e) }
            }
        }
        var persistent = Set<ObjectIdentifier>()
        for r in inputValues + outputValues + Array(paramValues.values) {
            persistent.insert(ObjectIdentifier(r.mem))
            if let g = r.grad { persistent.insert(ObjectIdentifier(g)) }
        }
        for m in constantMemories { persistent.insert(ObjectIdentifier(m)) }
        memoryPlan = MemoryPlan(deferred: deferred, persistent: persistent, steps: (forwardSteps + backwardSteps).map(\.memories))
    }

    /// Bytes of the shared arena and of all transient buffers had each had its own storage.
    public var memoryUse: (arena: Int, unplanned: Int) { (memoryPlan?.arenaBytes ?? 0, memoryPlan?.unplannedBytes ?? 0) }

    // MARK: public API

    /// Copies a plain NCHW (or N×F) batch into input `i`.
    public func setInput(_ i: Int, _ t: Tensor) throws {
        let r = inputValues[i]
        guard t.shape.dims == r.md.dims else {
            throw RuntimeError.badInput("input '\(graph.inputNames[i])' expects shape \(Shape(r.md.dims)), got \(t.shape)")
        }
        t.withUnsafeBufferPointer { r.mem.floats.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// Direct access to input `i`'s plain buffer (batch × per-sample shape).
    public func inputPointer(_ i: Int) -> UnsafeMutablePointer<Float> { inputValues[i].mem.floats }

    /// Restarts the generator behind dropout masks (at each epoch, so that resumed runs repeat exactly).
    public func reseed(_ seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// Runs the forward pass.
    public func forward() {
        if mode == .training || preparedVersion != parameters.version {
            for s in prepSteps { s.run() }
            preparedVersion = parameters.version
        }
        for s in forwardSteps { s.run() }
    }

    /// Output `i` as a plain tensor (a copy).
    public func output(_ i: Int = 0) -> Tensor {
        let r = outputValues[i]
        return Tensor(shape: Shape(r.md.dims), values: Array(UnsafeBufferPointer(start: r.mem.floats, count: r.md.dims.reduce(1, *))))
    }

    public func outputPointer(_ i: Int = 0) -> UnsafeMutablePointer<Float> { outputValues[i].mem.floats }
    public func outputShape(_ i: Int = 0) -> Shape { Shape(outputValues[i].md.dims) }

    /// The buffer to write the loss gradient with respect to output `i` into, before `backward()`.
    public func outputGradientPointer(_ i: Int = 0) -> UnsafeMutablePointer<Float> {
        precondition(mode == .training, "gradients exist only in training mode")
        return outputValues[i].grad!.floats
    }

    /// Runs the backward pass from the output gradients; parameter gradients are overwritten.
    public func backward() {
        precondition(mode == .training, "backward() needs an executor planned in training mode")
        for s in backwardSteps { s.run() }
    }

    /// Runs the backward pass and calls `ready` with the trainable parameters whose gradients are
    /// final, as soon as they are (the last step touching a gradient's buffer has run), so that
    /// their exchange between ranks can start while backward goes on. Every trainable parameter is
    /// named once.
    public func backward(ready: ([Int]) -> Void) {
        precondition(mode == .training, "backward() needs an executor planned in training mode")
        let after = gradientsReadyAfter
        if !after.atStart.isEmpty { ready(after.atStart) }
        for (k, s) in backwardSteps.enumerated() {
            s.run()
            if !after.steps[k].isEmpty { ready(after.steps[k]) }
        }
    }

    /// For each backward step, the parameters whose gradient buffers no later step touches;
    /// `atStart`: gradients no step touches.
    public private(set) lazy var gradientsReadyAfter: (atStart: [Int], steps: [[Int]]) = {
        var last: [ObjectIdentifier: Int] = [:]
        for (k, s) in backwardSteps.enumerated() { for m in s.memories { last[ObjectIdentifier(m)] = k } }
        var steps = [[Int]](repeating: [], count: backwardSteps.count), atStart: [Int] = []
        for i in paramValues.keys.sorted() {
            guard let g = paramValues[i]?.grad else { continue }
            if let k = last[ObjectIdentifier(g)] { steps[k].append(i) } else { atStart.append(i) }
        }
        return (atStart, steps)
    }()

    /// Gradient of trainable parameter `i` (plain, the parameter's shape), or nil if it has none.
    public func parameterGradientPointer(_ i: Int) -> UnsafeMutablePointer<Float>? {
        paramValues[i]?.grad?.floats
    }

    public func parameterGradient(_ name: String) -> Tensor? {
        guard let i = graph.parameterIndex(named: name), let p = parameterGradientPointer(i) else { return nil }
        let s = graph.parameters[i].shape
        return Tensor(shape: s, values: Array(UnsafeBufferPointer(start: p, count: s.count)))
    }

    /// Gradient with respect to input `i` (requires `inputGradients: true`).
    public func inputGradient(_ i: Int = 0) -> Tensor? {
        let r = inputValues[i]
        guard let g = r.grad else { return nil }
        return Tensor(shape: Shape(r.md.dims), values: Array(UnsafeBufferPointer(start: g.floats, count: r.md.dims.reduce(1, *))))
    }

    /// The oneDNN implementation of every primitive in the plan (e.g. "jit_wino_4x3:avx512_core").
    public var implementations: [String] {
        (prepSteps + forwardSteps + backwardSteps).compactMap {
            switch $0 {
            case .prim(let s): return s.primitive.desc.implementation
            case .kernel(_, let implementation, _, _): return implementation
            case .swift: return nil
            }
        }
    }

    /// How many primitives of each kind the forward pass runs (reorders included), for tests and reports.
    public var forwardKinds: [String: Int] {
        forwardSteps.reduce(into: [:]) {
            switch $1 {
            case .prim(let s): $0[s.primitive.desc.kind, default: 0] += 1
            case .kernel(let kind, _, _, _): $0[kind, default: 0] += 1
            case .swift: break
            }
        }
    }

    /// Number of primitives and Swift kernels per pass, for tests and reports.
    public var stepCounts: (prep: Int, forward: Int, backward: Int) { (prepSteps.count, forwardSteps.count, backwardSteps.count) }
}

// MARK: planning helpers shared by the op lowerings
extension Executor {
    /// bf16 keeps activations in bf16 between the layers that run on bf16, the values the readers
    /// would round to bf16 anyway, without writing fp32 and converting it once per reader:
    /// - inference: a convolution's result (after its fused batch norm, activation and sum) that only
    ///   convolutions read, as their data input, or an unfused activation reads on the way to them;
    ///   and the residual stream (`residualStream`);
    /// - training: `trainingStream`.
    /// Results read by concatenation, the loss or other fp32 ops, and graph outputs, stay fp32.
    static func bf16Chains(_ g: Graph, _ plan: FusionPlan, _ consumers: [[Int]], mode: Mode) -> Set<Int> {
        if mode == .training { return trainingStream(g, plan, consumers) }
        let outputs = Set(g.outputs.map(\.index))
        /// Whether only convolutions read `v`, each as its data input.
        func convolutionsOnly(_ v: ValueID) -> Bool {
            let readers = consumers[v.index]
            return !outputs.contains(v.index) && !readers.isEmpty && readers.allSatisfy { readsAsData(g, plan, node: $0, v.index) }
        }
        /// The node after `v` on a chain: its only reader, an activation oneDNN computes on bf16, and
        /// that node's result.
        func next(_ v: ValueID) -> ValueID? {
            guard !outputs.contains(v.index), consumers[v.index].count == 1 else { return nil }
            let j = consumers[v.index][0], r = g.nodes[j]
            guard !plan.absorbed.contains(j), r.inputs.first == v, case .activation(let a) = r.op, a != .erf else { return nil }
            return r.output
        }
        var kept: Set<Int> = []
        for (i, n) in g.nodes.enumerated() where !plan.absorbed.contains(i) {
            guard case .conv2d = n.op else { continue }
            var chain = [plan.convTails[i]?.output ?? n.output]
            while true {
                if convolutionsOnly(chain.last!) { kept.formUnion(chain.map(\.index)); break }
                guard chain.count < 3, let v = next(chain.last!) else { break }
                chain.append(v)
            }
        }
        return kept.union(residualStream(g, plan, consumers))
    }

    /// Training: every activation that can stay bf16 from one layer to the next — the largest set
    /// of results of convolutions, batch norms (with a fused ReLU: its result), activations, sums
    /// of two maps of one shape, and pooling, such that
    /// - every reader takes bf16: a convolution (its data input), a batch norm, an activation,
    ///   pooling (also global), a dense layer (its input), a sum (either operand);
    /// - no graph output is among them;
    /// - a batch norm's, activation's, sum's or pooling's result is in the set exactly when its
    ///   (first) input is: these ops write the data type they read (the batch norm on bf16 data
    ///   with fp32 statistics, scale and shift).
    /// Found as in `residualStream`: start from all of them, drop until nothing changes. A ResNet's
    /// whole residual stream (block outputs, the sums, the shortcut's batch norm) and MobileNetV2's
    /// linear bottlenecks stay bf16 this way, up to the global pooling; a concatenation or a
    /// transposed convolution keeps its inputs fp32. Their gradients have the values' data type.
    static func trainingStream(_ g: Graph, _ plan: FusionPlan, _ consumers: [[Int]]) -> Set<Int> {
        let outputs = Set(g.outputs.map(\.index))
        var tiedTo: [Int: Int] = [:]   // result → the input whose data type it has
        var stream = Set<Int>()
        for (j, n) in g.nodes.enumerated() where !plan.absorbed.contains(j) {
            let out = (plan.bnReLU[j].map { g.nodes[$0].output } ?? n.output).index
            switch n.op {
            case .conv2d: stream.insert(out)
            case .batchNorm, .pool2d: tiedTo[out] = n.inputs[0].index
            case .activation(let a) where a != .erf: tiedTo[out] = n.inputs[0].index
            case .add where g.shape(of: n.inputs[0]) == g.shape(of: n.inputs[1]): tiedTo[out] = n.inputs[0].index
            default: break
            }
        }
        stream.formUnion(tiedTo.keys)
        /// Whether node `j` reads value `v` in bf16.
        func takesBF16(_ j: Int, _ v: Int) -> Bool {
            let r = g.nodes[j]
            guard !plan.absorbed.contains(j) else { return false }
            let onlyFirst = r.inputs.first?.index == v && !r.inputs.dropFirst().contains { $0.index == v }
            switch r.op {
            case .conv2d: return readsAsData(g, plan, node: j, v)
            case .batchNorm, .pool2d, .globalAveragePool, .dense: return onlyFirst
            case .activation(let a): return a != .erf && onlyFirst
            case .add: return g.shape(of: r.inputs[0]) == g.shape(of: r.inputs[1])
            default: return false
            }
        }
        var changed = true
        while changed {
            changed = false
            for v in stream.sorted() where stream.contains(v) {
                var keep = !outputs.contains(v) && !consumers[v].isEmpty && consumers[v].allSatisfy { takesBF16($0, v) }
                if keep, let u = tiedTo[v] { keep = stream.contains(u) }
                if !keep { stream.remove(v); changed = true }
            }
            for (v, u) in tiedTo where !stream.contains(v) && stream.contains(u) { stream.remove(u); changed = true }
        }
        return stream
    }

    /// Inference: the residual stream in bf16 — convolution results read only by convolutions, as
    /// their data input or as the addend their fused residual sum adds into its output (the sum
    /// then runs on a bf16 output: a convolution with a bf16 addend writes bf16), or by pooling
    /// (global pooling's result is fp32; other pooling writes the type it reads, so its result is
    /// in the stream exactly when its input is). The largest such set: start from every
    /// convolution's and pooling's result and drop, until nothing changes, each one with another
    /// reader, or tied by a residual sum or pooling to one dropped. A ResNet's whole stream, from
    /// the stem through the max pooling and every block to the global pooling, stays bf16.
    static func residualStream(_ g: Graph, _ plan: FusionPlan, _ consumers: [[Int]]) -> Set<Int> {
        let outputs = Set(g.outputs.map(\.index))
        var result: [Int: Int] = [:]       // convolution node → its result's value index
        var sumInto: [Int: Int] = [:]      // absorbed residual-add node → the convolution fusing it
        var pooled: [Int: Int] = [:]       // pooling's result → its input
        for (i, n) in g.nodes.enumerated() where !plan.absorbed.contains(i) {
            switch n.op {
            case .conv2d:
                let tail = plan.convTails[i]
                result[i] = (tail?.output ?? n.output).index
                if let tail, let add = tail.add, let j = tail.absorbed.first(where: { g.nodes[$0] == add }) { sumInto[j] = i }
            case .pool2d: pooled[n.output.index] = n.inputs[0].index
            default: break
            }
        }
        func takesBF16(_ j: Int, _ r: Int) -> Bool {
            if let conv = sumInto[j] { return plan.convTails[conv]?.addend?.index == r && stream.contains(result[conv]!) }
            let n = g.nodes[j]
            switch n.op {
            case .globalAveragePool: return !plan.absorbed.contains(j)
            case .pool2d: return !plan.absorbed.contains(j) && stream.contains(n.output.index)
            default: return readsAsData(g, plan, node: j, r)
            }
        }
        var stream = Set(result.values).union(pooled.keys)
        var changed = true
        while changed {
            changed = false
            for (i, r) in result where stream.contains(r) {
                var keep = !outputs.contains(r) && !consumers[r].isEmpty
                if keep, let a = plan.convTails[i]?.addend { keep = stream.contains(a.index) }   // a bf16 output needs a bf16 addend
                if keep { keep = consumers[r].allSatisfy { takesBF16($0, r) } }
                if !keep { stream.remove(r); changed = true }
            }
            for (r, x) in pooled where stream.contains(r) {
                let keep = stream.contains(x) && !outputs.contains(r) && !consumers[r].isEmpty && consumers[r].allSatisfy { takesBF16($0, r) }
                if !keep { stream.remove(r); changed = true }
            }
            for (r, x) in pooled where !stream.contains(r) && stream.contains(x) { stream.remove(x); changed = true }
        }
        return stream
    }

    /// Whether node `j` is a convolution (not fused away) that reads value `v` as its data input only.
    static func readsAsData(_ g: Graph, _ plan: FusionPlan, node j: Int, _ v: Int) -> Bool {
        let r = g.nodes[j]
        guard case .conv2d = r.op, !plan.absorbed.contains(j), r.inputs.first?.index == v else { return false }
        return !r.inputs.dropFirst().contains { $0.index == v }
    }

    /// The data type a convolution writes `output` in (bf16 where `bf16Chains` chose it).
    func activationType(_ output: ValueID) -> DataType { bf16Outputs.contains(output.index) ? .bf16 : .f32 }

    func value(_ v: ValueID) -> RValue {
        if case .parameter(let i) = graph.source(of: v) { return param(i, logicalDims: graph.parameters[i].shape.dims) }
        return values[v.index]!
    }

    /// A parameter seen with `logicalDims` (same bytes, plain), wrapping the store's buffer.
    func param(_ i: Int, logicalDims: [Int], strides: [Int]? = nil) -> RValue {
        if let p = paramValues[i] { return p }
        let md = strides.map { MemoryDesc(dims: logicalDims, strides: $0) } ?? MemoryDesc(logicalDims)
        let needs = mode == .training && graph.parameters[i].role.isTrainable && !frozen.contains(i)
        let r = RValue(md, Memory(md, wrapping: UnsafeMutableRawPointer(parameters.pointer(i))), needsGrad: needs, constant: true)
        paramValues[i] = r
        return r
    }

    func paramIndex(_ v: ValueID) -> Int {
        guard case .parameter(let i) = graph.source(of: v) else { preconditionFailure("value \(v) of '\(currentNode)' is not a parameter") }
        return i
    }

    func newValue(_ md: MemoryDesc, needsGrad: Bool) -> RValue { RValue(md, buffer(md), needsGrad: mode == .training && needsGrad) }

    /// A buffer placed by the memory plan once planning is done.
    func buffer(_ md: MemoryDesc) -> Memory {
        let m = Memory(deferred: md)
        deferred.append(m)
        return m
    }

    /// A value computed from parameters only; it keeps its contents between passes.
    func constantValue(_ md: MemoryDesc) -> RValue {
        let m = buffer(md)
        constantMemories.append(m)
        return RValue(md, m, needsGrad: false, constant: true)
    }

    func step(_ pd: PrimitiveDesc, _ bindings: [(Arg, Memory)]) throws -> RStep {
        .prim(Step(try Primitive(pd), bindings))
    }

    /// `v` in layout `md`, adding a reorder (and its reverse for the gradient) when they differ.
    /// Reorders of parameters run only when the parameters change.
    func ensure(_ v: RValue, _ md: MemoryDesc, differentiable: Bool = true) throws -> RValue {
        if v.md == md { return v }
        let key = ObjectIdentifier(v)
        if let entry = conversions[key], entry.source === v, let hit = entry.converted.first(where: { $0.0 == md }) { return hit.1 }
        let out = v.constant ? constantValue(md) : newValue(md, needsGrad: v.needsGrad && differentiable)
        let s = try step(Kernels.reorder(from: v.md, to: md), [(.src, v.mem), (.dst, out.mem)])
        if v.constant { prepSteps.append(s) } else { forwardSteps.append(s) }
        conversions[key, default: (v, [])].converted.append((md, out))
        onBackward(out) { [unowned self] in
            let g = self.grad(out)
            try self.contribute(to: [v]) { t in [try self.step(Kernels.reorder(from: md, to: v.md), [(.src, g), (.dst, t[0]!)])] }
        }
        return out
    }

    /// During backward planning: `m` in layout `md`, reordering into a scratch buffer first if needed.
    func readAs(_ m: Memory, _ md: MemoryDesc) throws -> Memory {
        if m.desc == md { return m }
        let tmp = buffer(md)
        backwardSteps.append(try step(Kernels.reorder(from: m.desc, to: md), [(.src, m), (.dst, tmp)]))
        return tmp
    }

    /// Steps that compute into a buffer of layout `md` and leave the result in `target`.
    func writeVia(_ target: Memory, _ md: MemoryDesc, _ compute: (Memory) throws -> RStep) throws -> [RStep] {
        if target.desc == md { return [try compute(target)] }
        let tmp = buffer(md)
        return [try compute(tmp), try step(Kernels.reorder(from: md, to: target.desc), [(.src, tmp), (.dst, target)])]
    }

    /// The gradient buffer of `v` (allocated on first use, same layout as `v`).
    func grad(_ v: RValue) -> Memory {
        if let g = v.grad { return g }
        let g = buffer(v.md)
        v.grad = g
        return g
    }

    /// Plans backward steps that write gradient contributions for several values at once.
    ///
    /// `write` receives, per value, the buffer to write into: the value's gradient itself for its
    /// first contribution, a scratch buffer that is then added for later ones, a scratch that is
    /// discarded when the value needs no gradient, and nil for a nil value.
    func contribute(to targets: [RValue?], _ write: ([Memory?]) throws -> [RStep]) throws {
        var buffers: [Memory?] = []
        var accumulate: [(Memory, Memory)] = []
        for t in targets {
            guard let t else { buffers.append(nil); continue }
            if !t.needsGrad { buffers.append(buffer(t.md)); continue }
            if t.contributions == 0 {
                buffers.append(grad(t))
            } else {
                let tmp = buffer(t.md)
                buffers.append(tmp)
                accumulate.append((grad(t), tmp))
            }
            t.contributions += 1
        }
        backwardSteps += try write(buffers)
        for (g, tmp) in accumulate {
            backwardSteps.append(try step(Kernels.binary(.add, src0: g.desc, src1: tmp.desc, dst: g.desc), [(.src, g), (.src1, tmp), (.dst, g)]))
        }
    }

    /// Registers the backward rule of the node being lowered, if its output needs a gradient.
    func onBackward(_ out: RValue, _ rule: @escaping () throws -> Void) {
        if out.needsGrad { backwardRules.append((currentNode, out, rule)) }
    }

    /// Per-sample dims with the batch in front.
    func dims(_ v: ValueID) -> [Int] { [batch] + graph.shape(of: v).dims }
}
