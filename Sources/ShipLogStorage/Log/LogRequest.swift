import Dispatch

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
    private let semaphore = DispatchSemaphore(value: 0)

    init(append: Append?) { self.append = append }

    var isExclusive: Bool { append == nil }

    func sleep() { semaphore.wait() }
    func wake() { semaphore.signal() }

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
