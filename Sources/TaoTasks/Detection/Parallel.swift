import Foundation

/// `f(0) … f(n − 1)` on all cores, in order; the first error thrown is rethrown.
func parallelMap<T>(_ n: Int, _ f: @Sendable (Int) throws -> T) throws -> [T] {
    let slots = ParallelSlots<T>(n)
    DispatchQueue.concurrentPerform(iterations: n) { k in
        do {
            let v = try f(k)
            slots.lock.lock(); slots.values[k] = v; slots.lock.unlock()
        } catch {
            slots.lock.lock(); if slots.error == nil { slots.error = error }; slots.lock.unlock()
        }
    }
    if let e = slots.error { throw e }
    return slots.values.map { $0! }
}

/// The results of `parallelMap`, written under a lock by the workers.
private final class ParallelSlots<T>: @unchecked Sendable {
    var values: [T?]
    var error: Error?
    let lock = NSLock()
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
}
