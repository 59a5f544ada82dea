import Foundation

/// A failure of the ranks' communication (a rank that died or stopped answering), naming the rank
/// and host that saw it.
public struct CollectiveError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// What data-parallel training needs from the processes it runs on: sums over ranks and broadcasts
/// from one rank. The training run and `Trainer` see only this; MPI (`TaoMPI`) is the production
/// implementation, `LocalGroup` the in-process one the tests use, and `SingleProcess` the one rank
/// of an ordinary run.
public protocol Collective: AnyObject {
    /// This process's rank, 0 ..< size; rank 0 leads (it alone writes checkpoints, logs and reports).
    var rank: Int { get }
    var size: Int { get }
    /// This rank's machine, for messages.
    var host: String { get }
    /// Replaces `count` floats at `buffer` by their sum over all ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Replaces `bytes` bytes at `buffer` on every rank by rank `root`'s.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws
    /// Whether the collectives may be called from a thread other than the one that created this
    /// (one thread at a time): the gradient exchange runs on its own thread when they may.
    var callableFromAnyThread: Bool { get }
}

public extension Collective {
    var isLead: Bool { rank == 0 }
    var callableFromAnyThread: Bool { true }

    /// The mean over ranks of each value (metrics: losses, accuracies).
    func mean(_ values: [Double]) throws -> [Double] {
        guard size > 1, !values.isEmpty else { return values }
        var f = values.map(Float.init)
        try f.withUnsafeMutableBufferPointer { try allreduceSum($0.baseAddress!, count: $0.count) }
        return f.map { Double($0) / Double(size) }
    }

    /// Rank `root`'s bytes on every rank, whatever their length on the others.
    func broadcast(_ data: [UInt8], root: Int = 0) throws -> [UInt8] {
        guard size > 1 else { return data }
        var count = UInt64(data.count)
        try withUnsafeMutableBytes(of: &count) { try broadcast($0.baseAddress!, bytes: 8, root: root) }
        var out = rank == root ? data : [UInt8](repeating: 0, count: Int(count))
        if count > 0 { try out.withUnsafeMutableBytes { try broadcast($0.baseAddress!, bytes: $0.count, root: root) } }
        return out
    }

    /// Rank `root`'s floats at `buffer` on every rank.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int = 0) throws {
        guard size > 1, count > 0 else { return }
        try broadcast(UnsafeMutableRawPointer(buffer), bytes: count * 4, root: root)
    }
}

/// The one rank of an ordinary run: every collective is the identity.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var host: String { ProcessInfo.processInfo.hostName }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {}
}

/// Ranks that are threads of one process, for tests: `LocalGroup(size:).ranks` are the members,
/// each used from its own thread. Sums are taken in rank order (the same on every rank), so the
/// result does not depend on which thread arrives first.
public final class LocalGroup: @unchecked Sendable {
    public let size: Int
    /// How long a rank waits for the others before it gives up (a rank that died or hung).
    public let timeout: TimeInterval
    private let cond = NSCondition()
    private var arrived = 0
    private var generation = 0
    private var slots: [UnsafeMutableRawPointer?]
    private var failed: String?

    public init(size: Int, timeout: TimeInterval = 60) {
        precondition(size >= 1)
        self.size = size; self.timeout = timeout
        slots = Array(repeating: nil, count: size)
    }

    public private(set) lazy var ranks: [Collective] = (0..<size).map { Member(group: self, rank: $0) }

    /// Marks the group broken (a rank's thread failed): the others' collectives throw instead of waiting.
    public func abandon(_ why: String) {
        cond.lock(); failed = why; cond.broadcast(); cond.unlock()
    }

    /// Every rank posts its buffer; the last to arrive runs `combine` over all of them; everyone
    /// leaves after it ran.
    fileprivate func rendezvous(rank: Int, _ buffer: UnsafeMutableRawPointer, what: String, combine: ([UnsafeMutableRawPointer]) -> Void) throws {
        cond.lock()
        defer { cond.unlock() }
        if let failed { throw CollectiveError("rank \(rank): \(what) abandoned: \(failed)") }
        let gen = generation
        slots[rank] = buffer
        arrived += 1
        if arrived == size {
            combine(slots.map { $0! })
            arrived = 0
            generation += 1
            cond.broadcast()
            return
        }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while generation == gen && failed == nil {
            if !cond.wait(until: deadline) {
                failed = "rank \(rank) waited \(Int(timeout)) s in \(what) for the other ranks"
                cond.broadcast()
            }
        }
        if generation == gen, let failed { throw CollectiveError(failed) }
    }

    final class Member: Collective {
        unowned let group: LocalGroup
        let rank: Int
        init(group: LocalGroup, rank: Int) { self.group = group; self.rank = rank }
        var size: Int { group.size }
        var host: String { "thread \(rank)" }

        func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
            try group.rendezvous(rank: rank, UnsafeMutableRawPointer(buffer), what: "allreduce") { all in
                let ps = all.map { $0.assumingMemoryBound(to: Float.self) }
                for k in 0..<count {
                    var s: Float = 0
                    for p in ps { s += p[k] }
                    for p in ps { p[k] = s }
                }
            }
        }

        func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
            try group.rendezvous(rank: rank, buffer, what: "broadcast") { all in
                for (r, p) in all.enumerated() where r != root { p.copyMemory(from: all[root], byteCount: bytes) }
            }
        }
    }
}
