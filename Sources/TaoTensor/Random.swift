import Foundation

/// A small, fast, seedable generator (SplitMix64) so that runs repeat exactly for a seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    private var spareNormal: Float?

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }

    /// Uniform in [0, 1) with double precision.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / Double(UInt64(1) << 53)) }

    /// Standard normal.
    public mutating func nextNormal() -> Float {
        if let s = spareNormal { spareNormal = nil; return s }
        var u1 = nextDouble()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = nextDouble()
        let r = (-2 * _log(u1)).squareRoot()
        spareNormal = Float(r * _sin(2 * Double.pi * u2))
        return Float(r * _cos(2 * Double.pi * u2))
    }
}

@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Foundation.sin(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
