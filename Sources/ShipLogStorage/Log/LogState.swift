/// The log's mutable state, guarded by the log's mutex. Invariants (checked by `check()`):
/// segments are contiguous in offsets; durable ≤ flushed ≤ end, in offsets and positions
/// of the active segment; the pending buffer holds exactly the bytes between flushed and end.
struct LogState: Sendable {
    var segments: [SegmentInfo]
    /// Bytes appended with `Durability.none` not yet written to the kernel.
    var pending: [UInt8] = []
    var flushedPosition: Int64
    var flushedNextOffset: UInt64
    var durablePosition: Int64
    var durableNextOffset: UInt64
    var lastEpoch: UInt64
    /// The epochs of the batches in the log, exactly (see `SegmentLog.epochHistory`).
    var epochHistory: EpochHistory
    /// What the epoch checkpoint file holds, or nil when unknown (a write of it failed).
    /// Invariant, the one crash safety rests on (format.md §12): when not nil, it reconciles
    /// to `epochHistory` (`reconciled(firstOffset:nextOffset:)`). An append that would break
    /// it, by starting an epoch the file lacks or by landing where the file names another
    /// epoch's start, has the file rewritten first (`planWriteGroup`).
    var checkpoint: EpochHistory?
    /// Appends and exclusive operations in arrival order. The head leads the next write group.
    var writeQueue: [LogRequest] = []
    /// A write group's leader is writing outside the mutex; it alone may change the log's end.
    var writerBusy = false
    /// A group-commit fdatasync is running outside the mutex.
    var syncBusy = false
    /// Written `.fsync` appends (and `sync()` calls) not yet durable. Only requests whose
    /// target is past `durableNextOffset` are here: whoever advances it finishes the rest.
    var durabilityWaiters: [LogRequest] = []
    /// fdatasync calls made by group commit, for observing how well appends share them.
    var groupCommitSyncs: UInt64 = 0
    /// How many waiters the last group-commit fdatasync finished (see `decide`).
    var lastSyncGroupSize = 0
    /// Recent truncations (generation, first offset removed), so a reader can tell whether one
    /// removed records it had already read; see `BatchCursor`.
    var truncations: [(generation: UInt64, keepNext: UInt64)] = []
    var tailWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    var nextTailWaiterID = 0
    /// The active segment (by base offset) and the position below which its write-back has
    /// been started (`LogOptions.writebackBytes`); nil before the first.
    var writebackStarted: (segmentBase: UInt64, position: Int64)?
    /// Set by a failed fsync: every later write is refused.
    var failure: String?
    var isClosed = false

    init(segments: [SegmentInfo], lastEpoch: UInt64, epochHistory: EpochHistory = EpochHistory(),
         checkpoint: EpochHistory? = nil) {
        precondition(!segments.isEmpty)
        self.segments = segments
        self.epochHistory = epochHistory
        self.checkpoint = checkpoint
        let active = segments[segments.count - 1]
        active.handle.pin()
        flushedPosition = active.endPosition
        flushedNextOffset = active.nextOffset
        durablePosition = active.endPosition
        durableNextOffset = active.nextOffset
        self.lastEpoch = lastEpoch
    }

    /// The active segment, modified in place: a get/set pair would copy its index array
    /// on every append.
    var active: SegmentInfo {
        get { segments[segments.count - 1] }
        _modify { yield &segments[segments.count - 1] }
    }

    /// Makes `segment` the active one: its file is pinned open, and the segment it follows
    /// returns its file to the open-file cache.
    mutating func appendSegment(_ segment: SegmentInfo) {
        active.handle.unpin()
        segment.handle.pin()
        segments.append(segment)
    }

    /// Removes the active segment (truncation); the one before becomes active and is pinned.
    @discardableResult
    mutating func removeLastSegment() -> SegmentInfo {
        precondition(segments.count > 1, "the log always has an active segment")
        let removed = segments.removeLast()
        active.handle.pin()
        return removed
    }

    /// Replaces every segment with `segment` (a reset), which becomes the active one, pinned.
    mutating func replaceAllSegments(with segment: SegmentInfo) {
        active.handle.unpin()
        segment.handle.pin()
        segments = [segment]
    }

    var firstOffset: UInt64 { segments[0].baseOffset }
    var nextOffset: UInt64 { active.nextOffset }

    func check() {
        let active = self.active
        assert(durableNextOffset <= flushedNextOffset && flushedNextOffset <= active.nextOffset)
        assert(durablePosition <= flushedPosition && flushedPosition <= active.endPosition)
        assert(Int64(pending.count) == active.endPosition - flushedPosition)
        assert(active.handle.isPinned, "the active segment's file is pinned open")
        for i in 1..<segments.count { assert(segments[i - 1].nextOffset == segments[i].baseOffset) }
        assert(epochHistory.entries.first.map { $0.startOffset == firstOffset } ?? (firstOffset == nextOffset),
               "the epoch history starts where the log does")
        assert(epochHistory.entries.last.map { $0.startOffset < nextOffset } ?? true)
        assert(checkpoint.map { $0.reconciled(firstOffset: firstOffset, nextOffset: nextOffset) == epochHistory } ?? true,
               "the checkpoint file reconciles to the epoch history")
    }

    /// Wakes whoever may now proceed: the head of the write queue when no writer is busy, and
    /// one durability waiter when no fdatasync is running and no exclusive operation waits
    /// for syncs to stop. Called after every change that could unblock someone; waking a
    /// request that cannot proceed only costs it a re-check.
    mutating func kick(_ wakeups: inout Wakeups) {
        if !writerBusy, let head = writeQueue.first { wakeups.add(head) }
        let exclusiveWaits = writeQueue.first?.isExclusive ?? false
        if !syncBusy, !exclusiveWaits, !durabilityWaiters.isEmpty,
            !durabilityWaiters.contains(where: { !$0.isSleeping }) {
            wakeups.add(durabilityWaiters[0])
        }
    }

    /// Finishes the durability waiters that `durableNextOffset` now covers, or all of them
    /// with the failure once the log has failed.
    mutating func finishDurableWaiters(_ wakeups: inout Wakeups) {
        durabilityWaiters.removeAll { request in
            guard case .awaitingDurable(let target) = request.phase else { preconditionFailure("not awaiting durability") }
            if let failure {
                request.finish(.failure(LogError.failed(cause: failure)))
            } else if target <= durableNextOffset {
                request.finish(.success(request.writtenRange))
            } else if isClosed {
                request.finish(.failure(LogError.closed))
            } else {
                return false
            }
            wakeups.add(request)
            return true
        }
    }

    /// Wakes every task waiting in a tail for new records (or for close).
    mutating func takeTailWaiters() -> [CheckedContinuation<Void, Never>] {
        if tailWaiters.isEmpty { return [] }
        defer { tailWaiters.removeAll(keepingCapacity: true) }
        return Array(tailWaiters.values)
    }
}
