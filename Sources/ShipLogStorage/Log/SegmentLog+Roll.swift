extension SegmentLog {
    /// Seals the active segment (flushed, cut to its length, synced, indexed) and starts a
    /// new one. All or nothing (finding F4): a failure before the new file is in place leaves
    /// the log as it was, still appending to the same segment; a failure after it is in place
    /// (the directory fsync) poisons the log with the new segment in its list, which is what
    /// recovery finds.
    func roll(_ state: inout LogState, _ wakeups: inout Wakeups) throws {
        try flushPending(&state)
        let sealed = state.active
        do {
            let file = try sealed.handle.file()
            try file.truncate(to: sealed.endPosition)
            try file.sync()
        } catch {
            markFailed(&state, &wakeups, cause: "sealing \(sealed.handle.path): \(error)")
            throw LogError.failed(cause: "\(error)")
        }
        state.durableNextOffset = sealed.nextOffset
        state.durablePosition = sealed.endPosition
        state.finishDurableWaiters(&wakeups)
        // The index is a cache checked on load: failing to write it loses nothing.
        do { try files.writeIndex(of: sealed, intervalBytes: options.indexIntervalBytes) } catch {
            Self.logger.warning("\(directory): index of \(sealed.handle.path) not written: \(error)")
        }
        let prepared = try files.prepareSegment(
            baseOffset: sealed.nextOffset,
            preallocateBytes: options.preallocateSegments ? Int64(options.segmentBytes) : nil)
        let next: SegmentInfo
        do {
            next = try files.install(prepared)
        } catch let failure as SegmentDirectory.InstallFailure {
            // Not renamed into place: nothing changed, the log goes on in the same segment.
            guard let installed = failure.installed else { throw failure.cause }
            appendSegment(installed, &state)
            poison(&state, &wakeups, cause: "starting segment \(prepared.finalPath): \(failure.cause)")
            throw LogError.failed(cause: "\(failure.cause)")
        }
        appendSegment(next, &state)
    }

    private func appendSegment(_ next: SegmentInfo, _ state: inout LogState) {
        precondition(next.baseOffset == state.nextOffset, "a new segment starts at the log's next offset")
        state.appendSegment(next)
        state.flushedPosition = next.endPosition
        state.durablePosition = next.endPosition
        state.flushedNextOffset = next.nextOffset
        state.durableNextOffset = next.nextOffset
    }
}
