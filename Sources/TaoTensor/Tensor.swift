import Foundation

/// 64-byte aligned Float storage shared by copies of a `Tensor` until one of them writes.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    func copy() -> TensorStorage {
        let s = TensorStorage(count: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }
}

/// A dense fp32 tensor in plain row-major layout (NCHW for images). Value semantics.
public struct Tensor: Sendable, CustomStringConvertible {
    public private(set) var shape: Shape
    public private(set) var storage: TensorStorage

    /// A tensor of zeros.
    public init(zeros shape: Shape) {
        self.shape = shape
        storage = TensorStorage(count: shape.count)
    }

    /// A tensor holding `values` (count must equal the shape's element count).
    public init(shape: Shape, values: [Float]) {
        precondition(values.count == shape.count, "Tensor(shape: \(shape)): \(values.count) values given, \(shape.count) needed")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A tensor filled with `value`.
    public init(repeating value: Float, shape: Shape) {
        self.init(zeros: shape)
        storage.pointer.update(repeating: value, count: shape.count)
    }

    public var count: Int { shape.count }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    public subscript(flat i: Int) -> Float {
        get { storage.pointer[i] }
        set { withUnsafeMutableBufferPointer { $0[i] = newValue } }
    }

    /// The same elements viewed with another shape of equal count.
    public func reshaped(_ s: Shape) -> Tensor {
        precondition(s.count == count, "reshape \(shape) -> \(s): element counts differ")
        var t = self
        t.shape = s
        return t
    }

    public var description: String { "Tensor\(shape)" }
}

extension Tensor {
    /// Normally distributed values (Box-Muller over a seeded generator).
    public static func randomNormal(_ shape: Shape, mean: Float = 0, std: Float = 1, rng: inout SplitMix64) -> Tensor {
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count { b[i] = mean + std * rng.nextNormal() }
        }
        return t
    }

    /// Uniform values in [lo, hi).
    public static func randomUniform(_ shape: Shape, _ lo: Float, _ hi: Float, rng: inout SplitMix64) -> Tensor {
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count { b[i] = lo + (hi - lo) * rng.nextFloat() }
        }
        return t
    }

    /// Largest absolute element-wise difference to `other` (same count required).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(count == other.count)
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(storage.pointer[i] - other.storage.pointer[i])) }
        return m
    }
}
