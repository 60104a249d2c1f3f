/// The direct path for `.os` appends from threads: the appender writes its own batch while
/// holding `directWriteLock`, a barging mutex, instead of queueing for a leader and sleeping
/// until the leader has written it. Measured against the minimal C loop of `append-os-8`'s
/// floor, which does exactly this; see Benchmarks/README.md.
///
/// It is the queue's write group of one, taken without joining the queue: under the log's
/// mutex the appender checks that the queue is empty and no writer is busy, takes its
/// offsets and marks the writer busy, then seals, writes and publishes as a leader does
/// (`perform(_: WriteGroup)`). Everything else (a queue that is not empty, a busy leader, a
/// roll, an epoch the checkpoint file lacks) goes through the queue as before, so exclusive
/// operations and `.fsync` appends keep their order and are never overtaken: once anything
/// waits in the queue, direct appenders queue behind it.
extension SegmentLog {
    private enum DirectPlan {
        case write(WriteGroup)
        case finished
        case queue
    }

    /// Appends through the direct path when it may, else through the queue.
    func submitDirect(_ append: LogRequest.Append) throws -> Range<UInt64> {
        precondition(append.durability == .os, "the direct path is for .os appends")
        let request = LogRequest(append: append)
        let wrote = directWriteLock.withLock { () -> Bool in
            switch locked({ state, wakeups in planDirectWrite(request, &state, &wakeups) }) {
            case .write(let group):
                perform(group)
                return true
            case .finished:
                return true
            case .queue:
                return false
            }
        }
        guard wrote else { return try submit(request) }
        guard let result = request.result else { preconditionFailure("a direct write finishes its request") }
        return try result.get()
    }

    /// Under the mutex: `request`'s write group of one, if nothing is queued or being written
    /// and its batch fits in the active segment; `.finished` if it is refused.
    private func planDirectWrite(_ request: LogRequest, _ state: inout LogState, _ wakeups: inout Wakeups) -> DirectPlan {
        guard state.writeQueue.isEmpty, !state.writerBusy, let append = request.append else { return .queue }
        if let refusal = refusal(of: append, state: state, nextOffset: state.nextOffset, lastEpoch: state.lastEpoch) {
            request.finish(.failure(refusal))
            return .finished
        }
        let end = state.active.endPosition
        if end > Int64(Format.segmentHeaderBytes), end + Int64(append.batch.bytes.count) > Int64(options.segmentBytes) {
            return .queue  // a roll: the queue's leader does it
        }
        let first = state.nextOffset
        let count = UInt64(append.batch.header.recordCount)
        if !checkpointCovers(state.checkpoint, epoch: append.epoch, after: state.epochHistory.lastEpoch, at: first..<(first + count)) {
            return .queue  // the epoch checkpoint must be rewritten first: the queue's leader does it
        }
        let file: any StorageFile
        do {
            file = try state.active.handle.file()
        } catch {
            request.finish(.failure(error))
            return .finished
        }
        request.writtenRange = first..<(first + count)
        state.writerBusy = true
        return .write(WriteGroup(members: [request], pending: state.pending, file: file, position: state.flushedPosition))
    }
}
