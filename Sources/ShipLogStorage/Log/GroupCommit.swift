import Dispatch

/// A thread waiting for its bytes to become durable. The leader of a group commit wakes it
/// with the outcome, or hands it the lead when its bytes came after the leader's sync point.
final class SyncWaiter: @unchecked Sendable {
    enum Outcome: Sendable {
        case durable
        case lead
        case failed(String)
    }

    let targetOffset: UInt64
    private let semaphore = DispatchSemaphore(value: 0)
    // Written by the waking thread before `signal`, read by the waiter after `wait`:
    // the semaphore orders the two.
    private var outcome: Outcome = .durable

    init(targetOffset: UInt64) { self.targetOffset = targetOffset }

    func wait() -> Outcome {
        semaphore.wait()
        return outcome
    }

    func wake(_ outcome: Outcome) {
        self.outcome = outcome
        semaphore.signal()
    }
}

extension SegmentLog {
    /// Blocks until every offset below `targetOffset` is on disk.
    ///
    /// Leader/follower group commit, as in LevelDB's writer queue: the first writer to find
    /// no sync running does the fdatasync itself (no thread hand-off on the latency path);
    /// writers arriving meanwhile wait, and the next fdatasync covers all of them at once.
    func waitDurable(through targetOffset: UInt64) throws {
        while true {
            enum Step { case done, lead(any StorageFile, UInt64, Int64), wait(SyncWaiter) }
            let step: Step = try state.withLock { state in
                if state.durableNextOffset >= targetOffset { return .done }
                if let failure = state.failure { throw LogError.failed(cause: failure) }
                if state.syncInProgress {
                    let waiter = SyncWaiter(targetOffset: targetOffset)
                    state.syncWaiters.append(waiter)
                    return .wait(waiter)
                }
                try flushPending(&state)
                state.syncInProgress = true
                state.groupCommitSyncs += 1
                return .lead(try state.active.handle.file(), state.flushedNextOffset, state.flushedPosition)
            }
            switch step {
            case .done:
                return
            case .wait(let waiter):
                switch waiter.wait() {
                case .durable: return
                case .lead: continue
                case .failed(let cause): throw LogError.failed(cause: cause)
                }
            case .lead(let file, let syncOffset, let syncPosition):
                var syncError: (any Error)?
                do { try file.sync() } catch { syncError = error }
                state.withLock { state in
                    state.syncInProgress = false
                    if let syncError {
                        markFailed(&state, cause: "\(syncError)")
                    } else if syncOffset > state.durableNextOffset {
                        // A roll in between would have made its own sync point durable already,
                        // so a sync point past it lies in the same active segment.
                        state.durableNextOffset = syncOffset
                        state.durablePosition = syncPosition
                    }
                    var remaining: [SyncWaiter] = []
                    for waiter in state.syncWaiters {
                        if let failure = state.failure {
                            waiter.wake(.failed(failure))
                        } else if waiter.targetOffset <= state.durableNextOffset {
                            waiter.wake(.durable)
                        } else {
                            remaining.append(waiter)
                        }
                    }
                    if let next = remaining.first {
                        remaining.removeFirst()
                        next.wake(.lead)
                    }
                    state.syncWaiters = remaining
                }
                if let syncError { throw LogError.failed(cause: "\(syncError)") }
                if syncOffset >= targetOffset { return }
            }
        }
    }

    /// After a failed fsync the kernel may have dropped dirty pages, so nothing past the
    /// last durable point can be trusted: roll the in-memory state back to it and refuse
    /// writes from now on (PostgreSQL's "fsyncgate" lesson).
    func markFailed(_ state: inout LogState, cause: String) {
        state.failure = cause
        state.pending.removeAll()
        let (position, offset) = (state.durablePosition, state.durableNextOffset)
        state.active.endPosition = position
        state.active.nextOffset = offset
        state.active.index?.truncate(toPosition: position)
        state.flushedPosition = state.durablePosition
        state.flushedNextOffset = state.durableNextOffset
        Self.logger.error("\(directory): fsync failed, log refuses writes: \(cause)")
    }
}
