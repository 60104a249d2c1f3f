import Synchronization

/// What an appending task awaits while its append is replicated: completed on the primary's
/// event loop, awaited by the task. It replaces `EventLoopFuture.get()`, whose callback is
/// registered from the task's thread and so costs another `loop.execute` (an eventfd write,
/// often a wake-up of the loop) on every sync append; this one is registered by the closure
/// the append already runs on the loop. Like `AsyncSignal` in the storage target, a result
/// that arrives before the task waits is kept, never lost.
///
/// The continuation is an `UnsafeContinuation`: the lock below already guarantees the one
/// resume a checked continuation would verify, and the checked one costs an extra object
/// and its checks on every sync append.
final class ReplicationWait: Sendable {
    private let state = Mutex<(result: Result<Void, any Error>?, waiter: UnsafeContinuation<Void, any Error>?)>((nil, nil))

    /// Called once, on the loop.
    func complete(_ result: Result<Void, any Error>) {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, any Error>? in
            precondition(state.result == nil, "a replication wait completes once")
            state.result = result
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume(with: result)
    }

    /// Returns (or throws) once `complete` has been called. One waiter.
    func wait() async throws {
        // Already complete (an append whose followers answered first): no suspension at all.
        if let ready = state.withLock({ $0.result }) { return try ready.get() }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            let ready = state.withLock { state -> Result<Void, any Error>? in
                precondition(state.waiter == nil, "one waiter at a time")
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
