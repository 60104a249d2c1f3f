/// Keeping the epoch checkpoint file (format.md §12) in step with the log.
///
/// The file is rewritten only when the epoch history changes in a way it does not already
/// cover: an append that starts a new epoch (rare: once per leadership change), a truncate
/// or reset, and close. It is written durably (temporary file, fdatasync, rename, directory
/// fsync) *before* the batch that needs it is written, so that whatever a crash leaves of
/// the batches, the file names every epoch among them, possibly with more after the log's
/// end (recovery drops those). Appends that stay in the epoch never touch it.
extension SegmentLog {
    /// The epochs of the batches in the log: each epoch's first offset in it. Exactly the
    /// batches in the log at the moment it is read, under the same lock as `nextOffset`.
    public var epochHistory: EpochHistory { state.withLock { $0.epochHistory } }

    /// The log's next offset and epoch history read together, consistent with each other.
    public var epochHistoryAndNextOffset: (history: EpochHistory, nextOffset: UInt64) {
        state.withLock { ($0.epochHistory, $0.nextOffset) }
    }

    /// A checkpoint rewrite the leader of the writer queue does outside the mutex, holding
    /// `writerBusy`, before the append at the head (which needs it) is written.
    struct CheckpointPlan: Sendable {
        let history: EpochHistory
        let head: LogRequest
    }

    /// Whether an append of `epoch` at `range`, after batches whose last epoch is
    /// `previousEpoch`, keeps the invariant of `LogState.checkpoint`: the file must name
    /// exactly the entry this batch adds (if it starts an epoch) among the entries starting
    /// inside `range`. Entries before `range` already agree (the invariant holds now);
    /// entries after it are dropped by recovery if the log ends before them.
    func checkpointCovers(_ checkpoint: EpochHistory?, epoch: UInt64, after previousEpoch: UInt64?,
                          at range: Range<UInt64>) -> Bool {
        guard let checkpoint else { return false }
        let inRange = checkpoint.entries(startingIn: range)
        if previousEpoch.map({ epoch > $0 }) ?? true {
            return inRange.count == 1 && inRange.first == EpochHistory.Entry(epoch: epoch, startOffset: range.lowerBound)
        }
        return inRange.isEmpty
    }

    /// The leader's I/O for a checkpoint plan; on failure the head append is refused (its
    /// batch was not written) and the file's content is unknown until written again.
    func perform(_ plan: CheckpointPlan) {
        let outcome = Result { try writeEpochCheckpoint(plan.history) }
        locked { state, wakeups in
            state.writerBusy = false
            defer { state.kick(&wakeups) }
            switch outcome {
            case .success:
                state.checkpoint = plan.history
            case .failure(let error):
                state.checkpoint = nil
                guard state.writeQueue.first === plan.head else { return }
                state.writeQueue.removeFirst()
                plan.head.finish(.failure(error))
                wakeups.add(plan.head)
            }
        }
    }

    /// Rewrites the file to the history when it differs (after truncate, reset, retention,
    /// or a failed write). A failure is not the caller's: the log is already right, the
    /// file is reconciled by recovery, and the next append that needs it writes it first.
    func persistEpochHistory(_ state: inout LogState) {
        guard state.checkpoint != state.epochHistory else { return }
        do {
            try writeEpochCheckpoint(state.epochHistory)
            state.checkpoint = state.epochHistory
        } catch {
            state.checkpoint = nil
            Self.logger.warning("\(directory): writing \(Format.epochCheckpointName): \(error); the next epoch change writes it")
        }
    }

    func writeEpochCheckpoint(_ history: EpochHistory) throws {
        try Self.writeDurably(EpochCheckpoint.encoded(history), to: directory + "/" + Format.epochCheckpointName, in: files)
    }
}
