import TaoTensor

/// One rank's part of the training data in data-parallel training. Every rank draws the same
/// seeded order of an epoch; global step k takes the next `batchSize · count` samples of it, and
/// rank r the r-th `batchSize` of those, so `count` ranks of batch B see at each step exactly the
/// samples one process of batch `count · B` sees.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var rank: Int
    public var count: Int
    public init(rank: Int, count: Int) {
        precondition(count >= 1 && rank >= 0 && rank < count, "shard \(rank) of \(count)")
        self.rank = rank; self.count = count
    }
    /// All of the data (one process).
    public static let whole = Shard(rank: 0, count: 1)

    /// Steps in an epoch of `samples` (the last, incomplete global batch dropped).
    public func steps(samples: Int, batchSize: Int) -> Int { samples / (batchSize * count) }
    /// The positions in the epoch's order of this rank's batch at `step`.
    public func positions(step: Int, batchSize: Int) -> Range<Int> {
        let start = (step * count + rank) * batchSize
        return start..<(start + batchSize)
    }
    public var description: String { "rank \(rank) of \(count)" }
}

/// The samples of each training epoch in a seeded shuffled order (Fisher–Yates on SplitMix64), a
/// batch at a time, of this rank's shard.
public struct EpochOrder: Sendable {
    public let samples: Int
    public let batchSize: Int
    public var shard: Shard
    public private(set) var order: [Int] = []
    /// The global step the next batch belongs to (the same on every rank).
    public private(set) var step = 0

    public init(samples: Int, batchSize: Int, shard: Shard = .whole) {
        self.samples = samples; self.batchSize = batchSize; self.shard = shard
    }

    public var stepsPerEpoch: Int { shard.steps(samples: samples, batchSize: batchSize) }

    /// Starts an epoch whose order the generator seeded with `seed` draws.
    public mutating func start(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        order = Array(0..<samples)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        step = 0
    }

    /// This rank's next batch (sample indices), or nil when the epoch is over.
    public mutating func next() -> [Int]? {
        guard step < stepsPerEpoch else { return nil }
        let idx = Array(order[shard.positions(step: step, batchSize: batchSize)])
        step += 1
        return idx
    }
}
