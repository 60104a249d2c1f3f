/// Appending several stored batches from another log (a replication frame carries many) with
/// one write, and the two seams a replication shell needs to avoid hand-offs between threads:
/// an append that never waits (`appendWithoutWaiting`) and an append that hands back the
/// bytes it stored (`appendKeepingBytes`).
///
/// A multi-batch write is the write pipeline's group (`perform(_: WriteGroup)`): the batches
/// get their offsets under the mutex, are concatenated and written with one pwrite outside it,
/// then published under it; a failed write fails every member and cuts the file back. It is
/// taken only when nothing waits in the queue and no writer is busy, so exclusive operations
/// and `.fsync` appends are never overtaken (the rule of `SegmentLog+DirectWrite.swift`).
extension SegmentLog {
    /// What a multi-batch plan found under the mutex.
    private enum StoredGroupPlan {
        /// Write these (a prefix of the batches, or all of them when all were asked for).
        case write(WriteGroup)
        /// The first batch is refused (gap, epoch regression, closed or failed log).
        case refused(any Error)
        /// Not now: the queue is busy, or the first batch needs a roll or a checkpoint rewrite.
        case queue
    }

    /// Appends batches exactly as another log stored them, in order, at `durability`; returns
    /// the offsets of them all. Each batch's CRC and size are checked first; the first must
    /// start at this log's next offset and each must continue the one before. The batches
    /// that fit in the active segment go out in one write; a roll (or an epoch checkpoint
    /// rewrite) goes through the queue for the batch that needs it, and the rest continue.
    /// On a failure, the batches before the failing one stay appended (as separate appends
    /// would leave them) and the error is thrown. Blocks its thread: for threads you own.
    @discardableResult
    public func append(storedBatches batches: [StoredBatch], durability: Durability) throws -> Range<UInt64> {
        guard let first = batches.first, let last = batches.last else { throw LogError.emptyBatch }
        if durability == .buffered {
            for batch in batches { try append(storedBatch: batch, durability: .buffered) }
            return first.header.firstOffset..<last.header.nextOffset
        }
        let requests = try batches.map { LogRequest(append: try storedAppend($0, durability: .os)) }
        var index = 0
        while index < requests.count {
            let rest = requests[index...]
            let plan = directWriteLock.withLock { () -> StoredGroupPlan in
                let plan = locked { state, _ in planStoredGroup(rest, wholeOnly: false, &state) }
                if case .write(let group) = plan { perform(group) }
                return plan
            }
            switch plan {
            case .write(let group):
                try Self.outcome(of: group)
                index += group.members.count
            case .refused(let error):
                throw error
            case .queue:
                // Through the queue: its leader rolls, rewrites the checkpoint, or waits its turn.
                _ = try submit(requests[index])
                index += 1
            }
        }
        if durability == .fsync { try waitDurable(through: last.header.nextOffset) }
        return first.header.firstOffset..<last.header.nextOffset
    }

    /// Appends the batches (as `append(storedBatches:durability:)`, at `.os`) only if that
    /// needs no waiting: the log's mutex is free, nothing is queued or being written, and all
    /// of them fit in the active segment under the epoch checkpoint the log has. Then they go
    /// out in one pwrite and their offsets are returned; otherwise nothing is written and nil
    /// is returned (use the blocking form off the caller's thread). Throws when the log
    /// refuses the first batch or the write fails (then nothing of it stays in the log).
    ///
    /// For an event loop: it never waits on a lock an fdatasync, a roll, a truncate or a
    /// close holds (those hold the mutex, or mark the writer busy, which makes this return
    /// nil), and its only I/O is one pwrite of the caller's bytes into the page cache. That
    /// pwrite can still be slowed by the kernel's dirty-page throttling; the caller bounds the
    /// bytes it passes.
    public func appendWithoutWaiting(storedBatches batches: [StoredBatch]) throws -> Range<UInt64>? {
        guard let first = batches.first, let last = batches.last else { throw LogError.emptyBatch }
        let requests = try batches.map { LogRequest(append: try storedAppend($0, durability: .os)) }
        // No `directWriteLock`: `planStoredGroup` marks the writer busy under the mutex, which is
        // what excludes every other writer; the lock only orders direct writers that would wait.
        let planned = state.withLockIfAvailable { state -> StoredGroupPlan in
            planStoredGroup(requests[...], wholeOnly: true, &state)
        }
        guard let plan = planned else { return nil }
        switch plan {
        case .write(let group):
            perform(group)
            try Self.outcome(of: group)
            return first.header.firstOffset..<last.header.nextOffset
        case .refused(let error):
            throw error
        case .queue:
            return nil
        }
    }

    /// Appends records as one batch (the async `append(_:epoch:durability:)`) and returns the
    /// batch as it was stored (sealed header and payload) with its offsets, so a primary can
    /// ship it without reading it back.
    public func appendKeepingBytes(_ records: [[UInt8]], epoch: UInt64, durability: Durability) async throws
        -> (offsets: Range<UInt64>, stored: [UInt8]) {
        let request = LogRequest(append: try batchAppend(records, epoch: epoch, durability: durability), isAsync: true)
        let offsets = try await driveAsync(request, joiningQueue: true)
        guard let bytes = request.append?.batch.bytes else { preconditionFailure("an append request keeps its batch") }
        return (offsets, bytes)
    }

    /// Under the mutex: the longest prefix of `requests` (all of them if `wholeOnly`, else
    /// nothing) that can be written now as one group, within `writeGroupBytesMax` (the first
    /// batch always), without a roll or a checkpoint rewrite. Marks the writer busy for it.
    private func planStoredGroup(_ requests: ArraySlice<LogRequest>, wholeOnly: Bool, _ state: inout LogState) -> StoredGroupPlan {
        guard state.writeQueue.isEmpty, !state.writerBusy else { return .queue }
        var nextOffset = state.nextOffset
        var lastEpoch = state.lastEpoch
        var historyEpoch = state.epochHistory.lastEpoch
        var end = state.active.endPosition
        var groupBytes = 0
        var members: [LogRequest] = []
        for request in requests {
            guard let append = request.append else { preconditionFailure("a stored append has a batch") }
            if let refusal = refusal(of: append, state: state, nextOffset: nextOffset, lastEpoch: lastEpoch) {
                if members.isEmpty { return .refused(refusal) }
                if wholeOnly { return .queue }  // the blocking form reports it after writing the rest
                break
            }
            let size = append.batch.bytes.count
            let fits = !(end > Int64(Format.segmentHeaderBytes) && end + Int64(size) > Int64(options.segmentBytes))
            let count = UInt64(append.batch.header.recordCount)
            let covered = checkpointCovers(state.checkpoint, epoch: append.epoch, after: historyEpoch,
                                           at: nextOffset..<(nextOffset + count))
            let withinGroup = members.isEmpty || groupBytes + size <= Self.writeGroupBytesMax
            guard fits, covered, withinGroup else {
                if wholeOnly || members.isEmpty { return .queue }
                break
            }
            request.writtenRange = nextOffset..<(nextOffset + count)
            members.append(request)
            nextOffset += count
            lastEpoch = append.epoch
            historyEpoch = append.epoch
            end += Int64(size)
            groupBytes += size
        }
        let file: any StorageFile
        do {
            file = try state.active.handle.file()
        } catch {
            return .refused(error)
        }
        state.writerBusy = true
        return .write(WriteGroup(members: members, pending: state.pending, file: file, position: state.flushedPosition))
    }

    /// Throws the first member's failure; `perform` finished every member.
    private static func outcome(of group: WriteGroup) throws {
        for member in group.members {
            guard let result = member.result else { preconditionFailure("a performed group finishes its members") }
            _ = try result.get()
        }
    }
}
