extension SegmentLog {
    /// Empties the log and restarts it at `offset`: the next append gets `offset`, and
    /// `firstOffset == nextOffset == offset`. A follower does this when its primary no longer
    /// holds what it needs (full resync). Exclusive, like `truncate`: appends waiting for
    /// durability when it starts are made durable first, then removed with the rest.
    ///
    /// Crash-safe (format.md §8, "Reset"): a crash at any point leaves, after reopening, the
    /// old log, a prefix of it (its newest segments removed), or the empty log at `offset`.
    /// None of them holds a record the old log did not; the first two are what a follower
    /// would be reset again from.
    ///
    /// What readers see: a cursor or tail that had read anything, or waits at an offset
    /// other than `offset`, throws `LogError.truncated`. A failure after the first file is
    /// removed poisons the log (`failed`), its in-memory state what a reopen would find.
    public func reset(startingAt offset: UInt64) throws {
        try exclusive { state, wakeups in try resetBody(startingAt: offset, &state, &wakeups) }
    }

    /// Empties the log and restarts it at `offset`; see the blocking form.
    public func reset(startingAt offset: UInt64) async throws {
        try await exclusiveAsync { state, wakeups in try resetBody(startingAt: offset, &state, &wakeups) }
    }

    func resetBody(startingAt offset: UInt64, _ state: inout LogState, _ wakeups: inout Wakeups) throws {
        try checkWritable(state)
        try makeWrittenDurable(&state, &wakeups)
        // The new segment, written and synced under its temporary name: nothing changes yet,
        // and a failure here leaves nothing behind.
        let prepared = try files.prepareSegment(
            baseOffset: offset, preallocateBytes: options.preallocateSegments ? Int64(options.segmentBytes) : nil)
        // From here on the files change. Every record goes; a reader waiting at the old
        // start below `offset` is caught by the cursor's check against the new first offset.
        noteTruncation(keepNext: min(offset, state.firstOffset), &state, &wakeups)
        let fresh = SegmentInfo(baseOffset: offset, handle: files.segmentFile(offset), endPosition: Int64(Format.segmentHeaderBytes),
                                nextOffset: offset, index: SparseIndex(), newestTimestampMs: nil)
        var removedAll = false
        do {
            // Newest first, so a crash part-way leaves a prefix of the old log. Once the last
            // one is gone the directory holds no segment but the prepared one, which the next
            // open puts in place (`finishInterruptedReset`).
            while true {
                let removed = state.active
                try? files.fileSystem.removeFile(files.indexPath(removed.baseOffset))
                try files.fileSystem.removeFile(removed.handle.path)
                if state.segments.count == 1 { break }
                state.removeLastSegment()
                adoptActiveEnd(&state)
            }
            removedAll = true
            try files.fileSystem.syncDirectory(directory)
            try files.fileSystem.rename(prepared.temporaryPath, to: prepared.finalPath)
            try files.fileSystem.syncDirectory(directory)
        } catch {
            if removedAll { becomeEmpty(at: fresh, &state) }
            poison(&state, &wakeups, cause: "resetting to offset \(offset): \(error)")
            throw error
        }
        becomeEmpty(at: fresh, &state)
        persistEpochHistory(&state)
        state.check()
    }

    /// The in-memory state of the empty log at `segment`.
    private func becomeEmpty(at segment: SegmentInfo, _ state: inout LogState) {
        state.replaceAllSegments(with: segment)
        adoptActiveEnd(&state)
        state.epochHistory = EpochHistory()
        state.lastEpoch = 0
    }

    /// At open, when the directory holds no segment: the one temporary file that holds an
    /// intact segment header named for its base offset is a reset's new segment (or a new
    /// log's first one), whose old segments are all gone. It is renamed into place and the
    /// directory synced; nil when there is none.
    static func finishInterruptedReset(_ temporaries: [String], in files: SegmentDirectory) throws
        -> (name: String, baseOffset: UInt64)? {
        let candidates = temporaries.compactMap { name -> (String, UInt64)? in
            Format.baseOffset(ofSegmentName: String(name.dropLast(Format.temporarySuffix.count))).map { (name, $0) }
        }
        guard candidates.count == 1, let (name, base) = candidates.first else { return nil }
        let path = files.path + "/" + name
        let file = try files.fileSystem.openFileForReading(path)
        var bytes = [UInt8](repeating: 0, count: Format.segmentHeaderBytes)
        let got = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        guard got == Format.segmentHeaderBytes,
            let header = try? bytes.withUnsafeBytes({ try SegmentHeader.decode($0, file: path) }), header.baseOffset == base
        else { return nil }
        try files.fileSystem.rename(path, to: files.segmentPath(base))
        try files.fileSystem.syncDirectory(files.path)
        return (name, base)
    }
}
