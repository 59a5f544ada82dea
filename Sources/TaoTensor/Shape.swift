/// The dimensions of a tensor, outermost first (NCHW for images).
public struct Shape: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    public var rank: Int { dims.count }
    /// Number of elements (1 for a scalar).
    public var count: Int { dims.reduce(1, *) }
    public subscript(i: Int) -> Int {
        get { dims[i] }
        set { dims[i] = newValue }
    }
    /// The same shape with `n` put in front (the batch dimension).
    public func batched(_ n: Int) -> Shape { Shape([n] + dims) }
    /// Row-major strides.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: rank)
        var acc = 1
        for i in stride(from: rank - 1, through: 0, by: -1) { s[i] = acc; acc *= dims[i] }
        return s
    }
    public var description: String { "[" + dims.map(String.init).joined(separator: ",") + "]" }
}
