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

    /// Runs `body` under the mutex, then wakes whoever it decided to wake.
    func locked<T>(_ body: (inout LogState, inout Wakeups) throws -> T) rethrows -> T {
        var wakeups = Wakeups()
        defer { wakeups.perform() }
        return try state.withLock { state in try body(&state, &wakeups) }
    }

    /// Appends a batch through the pipeline; returns its offsets once `durability` is reached.
    func submit(_ append: LogRequest.Append) throws -> Range<UInt64> {
        let request = LogRequest(append: append)
        locked { state, _ in state.writeQueue.append(request) }
        return try drive(request)
    }

    /// Blocks until every offset below `target` is on disk (or the log has failed).
    func waitDurable(through target: UInt64) throws {
        let request = LogRequest(append: nil)
        let waiting = try locked { state, _ -> Bool in
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
        if waiting { _ = try drive(request) }
    }

    /// Runs `body` alone: after every earlier queued request, with no write group and no
    /// fdatasync in flight. `body` runs under the mutex and may do I/O.
    func exclusive<T>(_ body: (inout LogState, inout Wakeups) throws -> T) throws -> T {
        let ticket = LogRequest(append: nil)
        locked { state, _ in state.writeQueue.append(ticket) }
        while true {
            let outcome: Result<T, any Error>? = locked { state, wakeups in
                guard state.writeQueue.first === ticket, !state.writerBusy, !state.syncBusy else {
                    ticket.isSleeping = true
                    return nil
                }
                state.writeQueue.removeFirst()
                defer { state.kick(&wakeups) }
                return Result { try body(&state, &wakeups) }
            }
            if let outcome { return try outcome.get() }
            ticket.sleep()
        }
    }

    /// Drives `request` on the calling thread until it is finished: leading a write group or
    /// an fdatasync when it may, sleeping otherwise.
    private func drive(_ request: LogRequest) throws -> Range<UInt64> {
        while true {
            switch decide(request) {
            case .finished(let result):
                return try result.get()
            case .sleep:
                request.sleep()
            case .again:
                continue
            case .write(let group):
                perform(group)
            case .sync(let sync):
                perform(sync)
            }
        }
    }

    /// Drives an async request: it leads write groups on its task (a pwrite is short) but
    /// hands the fdatasync it leads to `syncQueue`, so no task thread waits on the disk.
    func driveAsync(_ request: LogRequest) async throws -> Range<UInt64> {
        precondition(request.isAsync)
        while true {
            switch decide(request) {
            case .finished(let result):
                return try result.get()
            case .sleep:
                await request.sleep()
            case .again:
                continue
            case .write(let group):
                perform(group)
            case .sync(let sync):
                syncQueue.async { self.perform(sync) }
            }
        }
    }

    private enum Step {
        case finished(Result<Range<UInt64>, any Error>)
        case sleep
        case again
        case write(WriteGroup)
        case sync(SyncPoint)
    }

    /// An fdatasync to run: everything flushed when it was decided.
    struct SyncPoint: Sendable {
        let file: any StorageFile
        let segmentBase: UInt64
        let offset: UInt64
        let position: Int64
    }

    /// Under the mutex: what `request` does next.
    private func decide(_ request: LogRequest) -> Step {
        locked { state, wakeups in
            if let result = request.result { return .finished(result) }
            switch request.phase {
            case .finished:
                preconditionFailure("a finished request has a result")
            case .queued:
                guard state.writeQueue.first === request, !state.writerBusy else { break }
                if let group = planWriteGroup(&state, &wakeups) { return .write(group) }
                return .again  // finished while planning (buffered, or refused)
            case .awaitingDurable(let target):
                // A sync covers at most what is flushed: a waiter past it would sync forever.
                precondition(target <= state.flushedNextOffset, "a durability waiter's records are written")
                guard !state.syncBusy, !(state.writeQueue.first?.isExclusive ?? false) else { break }
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
            request.isSleeping = true
            return .sleep
        }
    }

    /// Runs a group-commit fdatasync and finishes the waiters it covers.
    private func perform(_ sync: SyncPoint) {
        var failure: (any Error)?
        do { try sync.file.sync() } catch { failure = error }
        locked { state, wakeups in
            state.syncBusy = false
            state.groupCommitSyncs += 1
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
            state.kick(&wakeups)
        }
    }

    // MARK: Write groups

    /// What a leader writes outside the mutex: the buffered bytes, then its members' batches,
    /// from `position` of `file`.
    struct WriteGroup {
        var members: [LogRequest]
        var pending: [UInt8]
        var file: any StorageFile
        var position: Int64
    }

    /// Groups the appends at the head of the queue (the caller's first). Returns nil when
    /// nothing is left to write outside the mutex: every member was refused, or the group
    /// went into the process buffer.
    private func planWriteGroup(_ state: inout LogState, _ wakeups: inout Wakeups) -> WriteGroup? {
        var members: [LogRequest] = []
        var groupBytes = 0
        var allBuffered = true
        var nextOffset = state.nextOffset
        var lastEpoch = state.lastEpoch
        while let head = state.writeQueue.first, let append = head.append {
            if let refusal = refusal(of: append, state: state, nextOffset: nextOffset, lastEpoch: lastEpoch) {
                state.writeQueue.removeFirst()
                head.finish(.failure(refusal))
                wakeups.add(head)
                continue
            }
            let size = append.batch.bytes.count
            let end = state.active.endPosition + Int64(groupBytes)
            if end > Int64(Format.segmentHeaderBytes), end + Int64(size) > Int64(options.segmentBytes) {
                if !members.isEmpty { break }  // the next leader rolls
                do {
                    try roll(&state, &wakeups)
                } catch {
                    state.writeQueue.removeFirst()
                    head.finish(.failure(error))
                    wakeups.add(head)
                    continue
                }
            }
            if !members.isEmpty, groupBytes + size > Self.writeGroupBytesMax { break }
            state.writeQueue.removeFirst()
            let count = UInt64(append.batch.header.recordCount)
            head.writtenRange = nextOffset..<(nextOffset + count)
            members.append(head)
            groupBytes += size
            nextOffset += count
            lastEpoch = append.epoch
            allBuffered = allBuffered && append.durability == .buffered
        }
        if members.isEmpty {
            state.kick(&wakeups)
            return nil
        }
        if allBuffered, state.pending.count + groupBytes < options.processBufferBytes {
            for member in members {
                seal(member)
                state.pending.append(contentsOf: member.append!.batch.bytes)
            }
            publish(members, &state, &wakeups)
            state.kick(&wakeups)
            return nil
        }
        do {
            let group = WriteGroup(members: members, pending: state.pending, file: try state.active.handle.file(),
                                   position: state.flushedPosition)
            state.writerBusy = true
            return group
        } catch {
            for member in members {
                member.finish(.failure(error))
                wakeups.add(member)
            }
            state.kick(&wakeups)
            return nil
        }
    }

    /// Why an append cannot go at `nextOffset` after `lastEpoch`, if it cannot.
    private func refusal(of append: LogRequest.Append, state: LogState, nextOffset: UInt64, lastEpoch: UInt64) -> LogError? {
        if state.isClosed { return .closed }
        if let failure = state.failure { return .failed(cause: failure) }
        if append.epoch < lastEpoch { return .epochRegression(epoch: append.epoch, lastEpoch: lastEpoch) }
        if append.keepHeader, append.batch.header.firstOffset != nextOffset {
            return .nonContiguousBatch(expectedOffset: nextOffset, batchOffset: append.batch.header.firstOffset)
        }
        let count = UInt64(append.batch.header.recordCount)
        if nextOffset > UInt64.max - count { return .offsetOutOfRange(requested: nextOffset, firstOffset: state.firstOffset, nextOffset: nextOffset) }
        return nil
    }

    /// Gives a member's batch its final header (a stored batch keeps the one it has).
    private func seal(_ member: LogRequest) {
        guard !member.append!.keepHeader else { return }
        member.append!.batch.seal(firstOffset: member.writtenRange.lowerBound, leaderEpoch: member.append!.epoch,
                                  timestampMs: member.append!.timestampMs)
    }

    /// The leader's I/O: seal, one write, then publish under the mutex.
    private func perform(_ group: WriteGroup) {
        var writeError: (any Error)?
        for member in group.members { seal(member) }
        do {
            if group.pending.isEmpty, group.members.count == 1 {
                try group.members[0].append!.batch.bytes.withUnsafeBytes { try group.file.write($0, at: group.position) }
            } else {
                var bytes = group.pending
                for member in group.members { bytes.append(contentsOf: member.append!.batch.bytes) }
                try bytes.withUnsafeBytes { try group.file.write($0, at: group.position) }
            }
        } catch {
            writeError = error
        }
        locked { state, wakeups in
            state.writerBusy = false
            // A failed fdatasync during the write rolled the log back; nothing here counts.
            if let error = writeError ?? state.failure.map({ LogError.failed(cause: $0) }) {
                for member in group.members {
                    member.finish(.failure(error))
                    wakeups.add(member)
                }
                if writeError != nil, state.failure == nil { discardTornWrite(group, &state, &wakeups) }
                state.kick(&wakeups)
                return
            }
            precondition(state.flushedPosition == group.position, "the log's end moved under a busy writer")
            state.pending.removeAll(keepingCapacity: true)
            publish(group.members, &state, &wakeups)
            state.flushedPosition = state.active.endPosition
            state.flushedNextOffset = state.active.nextOffset
            state.check()
            state.kick(&wakeups)
        }
    }

    /// A write that failed part-way may have left whole batches past the log's end; a later,
    /// shorter write would leave them intact behind it, for recovery to resurrect or to call
    /// damage. Cutting the file back to the end removes them; if even that fails, the file
    /// is not what the log says, so the log refuses writes.
    private func discardTornWrite(_ group: WriteGroup, _ state: inout LogState, _ wakeups: inout Wakeups) {
        do {
            try group.file.truncate(to: group.position)
        } catch {
            markFailed(&state, &wakeups, cause: "cutting a failed write back to byte \(group.position) of \(group.file.path): \(error)")
            return
        }
        if options.preallocateSegments {
            try? group.file.preallocate(to: max(Int64(options.segmentBytes), group.position))
        }
    }

    /// Makes the members part of the log's end, finishes those that need no more, and queues
    /// `.fsync` members for durability.
    private func publish(_ members: [LogRequest], _ state: inout LogState, _ wakeups: inout Wakeups) {
        for member in members {
            let append = member.append!
            let header = append.batch.header
            precondition(header.firstOffset == state.nextOffset, "batches must continue the log")
            let position = state.active.endPosition
            state.active.index?.noteBatch(firstOffset: header.firstOffset, position: position,
                                          intervalBytes: options.indexIntervalBytes)
            state.active.endPosition = position + Int64(append.batch.bytes.count)
            state.active.nextOffset = header.nextOffset
            state.active.newestTimestampMs = header.timestampMs
            state.lastEpoch = append.epoch
            if append.durability == .fsync, state.durableNextOffset < header.nextOffset {
                member.phase = .awaitingDurable(target: header.nextOffset)
                state.durabilityWaiters.append(member)
            } else {
                member.finish(.success(member.writtenRange))
                wakeups.add(member)
            }
        }
        wakeups.tails += state.takeTailWaiters()
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
