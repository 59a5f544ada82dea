import TaoKernels

/// Places the plan's transient buffers in one arena by lifetime: two buffers share bytes only if
/// no step between the first and last use of one touches the other. Persistent buffers (inputs,
/// outputs, gradients the optimizer reads, parameter-derived constants) get their own storage.
struct MemoryPlan {
    private(set) var arena: Buffer?
    private(set) var persistentBuffers: [Buffer] = []
    private(set) var arenaBytes = 0
    private(set) var unplannedBytes = 0

    /// - Parameters:
    ///   - deferred: every deferred memory the planner created, in creation order.
    ///   - persistent: those that must keep their contents between passes.
    ///   - steps: the memories each step of one iteration touches, in execution order.
    init(deferred: [Memory], persistent: Set<ObjectIdentifier>, steps: [[Memory]]) {
        var first = [ObjectIdentifier: Int](), last = [ObjectIdentifier: Int]()
        for (i, ms) in steps.enumerated() {
            for m in ms {
                let k = ObjectIdentifier(m)
                if first[k] == nil { first[k] = i }
                last[k] = i
            }
        }
        struct Block { let mem: Memory; let size: Int; let start: Int; let end: Int; var offset = 0 }
        var blocks: [Block] = []
        var seen = Set<ObjectIdentifier>()
        for m in deferred where seen.insert(ObjectIdentifier(m)).inserted {
            let k = ObjectIdentifier(m)
            let size = (m.byteCount + 63) / 64 * 64
            unplannedBytes += size
            if persistent.contains(k) || first[k] == nil {
                let b = Buffer(byteCount: size)
                persistentBuffers.append(b)
                m.bind(b.pointer)
            } else {
                blocks.append(Block(mem: m, size: size, start: first[k]!, end: last[k]!))
            }
        }
        // Largest first; each takes the lowest offset free for its whole lifetime.
        blocks.sort { $0.size != $1.size ? $0.size > $1.size : $0.start < $1.start }
        var placed: [Block] = []
        for var b in blocks {
            let overlapping = placed.filter { $0.start <= b.end && b.start <= $0.end }.sorted { $0.offset < $1.offset }
            var offset = 0
            for o in overlapping where o.offset < offset + b.size {
                if o.offset + o.size > offset { offset = o.offset + o.size }
            }
            b.offset = offset
            arenaBytes = max(arenaBytes, offset + b.size)
            placed.append(b)
        }
        let arena = Buffer(byteCount: arenaBytes)
        for b in placed { b.mem.bind(arena.pointer + b.offset) }
        self.arena = arena
    }
}
