#if canImport(Glibc)
import Glibc
#endif
/// The write path: a writer queue with one leader at a time (LevelDB's `DBImpl::Write`,
/// RocksDB's `WriteThread::JoinBatchGroup`) and group commit.
///
/// - An append joins `writeQueue`. The request at its head, when no writer is busy, leads:
///   under the mutex it takes every append queued behind it (a group), gives each its
///   offsets, and rolls the segment if needed; outside the mutex it seals the batches and
///   writes the group with one pwrite; under the mutex again it publishes the new end and
///   finishes the members. The mutex is never held across the pwrite, so appenders queue
///   on their own semaphores instead of convoying on the lock.
/// - A written `.fsync` append joins `durabilityWaiters`. When no fdatasync runs, one waiter
///   leads one covering everything written so far; its end finishes every waiter it covers.
///   Writes go on while an fdatasync runs.
/// - An exclusive operation (truncate, close, flush, retention) waits in the same queue for
///   its turn, then runs alone under the mutex: no writer busy, no fdatasync running, and no
///   new fdatasync starts while it waits. That is what keeps a sync point from outliving a
///   truncate (finding F1).
extension SegmentLog {
    /// A leader stops adding appends to its group past this many bytes (one batch larger
    /// than this still goes, alone), bounding the copy that joins them into one write.
    static let writeGroupBytesMax = 1 << 20
    /// How many times a request about to lead an fdatasync yields for more waiters to join.
    static let syncYieldsMax = 3

    /// Runs `body` under the mutex, then wakes whoever it decided to wake.
    func locked<T>(_ body: (inout LogState, inout Wakeups) throws -> T) rethrows -> T {
        var wakeups = Wakeups()
        defer { wakeups.perform() }
        return try state.withLock { state in try body(&state, &wakeups) }
    }

    /// Appends a batch through the pipeline; returns its offsets once `durability` is reached.
    func submit(_ append: LogRequest.Append) throws -> Range<UInt64> {
        try drive(LogRequest(append: append), joiningQueue: true)
    }

    /// Blocks until every offset below `target` is on disk (or the log has failed).
    func waitDurable(through target: UInt64) throws {
        let request = LogRequest(append: nil)
        if try registerDurabilityWaiter(request, through: target) { _ = try drive(request) }
    }

    /// `waitDurable` for tasks: the task suspends, and the fdatasync runs on `syncQueue`.
    func waitDurableAsync(through target: UInt64) async throws {
        let request = LogRequest(append: nil, isAsync: true)
        if try registerDurabilityWaiter(request, through: target) { _ = try await driveAsync(request) }
    }

    /// Adds `request` to the durability waiters unless `target` is durable already.
    private func registerDurabilityWaiter(_ request: LogRequest, through target: UInt64) throws -> Bool {
        try locked { state, _ -> Bool in
            try checkWritable(state)
            // A truncate since the caller took `target` may have lowered the end: what is
            // left of it is what must be durable (and truncate made that durable already).
            let target = min(target, state.flushedNextOffset)
            if state.durableNextOffset >= target { return false }
            request.phase = .awaitingDurable(target: target)
            request.writtenRange = target..<target
            state.durabilityWaiters.append(request)
            return true
        }
    }

    /// Runs `body` alone: after every earlier queued request, with no write group and no
    /// fdatasync in flight. `body` runs under the mutex and may do I/O.
    func exclusive<T>(_ body: (inout LogState, inout Wakeups) throws -> T) throws -> T {
        let ticket = LogRequest(append: nil)
        locked { state, _ in state.writeQueue.append(ticket) }
        while true {
            if let outcome = takeTurn(ticket, body) { return try outcome.get() }
            ticket.sleep()
        }
    }

    /// `exclusive` for tasks: waiting for its turn suspends the task instead of blocking one
    /// of the cooperative pool's threads (two blocked threads would stall every task).
    func exclusiveAsync<T>(_ body: (inout LogState, inout Wakeups) throws -> T) async throws -> T {
        let ticket = LogRequest(append: nil, isAsync: true)
        locked { state, _ in state.writeQueue.append(ticket) }
        while true {
            if let outcome = takeTurn(ticket, body) { return try outcome.get() }
            await ticket.sleep()
        }
    }

    /// Runs `body` if it is `ticket`'s turn; otherwise marks it sleeping and returns nil.
    private func takeTurn<T>(_ ticket: LogRequest, _ body: (inout LogState, inout Wakeups) throws -> T) -> Result<T, any Error>? {
        locked { state, wakeups in
            guard state.writeQueue.first === ticket, !state.writerBusy, !state.syncBusy else {
                ticket.prepareToSleep()
                return nil
            }
            state.writeQueue.removeFirst()
            defer { state.kick(&wakeups) }
            return Result { try body(&state, &wakeups) }
        }
    }

    /// Drives `request` on the calling thread until it is finished: leading a write group or
    /// an fdatasync when it may, sleeping otherwise.
    private func drive(_ request: LogRequest, joiningQueue: Bool = false) throws -> Range<UInt64> {
        var joining = joiningQueue
        while true {
            defer { joining = false }
            switch decide(request, joiningQueue: joining) {
            case .finished(let result):
                return try result.get()
            case .sleep:
                request.sleep()
            case .again:
                continue
            case .yield:
                sched_yield()
            case .write(let group):
                perform(group)
            case .roll(let roll):
                perform(roll)
            case .checkpoint(let plan):
                perform(plan)
            case .sync(let sync):
                if let next = perform(sync) { syncQueue.async { self.performSyncs(from: next) } }
            }
        }
    }

    /// Drives an async request: it leads write groups on its task (a pwrite is short) but
    /// hands the fdatasync it leads to `syncQueue`, so no task thread waits on the disk.
    func driveAsync(_ request: LogRequest, joiningQueue: Bool = false) async throws -> Range<UInt64> {
        precondition(request.isAsync)
        var joining = joiningQueue
        while true {
            defer { joining = false }
            switch decide(request, joiningQueue: joining) {
            case .finished(let result):
                return try result.get()
            case .sleep:
                await request.sleep()
            case .again:
                continue
            case .yield:
                await Task.yield()
            case .write(let group):
                perform(group)
            case .roll(let roll):
                // Two fdatasyncs: not on a task's thread.
                syncQueue.async { self.perform(roll) }
            case .checkpoint(let plan):
                // Two fdatasyncs too.
                syncQueue.async { self.perform(plan) }
            case .sync(let sync):
                syncQueue.async { self.performSyncs(from: sync) }
            }
        }
    }

    private enum Step {
        case finished(Result<Range<UInt64>, any Error>)
        case sleep
        case again
        /// Let other threads or tasks run, then decide again.
        case yield
        case write(WriteGroup)
        case roll(RollPlan)
        case checkpoint(CheckpointPlan)
        case sync(SyncPoint)
    }

    /// An fdatasync to run: everything flushed when it was decided.
    struct SyncPoint: Sendable {
        let file: any StorageFile
        let segmentBase: UInt64
        let offset: UInt64
        let position: Int64
    }

    /// Under the mutex: what `request` does next (having first joined the queue, for a new
    /// append: one critical section instead of two).
    private func decide(_ request: LogRequest, joiningQueue: Bool) -> Step {
        locked { state, wakeups in
            if joiningQueue { state.writeQueue.append(request) }
            if let result = request.result { return .finished(result) }
            switch request.phase {
            case .finished:
                preconditionFailure("a finished request has a result")
            case .queued:
                guard state.writeQueue.first === request, !state.writerBusy else { break }
                switch planWriteGroup(&state, &wakeups) {
                case .group(let group): return .write(group)
                case .roll(let roll): return .roll(roll)
                case .checkpoint(let plan): return .checkpoint(plan)
                case .none: return .again  // finished while planning (buffered, or refused)
                }
            case .awaitingDurable(let target):
                // A sync covers at most what is flushed: a waiter past it would sync forever.
                precondition(target <= state.flushedNextOffset, "a durability waiter's records are written")
                guard !state.syncBusy, !(state.writeQueue.first?.isExclusive ?? false) else { break }
                // The appenders the last fdatasync released are usually about to append again:
                // give them a moment (a yield, not a clock) so this fdatasync covers them too.
                // PostgreSQL's commit_delay and commit_siblings, measured in waiters; a lone
                // appender (a last group of one) never waits.
                if state.durabilityWaiters.count < state.lastSyncGroupSize, request.syncYields < Self.syncYieldsMax {
                    request.syncYields += 1
                    return .yield
                }
                do {
                    let file = try state.active.handle.file()
                    state.syncBusy = true
                    return .sync(SyncPoint(file: file, segmentBase: state.active.baseOffset,
                                           offset: state.flushedNextOffset, position: state.flushedPosition))
                } catch {
                    markFailed(&state, &wakeups, cause: "opening \(state.active.handle.path) to sync: \(error)")
                    return .again
                }
            }
            request.prepareToSleep()
            return .sleep
        }
    }

    /// Runs fdatasyncs on `syncQueue` for as long as appends wait for the next one: the queue
    /// starts it at once, so the disk never idles while a waiter is woken to lead it, and
    /// each waiter is woken once, when its records are durable.
    private func performSyncs(from first: SyncPoint) {
        var next: SyncPoint? = first
        while let sync = next { next = perform(sync) }
    }

    /// Runs a group-commit fdatasync and finishes the waiters it covers. Returns the next
    /// fdatasync to run at once (already marked as running) when waiters are left, to be
    /// run on `syncQueue`: the appender that led this one returns without waiting for it.
    private func perform(_ sync: SyncPoint) -> SyncPoint? {
        var failure: (any Error)?
        do { try sync.file.sync() } catch { failure = error }
        return locked { state, wakeups -> SyncPoint? in
            state.syncBusy = false
            state.groupCommitSyncs += 1
            let waitersBefore = state.durabilityWaiters.count
            if let failure {
                markFailed(&state, &wakeups, cause: "fdatasync \(sync.file.path): \(failure)")
            } else if sync.offset > state.durableNextOffset, state.failure == nil {
                // Only a roll can change the active segment while a sync runs, and a roll
                // makes everything before it durable: a sync point past the durable end is
                // therefore in the segment that was synced.
                precondition(state.active.baseOffset == sync.segmentBase, "sync point outlived its segment")
                state.durableNextOffset = sync.offset
                state.durablePosition = sync.position
            }
            state.finishDurableWaiters(&wakeups)
            state.lastSyncGroupSize = waitersBefore - state.durabilityWaiters.count
            if let first = state.durabilityWaiters.first, first.isAsync, state.failure == nil,
                !(state.writeQueue.first?.isExclusive ?? false),
                !state.durabilityWaiters.contains(where: { !$0.isAsync && !$0.isSleeping }),
                let file = try? state.active.handle.file() {
                state.syncBusy = true
                state.kick(&wakeups)
                return SyncPoint(file: file, segmentBase: state.active.baseOffset,
                                 offset: state.flushedNextOffset, position: state.flushedPosition)
            }
            state.kick(&wakeups)
            return nil
        }
    }

    /// After a failed fsync the kernel may have dropped dirty pages, so nothing past the
    /// last durable point can be trusted: roll the in-memory state back to it and refuse
    /// writes from now on (PostgreSQL's "fsyncgate" lesson).
    func markFailed(_ state: inout LogState, _ wakeups: inout Wakeups, cause: String) {
        state.pending.removeAll()
        let durablePosition = state.durablePosition
        state.active.endPosition = durablePosition
        state.active.nextOffset = state.durableNextOffset
        state.active.index?.truncate(toPosition: durablePosition)
        state.epochHistory.truncate(toNextOffset: state.durableNextOffset)
        state.flushedPosition = state.durablePosition
        state.flushedNextOffset = state.durableNextOffset
        poison(&state, &wakeups, cause: cause)
    }

    /// Refuses every later write, keeping the in-memory state as the caller left it (which
    /// must be what recovery would find), and fails everyone waiting.
    func poison(_ state: inout LogState, _ wakeups: inout Wakeups, cause: String) {
        if state.failure == nil {
            state.failure = cause
            Self.logger.error("\(directory): the log refuses writes: \(cause)")
        }
        state.finishDurableWaiters(&wakeups)
        wakeups.tails += state.takeTailWaiters()
        state.kick(&wakeups)
    }
}
