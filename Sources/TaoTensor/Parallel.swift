import Foundation

/// The cores this process may run on: TAO_THREADS where set (`--gpus N` gives each of its ranks
/// its share of the machine), else all of them.
public let processorCount = max(1, ProcessInfo.processInfo.environment["TAO_THREADS"].flatMap { Int($0) } ?? ProcessInfo.processInfo.activeProcessorCount)

/// Runs `body` on `parts` contiguous, disjoint slices of `0 ..< count` at once (at most one a core;
/// in the caller's thread when there is one). `body` may write through the pointers it captures,
/// but only at its own slice's elements: that is what makes sharing them between threads safe.
public func forEachSlice(of count: Int, parts: Int = processorCount, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(parts, processorCount, count))
    if parts == 1 { body(0 ..< count); return }
    withoutActuallyEscaping(body) { body in
        let f = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: parts) { p in f.value(count * p / parts ..< count * (p + 1) / parts) }
    }
}

/// What `forEachSlice` hands its threads: a closure whose captured pointers each touch a disjoint slice.
private struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
