extension SegmentLog {
    /// What a roll needs, taken under the mutex by the leader that must roll; the I/O runs
    /// outside it while the leader holds `writerBusy`, so appenders, readers and tails are
    /// never held up by its two fdatasyncs, and an async leader hands it to `syncQueue`.
    struct RollPlan: Sendable {
        /// The active segment being sealed, with its in-memory end.
        let sealed: SegmentInfo
        /// Buffered bytes still to write at `pendingPosition` before sealing.
        let pending: [UInt8]
        let pendingPosition: Int64
        /// The append that did not fit: refused if the roll fails.
        let head: LogRequest
    }

    /// Seals the active segment (flushed, cut to its length, synced, indexed) and starts a
    /// new one. All or nothing (finding F4): a failure before the new file is in place leaves
    /// the log as it was, still appending to the same segment; a failure after it is in place
    /// (the directory fsync) poisons the log with the new segment in its list, which is what
    /// recovery finds.
    func perform(_ roll: RollPlan) {
        let sealed = roll.sealed
        var sealingFailure: (any Error)?
        // The sealing fdatasync failed (not only the cut before it): the kernel may have
        // dropped written pages, so only the durable end can be trusted.
        var sealingSyncFailed = false
        var outcome: Result<SegmentInfo, any Error>
        do {
            let file = try sealed.handle.file()
            if !roll.pending.isEmpty { try roll.pending.withUnsafeBytes { try file.write($0, at: roll.pendingPosition) } }
            do {
                try file.truncate(to: sealed.endPosition)
            } catch {
                sealingFailure = error
                throw error
            }
            do {
                try file.sync()
            } catch {
                sealingFailure = error
                sealingSyncFailed = true
                throw error
            }
            // The index is a cache checked on load: failing to write it loses nothing.
            do { try files.writeIndex(of: sealed, intervalBytes: options.indexIntervalBytes) } catch {
                Self.logger.warning("\(directory): index of \(sealed.handle.path) not written: \(error)")
            }
            let prepared = try files.prepareSegment(
                baseOffset: sealed.nextOffset,
                preallocateBytes: options.preallocateSegments ? Int64(options.segmentBytes) : nil)
            outcome = Result { try files.install(prepared) }
        } catch {
            outcome = .failure(error)
        }
        locked { state, wakeups in
            state.writerBusy = false
            defer { state.kick(&wakeups) }
            if let failure = state.failure {
                // An fdatasync failed meanwhile and rolled the log back: nothing here counts.
                refuse(roll.head, LogError.failed(cause: failure), &state, &wakeups)
                return
            }
            precondition(state.active.baseOffset == sealed.baseOffset && state.active.endPosition == sealed.endPosition,
                         "the active segment changed under a busy writer")
            if let sealingFailure {
                let cause = "sealing \(sealed.handle.path): \(sealingFailure)"
                if sealingSyncFailed {
                    markFailed(&state, &wakeups, cause: cause)
                } else {
                    // Only the cut failed: the batches and the buffer written above are in the
                    // file, as a reopen finds them (preallocated zeroes past them read as the end).
                    state.pending.removeAll(keepingCapacity: true)
                    state.flushedPosition = sealed.endPosition
                    state.flushedNextOffset = sealed.nextOffset
                    poison(&state, &wakeups, cause: cause)
                }
                refuse(roll.head, LogError.failed(cause: "\(sealingFailure)"), &state, &wakeups)
                return
            }
            // Sealed: everything up to its end is written and synced.
            state.pending.removeAll(keepingCapacity: true)
            state.flushedPosition = sealed.endPosition
            state.flushedNextOffset = sealed.nextOffset
            state.durablePosition = sealed.endPosition
            state.durableNextOffset = sealed.nextOffset
            state.finishDurableWaiters(&wakeups)
            switch outcome {
            case .success(let next):
                appendSegment(next, &state)
            case .failure(let failure as SegmentDirectory.InstallFailure):
                if let installed = failure.installed {
                    appendSegment(installed, &state)
                    poison(&state, &wakeups, cause: "starting segment \(installed.handle.path): \(failure.cause)")
                    refuse(roll.head, LogError.failed(cause: "\(failure.cause)"), &state, &wakeups)
                } else {
                    // Not renamed into place: nothing changed, the log goes on in the same segment.
                    refuse(roll.head, failure.cause, &state, &wakeups)
                }
            case .failure(let error):
                refuse(roll.head, error, &state, &wakeups)
            }
        }
    }

    /// Finishes the append that needed the roll with `error`, if it still waits at the head.
    private func refuse(_ head: LogRequest, _ error: any Error, _ state: inout LogState, _ wakeups: inout Wakeups) {
        guard state.writeQueue.first === head else { return }
        state.writeQueue.removeFirst()
        head.finish(.failure(error))
        wakeups.add(head)
    }

    private func appendSegment(_ next: SegmentInfo, _ state: inout LogState) {
        precondition(next.baseOffset == state.nextOffset, "a new segment starts at the log's next offset")
        state.appendSegment(next)
        state.flushedPosition = next.endPosition
        state.durablePosition = next.endPosition
        state.flushedNextOffset = next.nextOffset
        state.durableNextOffset = next.nextOffset
        // A new file: its write-back starts at its first byte. Keyed by base offset alone, a
        // segment a truncation removed whole would otherwise hand its position to this one,
        // which has the same base offset when the log grows back past it.
        state.writebackStarted = nil
    }
}
