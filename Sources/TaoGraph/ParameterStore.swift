import Foundation

/// The values of a graph's parameters, indexed like `Graph.parameters`.
///
/// Storage is stable: assigning a tensor copies into the existing buffer, so runtimes that hold
/// pointers into the store see every update. `version` counts writes, so caches know when to refresh.
public final class ParameterStore: @unchecked Sendable {
    public let infos: [ParameterInfo]
    private var tensors: [Tensor]
    private var indexByName: [String: Int]
    public private(set) var version = 0

    /// Fresh values: He-normal (fan-out) conv weights, uniform dense weights, zero biases,
    /// BN scale 1, shift 0, mean 0, variance 1; Glorot-uniform weights where a parameter asks for them.
    public init(graph: Graph, seed: UInt64) {
        infos = graph.parameters
        var rng = SplitMix64(seed: seed)
        tensors = graph.parameters.map { p in
            if p.initializer == .glorotUniform, p.shape.rank >= 2 {
                // Conv [out, in, kh, kw] and dense [out, in]: fans as Keras counts them.
                let receptive = p.shape.dims.dropFirst(2).reduce(1, *)
                let bound = (6 / Float((p.shape[0] + p.shape[1]) * receptive)).squareRoot()
                return Tensor.randomUniform(p.shape, -bound, bound, rng: &rng)
            }
            switch p.role {
            case .convWeight:
                let fanOut = p.shape[0] * p.shape[2] * p.shape[3]
                return Tensor.randomNormal(p.shape, std: (2 / Float(fanOut)).squareRoot(), rng: &rng)
            case .denseWeight:
                let bound = 1 / Float(p.shape[1]).squareRoot()
                return Tensor.randomUniform(p.shape, -bound, bound, rng: &rng)
            case .bnScale, .bnVariance: return Tensor(repeating: 1, shape: p.shape)
            case .convBias, .denseBias, .bnShift, .bnMean: return Tensor(zeros: p.shape)
            }
        }
        indexByName = Dictionary(uniqueKeysWithValues: graph.parameters.enumerated().map { ($1.name, $0) })
    }

    public var count: Int { tensors.count }
    public func index(of name: String) -> Int? { indexByName[name] }

    public subscript(i: Int) -> Tensor {
        get { tensors[i] }
        set {
            precondition(newValue.shape == tensors[i].shape, "parameter '\(infos[i].name)': shape \(newValue.shape) != \(tensors[i].shape)")
            newValue.withUnsafeBufferPointer { src in tensors[i].storage.pointer.update(from: src.baseAddress!, count: src.count) }
            version += 1
        }
    }

    public subscript(name: String) -> Tensor? {
        get { indexByName[name].map { tensors[$0] } }
    }

    /// The parameter's storage, for runtimes and optimizers that update in place (call `touch` after).
    public func pointer(_ i: Int) -> UnsafeMutablePointer<Float> { tensors[i].storage.pointer }

    /// Records an in-place update made through `pointer`.
    public func touch() { version += 1 }

    /// A store of the same parameters holding a copy of this one's values.
    public func copy(graph: Graph) -> ParameterStore {
        let c = ParameterStore(graph: graph, seed: 0)
        for i in 0..<count { c.pointer(i).update(from: pointer(i), count: infos[i].shape.count) }
        return c
    }

    /// An exponential moving average step over every parameter, batch-norm statistics included:
    /// self = decay · self + (1 − decay) · `values` (TAO's ModelEMACallback over `get_weights()`).
    public func average(toward values: ParameterStore, decay: Float) {
        precondition(values.count == count, "moving average over stores of different parameters")
        for i in 0..<count {
            let n = infos[i].shape.count, a = pointer(i), b = values.pointer(i)
            for k in 0..<n { a[k] = decay * a[k] + (1 - decay) * b[k] }
        }
        touch()
    }
}
