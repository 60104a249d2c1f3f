extension SegmentLog {
    /// Drops every record after `offset`, durably: a follower whose log diverged from its
    /// primary's keeps only the common prefix. `offset` may fall inside a batch; that batch is
    /// rewritten with its leading records (same epoch and timestamp). An `offset` at or past
    /// the last offset changes nothing; one before `firstOffset - 1` throws `offsetOutOfRange`.
    ///
    /// Crash-atomic (finding F2): a crash at any point leaves the log as it was, or holding
    /// the kept records and possibly some of the later ones, never less than the kept
    /// records. Later segments are removed newest first; a cut at a batch boundary is one
    /// ftruncate; a cut inside a batch writes the segment's kept bytes and the shortened batch
    /// to a new file that is synced and renamed over the old one.
    ///
    /// What readers see: the log before or after, never a mix. A cursor or tail that had
    /// read past the cut throws `LogError.truncated`, naming the new next offset.
    /// Appends waiting for durability when it starts are made durable first.
    ///
    /// A failure after the first change on disk poisons the log (`failed`), with its in-memory
    /// state equal to what recovery would find (finding F3).
    public func truncate(after offset: UInt64) throws {
        try exclusive { state, wakeups in try truncateBody(after: offset, &state, &wakeups) }
    }

    func truncateBody(after offset: UInt64, _ state: inout LogState, _ wakeups: inout Wakeups) throws {
        try checkWritable(state)
        guard state.nextOffset > 0, offset < state.nextOffset - 1 else { return }
        let keepNext = offset + 1
        guard keepNext >= state.firstOffset else {
            throw LogError.offsetOutOfRange(requested: offset, firstOffset: state.firstOffset, nextOffset: state.nextOffset)
        }
        try makeWrittenDurable(&state, &wakeups)
        let targetSlot = state.segments.lastIndex { $0.baseOffset < keepNext } ?? 0
        let cut = try planCut(of: state.segments[targetSlot], keepNext: keepNext)
        // The log's last epoch becomes the kept records' (epochs may go back down to it).
        let keptEpoch = keepNext > state.firstOffset ? try epochOfBatch(holding: keepNext - 1, state) : 0
        let replacement = try cut.rewrite.map { try prepareReplacement(of: state.segments[targetSlot], cut: cut, rewrite: $0) }

        // From here on the files change.
        noteTruncation(keepNext: keepNext, &state, &wakeups)
        do {
            try removeSegments(after: targetSlot, &state)
            try applyCut(cut, replacement: replacement, keepNext: keepNext, &state)
        } catch {
            poison(&state, &wakeups, cause: "truncating after offset \(offset): \(error)")
            throw error
        }
        state.lastEpoch = keptEpoch
        // The checkpoint is rewritten after the cut: a crash in between leaves it naming
        // epochs past the log's end, which recovery drops (format.md §12). Before the cut,
        // a crash would leave a checkpoint missing epochs the old log still holds.
        state.epochHistory.truncate(toNextOffset: keepNext)
        assert(state.epochHistory.lastEpoch ?? 0 == keptEpoch, "the history agrees with the batches on the kept epoch")
        persistEpochHistory(&state)
        state.check()
        if options.preallocateSegments {
            // Only space reservation: the log is correct without it.
            do { try state.active.handle.file().preallocate(to: max(Int64(options.segmentBytes), state.active.endPosition)) } catch {
                Self.logger.warning("\(directory): preallocating \(state.active.handle.path) after truncate: \(error)")
            }
        }
    }

    /// Tells readers that records from `keepNext` on are going: bumps the generation before
    /// any file changes, remembers the cut, and wakes the tails.
    func noteTruncation(keepNext: UInt64, _ state: inout LogState, _ wakeups: inout Wakeups) {
        let generation = truncationGeneration.add(1, ordering: .sequentiallyConsistent).newValue
        state.truncations.append((generation, keepNext))
        if state.truncations.count > Self.truncationsKept {
            // Fold the two oldest into one: a reader older than both is checked against the
            // lower cut, which is conservative but never below a real cut.
            let oldest = state.truncations.removeFirst()
            state.truncations[0].keepNext = min(state.truncations[0].keepNext, oldest.keepNext)
        }
        wakeups.tails += state.takeTailWaiters()
    }

    /// How many truncations are remembered one by one; older ones are folded into the oldest
    /// entry, so an old reader is judged by the lowest cut among them.
    static let truncationsKept = 64

    /// Flushes and syncs, so every written append is durable before records are removed:
    /// an `.fsync` append in flight is then acknowledged truthfully, and no waiter's target
    /// can later be met by other records at its offsets.
    func makeWrittenDurable(_ state: inout LogState, _ wakeups: inout Wakeups) throws {
        try flushPending(&state)
        do { try state.active.handle.file().sync() } catch {
            markFailed(&state, &wakeups, cause: "syncing \(state.active.handle.path) before truncating: \(error)")
            throw error
        }
        state.durableNextOffset = state.flushedNextOffset
        state.durablePosition = state.flushedPosition
        state.finishDurableWaiters(&wakeups)
    }

    /// Where the target segment is cut, and the shortened batch when the cut falls inside one.
    struct Cut {
        var position: Int64
        var rewrite: StoredBatch?
        var newestTimestampMs: Int64?
        var index: SparseIndex
    }

    private func planCut(of segment: SegmentInfo, keepNext: UInt64) throws -> Cut {
        let index = try segment.index ?? SparseIndex(entries: files.rebuildIndex(
            of: segment.handle, endPosition: segment.endPosition, intervalBytes: options.indexIntervalBytes).entries)
        var cut = Cut(position: segment.endPosition, rewrite: nil, newestTimestampMs: segment.newestTimestampMs, index: index)
        guard keepNext < segment.nextOffset else { return cut }
        let file = try segment.handle.file()
        let start = index.floor(keepNext)?.position ?? Int64(Format.segmentHeaderBytes)
        var scanner = try SegmentScanner(file: file, from: start, limit: segment.endPosition, bufferBytes: 64 << 10)
        while true {
            switch try scanner.next() {
            case .batch(let batch, let position):
                if batch.header.nextOffset <= keepNext {
                    cut.newestTimestampMs = batch.header.timestampMs
                    continue
                }
                cut.position = position
                if batch.header.firstOffset < keepNext {
                    let kept = try batch.decode(file: file.path, position: position)
                        .prefix(Int(keepNext - batch.header.firstOffset)).map { Array($0.bytes) }
                    var shortened = StoredBatch(encoding: kept, codec: options.compression)
                    shortened.seal(firstOffset: batch.header.firstOffset, leaderEpoch: batch.header.leaderEpoch,
                                   timestampMs: batch.header.timestampMs)
                    cut.rewrite = shortened
                    cut.newestTimestampMs = batch.header.timestampMs
                } else if position == Int64(Format.segmentHeaderBytes) {
                    cut.newestTimestampMs = nil
                }
                cut.index.truncate(toPosition: position)
                return cut
            case .end(let position):
                throw LogError.corruption(file: file.path, position: position, offset: keepNext,
                                          reason: "the segment ends before offset \(keepNext), which the log says it holds")
            case .invalid(let position, let reason):
                throw LogError.corruption(file: file.path, position: position, offset: keepNext, reason: reason)
            }
        }
    }

    /// The leader epoch of the batch holding `offset`, read from the files (the log's state
    /// keeps only the last epoch).
    private func epochOfBatch(holding offset: UInt64, _ state: LogState) throws -> UInt64 {
        let segment = state.segments[state.segments.lastIndex { $0.baseOffset <= offset } ?? 0]
        let entries = try segment.index?.entries
            ?? (files.loadIndex(baseOffset: segment.baseOffset, segmentBytes: segment.endPosition)
                ?? files.rebuildIndex(of: segment.handle, endPosition: segment.endPosition, intervalBytes: options.indexIntervalBytes)).entries
        let start = SparseIndex(entries: entries).floor(offset)?.position ?? Int64(Format.segmentHeaderBytes)
        var scanner = try SegmentScanner(file: segment.handle.file(), from: start, limit: segment.endPosition, bufferBytes: 64 << 10)
        while true {
            switch try scanner.next() {
            case .batch(let batch, _):
                if batch.header.nextOffset > offset { return batch.header.leaderEpoch }
            case .end(let position), .invalid(let position, _):
                throw LogError.corruption(file: segment.handle.path, position: position, offset: offset,
                                          reason: "no batch holds offset \(offset), which the log says it holds")
            }
        }
    }

    /// Writes the segment's bytes before the cut and the shortened batch to a temporary file
    /// and syncs it. Nothing in the log changes yet; a failure removes the temporary file.
    private func prepareReplacement(of segment: SegmentInfo, cut: Cut, rewrite: StoredBatch) throws -> String {
        let temporaryPath = segment.handle.path + Format.temporarySuffix
        do {
            let source = try segment.handle.file()
            let target = try files.fileSystem.openFile(temporaryPath, create: true)
            try target.truncate(to: 0)
            let end = cut.position + Int64(rewrite.bytes.count)
            if options.preallocateSegments { try target.preallocate(to: max(Int64(options.segmentBytes), end)) }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var position: Int64 = 0
            while position < cut.position {
                let wanted = Int(min(Int64(buffer.count), cut.position - position))
                let got = try buffer.withUnsafeMutableBytes {
                    try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<wanted]), at: position)
                }
                guard got == wanted else {
                    throw LogError.corruption(file: source.path, position: position + Int64(got), offset: nil,
                                              reason: "the segment is shorter than the log's end")
                }
                try buffer.withUnsafeBytes { try target.write(UnsafeRawBufferPointer(rebasing: $0[0..<got]), at: position) }
                position += Int64(got)
            }
            try rewrite.bytes.withUnsafeBytes { try target.write($0, at: cut.position) }
            try target.sync()
        } catch {
            try? files.fileSystem.removeFile(temporaryPath)
            throw error
        }
        return temporaryPath
    }

    /// Removes the segments after `slot`, newest first, so a crash part-way leaves a prefix.
    private func removeSegments(after slot: Int, _ state: inout LogState) throws {
        guard state.segments.count > slot + 1 else { return }
        while state.segments.count > slot + 1 {
            let removed = state.active
            try files.fileSystem.removeFile(removed.handle.path)
            try? files.fileSystem.removeFile(files.indexPath(removed.baseOffset))
            state.removeLastSegment()
            adoptActiveEnd(&state)
        }
        try files.fileSystem.syncDirectory(directory)
    }

    private func applyCut(_ cut: Cut, replacement: String?, keepNext: UInt64, _ state: inout LogState) throws {
        var segment = state.active
        // The target is active again: an index file written when it was sealed no longer describes it.
        try? files.fileSystem.removeFile(files.indexPath(segment.baseOffset))
        if let replacement, let rewrite = cut.rewrite {
            try files.fileSystem.rename(replacement, to: segment.handle.path)
            // A new handle: the old one's descriptor is the replaced file's, which readers may still hold.
            let handle = files.segmentFile(segment.baseOffset)
            handle.pin()
            segment.handle.unpin()
            segment = SegmentInfo(baseOffset: segment.baseOffset, handle: handle, endPosition: cut.position + Int64(rewrite.bytes.count), nextOffset: keepNext,
                                  index: cut.index, newestTimestampMs: cut.newestTimestampMs)
            state.active = segment
            adoptActiveEnd(&state)
            try files.fileSystem.syncDirectory(directory)
        } else if cut.position < segment.endPosition {
            let file = try segment.handle.file()
            try file.truncate(to: cut.position)
            segment.endPosition = cut.position
            segment.nextOffset = max(keepNext, segment.baseOffset)
            segment.index = cut.index
            segment.newestTimestampMs = cut.newestTimestampMs
            state.active = segment
            adoptActiveEnd(&state)
            try file.sync()
        } else {
            state.active.index = cut.index
        }
        precondition(state.nextOffset == keepNext, "truncate ends the log at the kept offset")
    }

    /// The active segment's end, which is on disk, becomes the log's flushed and durable end.
    func adoptActiveEnd(_ state: inout LogState) {
        state.flushedPosition = state.active.endPosition
        state.durablePosition = state.active.endPosition
        state.flushedNextOffset = state.active.nextOffset
        state.durableNextOffset = state.active.nextOffset
        // The batches past it are gone (a truncate or reset failing part-way stops here too).
        state.epochHistory.truncate(toNextOffset: state.active.nextOffset)
        // Write-back starts again from the new end, where the next bytes go.
        if let started = state.writebackStarted, started.position > state.flushedPosition {
            state.writebackStarted = (started.segmentBase, state.flushedPosition)
        }
    }

    /// The lowest first-removed offset of the truncations after `generation`; nil if none.
    func lowestTruncation(since generation: UInt64) -> UInt64? {
        state.withLock { state in
            // Entries are in generation order; an entry folds in every truncation up to its
            // generation that is no longer listed, so the first entry past `generation` counts.
            state.truncations.filter { $0.generation > generation }.map(\.keepNext).min()
        }
    }
}
