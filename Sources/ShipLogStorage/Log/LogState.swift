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
    var syncInProgress = false
    /// fdatasync calls made by group commit, for observing how well appends share them.
    var groupCommitSyncs: UInt64 = 0
    var syncWaiters: [SyncWaiter] = []
    var tailWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    var nextTailWaiterID = 0
    /// Set by a failed fsync: every later write is refused.
    var failure: String?
    var isClosed = false

    init(segments: [SegmentInfo], lastEpoch: UInt64) {
        precondition(!segments.isEmpty)
        self.segments = segments
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

    var firstOffset: UInt64 { segments[0].baseOffset }
    var nextOffset: UInt64 { active.nextOffset }

    func check() {
        let active = self.active
        assert(durableNextOffset <= flushedNextOffset && flushedNextOffset <= active.nextOffset)
        assert(durablePosition <= flushedPosition && flushedPosition <= active.endPosition)
        assert(Int64(pending.count) == active.endPosition - flushedPosition)
        assert(active.handle.isPinned, "the active segment's file is pinned open")
        for i in 1..<segments.count { assert(segments[i - 1].nextOffset == segments[i].baseOffset) }
    }

    /// Wakes every task waiting in a tail for new records (or for close).
    mutating func takeTailWaiters() -> [CheckedContinuation<Void, Never>] {
        if tailWaiters.isEmpty { return [] }
        defer { tailWaiters.removeAll(keepingCapacity: true) }
        return Array(tailWaiters.values)
    }
}
