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
