import Dispatch
import Synchronization

/// One caller's place in the log's write pipeline: an append waiting to be written and, for
/// `.fsync`, to become durable; or an exclusive operation (truncate, close, flush, retention)
/// waiting for its turn. Every field but the semaphore is guarded by the log's mutex.
///
/// A request's thread drives it itself (`SegmentLog.drive`): under the mutex it looks at the
/// state, does what it may (lead a write group, lead an fdatasync, run its exclusive body),
/// or marks itself sleeping and waits. Whoever changes the state in a way that lets a
/// sleeping request proceed wakes it (`LogState.kick`); a woken request only re-checks, so a
/// wake-up is never a promise that can be lost (the F5 hand-off bug was such a promise).
final class LogRequest: @unchecked Sendable {
    enum Phase {
        /// In `LogState.writeQueue`, not yet written.
        case queued
        /// Written; in `LogState.durabilityWaiters` until every offset below the target is on disk.
        case awaitingDurable(target: UInt64)
        /// `result` is set; the request is in no list.
        case finished
    }

    /// What an append asks for; nil for an exclusive operation.
    struct Append {
        var batch: StoredBatch
        let epoch: UInt64
        let timestampMs: Int64
        /// A stored batch from another log keeps its header (offset, epoch, timestamp).
        let keepHeader: Bool
        let durability: Durability
    }

    var append: Append?
    var phase: Phase = .queued
    /// The offsets the append got, once written.
    var writtenRange: Range<UInt64> = 0..<0
    var result: Result<Range<UInt64>, any Error>?
    /// Set under the mutex just before the request's thread waits, cleared by the one who
    /// wakes it: so a request is signalled at most once per wait.
    var isSleeping = false
    /// Times this request yielded before leading an fdatasync, to let more waiters join.
    var syncYields = 0
    /// An async request suspends its task instead of blocking a thread, and never runs an
    /// fdatasync on it: it hands that to the log's sync queue (`SegmentLog.syncQueue`).
    let isAsync: Bool
    // Made by `prepareToSleep`, under the mutex, the first time the request must wait: a
    // request that leads its own write never pays for one. Whoever wakes it saw `isSleeping`
    // under the same mutex, so it sees the object too.
    private var semaphore: DispatchSemaphore?
    private var signal: AsyncSignal?

    init(append: Append?, isAsync: Bool = false) {
        self.append = append
        self.isAsync = isAsync
    }

    var isExclusive: Bool { append == nil }

    /// Called under the mutex just before the request's thread or task waits.
    func prepareToSleep() {
        isSleeping = true
        if isAsync {
            if signal == nil { signal = AsyncSignal() }
        } else if semaphore == nil {
            semaphore = DispatchSemaphore(value: 0)
        }
    }

    func sleep() { semaphore!.wait() }
    func sleep() async { await signal!.wait() }
    func wake() {
        if let semaphore { semaphore.signal() } else { signal!.signal() }
    }

    /// Records the outcome; the caller removes the request from whatever list held it.
    func finish(_ outcome: Result<Range<UInt64>, any Error>) {
        precondition(result == nil, "a request finishes once")
        result = outcome
        phase = .finished
    }
}

/// What a critical section decided to wake, woken after the mutex is released so that the
/// woken threads do not run straight into a held lock.
struct Wakeups {
    var requests: [LogRequest] = []
    var tails: [CheckedContinuation<Void, Never>] = []

    mutating func add(_ request: LogRequest) {
        guard request.isSleeping else { return }
        request.isSleeping = false
        requests.append(request)
    }

    func perform() {
        for request in requests { request.wake() }
        for tail in tails { tail.resume() }
    }
}

/// A binary semaphore for tasks: `wait` suspends until `signal`, or returns at once if a
/// signal came first. Like `DispatchSemaphore` for a blocked thread, it never loses a
/// signal sent between a request deciding to sleep and the task suspending.
final class AsyncSignal: Sendable {
    private let state = Mutex<(signaled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                precondition(state.waiter == nil, "one waiter at a time")
                if state.signaled {
                    state.signaled = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signaled = true
            return nil
        }
        waiter?.resume()
    }
}
