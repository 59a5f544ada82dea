import TaoGraph

/// A backbone's output that a task's head reads: a value of the graph being built, its name (TAO's
/// block names, e.g. "block_3"), its stride relative to the input image and its channel count.
public struct FeatureMap: Sendable, Equatable {
    public var name: String
    public var value: ValueID
    public var stride: Int
    public var channels: Int
    public init(name: String, value: ValueID, stride: Int, channels: Int) {
        self.name = name; self.value = value; self.stride = stride; self.channels = channels
    }
}

extension [FeatureMap] {
    /// The map of that name, or an error naming the backbone's maps.
    public func named(_ name: String) throws -> FeatureMap {
        guard let f = first(where: { $0.name == name }) else {
            throw ModelError.unsupported("no feature map '\(name)' (the backbone has \(map(\.name).joined(separator: ", ")))")
        }
        return f
    }
}
