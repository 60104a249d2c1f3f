/// Write groups: what the leader of the writer queue does (see `WritePipeline.swift`).
extension SegmentLog {
    /// What a leader writes outside the mutex: the buffered bytes, then its members' batches,
    /// from `position` of `file`.
    struct WriteGroup {
        var members: [LogRequest]
        var pending: [UInt8]
        var file: any StorageFile
        var position: Int64
    }

    /// What the leader does outside the mutex.
    enum WritePlan {
        /// Write this group.
        case group(WriteGroup)
        /// Roll first (the head does not fit); the leader plans again afterwards.
        case roll(RollPlan)
        /// Rewrite the epoch checkpoint first (the head starts an epoch the file lacks); the
        /// leader plans again afterwards.
        case checkpoint(CheckpointPlan)
        /// Nothing: every member was refused, or the group went into the process buffer.
        case none
    }

    /// Groups the appends at the head of the queue (the caller's first), or asks for a roll.
    func planWriteGroup(_ state: inout LogState, _ wakeups: inout Wakeups) -> WritePlan {
        var members: [LogRequest] = []
        var groupBytes = 0
        var allBuffered = true
        var nextOffset = state.nextOffset
        var lastEpoch = state.lastEpoch
        var historyEpoch = state.epochHistory.lastEpoch
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
                state.writerBusy = true
                return .roll(RollPlan(sealed: state.active, pending: state.pending, pendingPosition: state.flushedPosition,
                                      head: head))
            }
            if !members.isEmpty, groupBytes + size > Self.writeGroupBytesMax { break }
            let count = UInt64(append.batch.header.recordCount)
            if !checkpointCovers(state.checkpoint, epoch: append.epoch, after: historyEpoch, at: nextOffset..<(nextOffset + count)) {
                if !members.isEmpty { break }  // the next leader writes the checkpoint
                var history = state.epochHistory
                history.record(epoch: append.epoch, startOffset: nextOffset)
                state.writerBusy = true
                return .checkpoint(CheckpointPlan(history: history, head: head))
            }
            historyEpoch = append.epoch
            state.writeQueue.removeFirst()
            head.writtenRange = nextOffset..<(nextOffset + count)
            members.append(head)
            groupBytes += size
            nextOffset += count
            lastEpoch = append.epoch
            allBuffered = allBuffered && append.durability == .buffered
        }
        if members.isEmpty {
            state.kick(&wakeups)
            return .none
        }
        if allBuffered, state.pending.count + groupBytes < options.processBufferBytes {
            for member in members {
                seal(member)
                state.pending.append(contentsOf: member.append!.batch.bytes)
            }
            publish(members, &state, &wakeups)
            state.kick(&wakeups)
            return .none
        }
        do {
            let group = WriteGroup(members: members, pending: state.pending, file: try state.active.handle.file(),
                                   position: state.flushedPosition)
            state.writerBusy = true
            return .group(group)
        } catch {
            for member in members {
                member.finish(.failure(error))
                wakeups.add(member)
            }
            state.kick(&wakeups)
            return .none
        }
    }

    /// Why an append cannot go at `nextOffset` after `lastEpoch`, if it cannot.
    func refusal(of append: LogRequest.Append, state: LogState, nextOffset: UInt64, lastEpoch: UInt64) -> LogError? {
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
    func perform(_ group: WriteGroup) {
        var writeError: (any Error)?
        for member in group.members { seal(member) }
        do {
            if group.pending.isEmpty, group.members.count == 1 {
                try group.members[0].append!.batch.bytes.withUnsafeBytes { try group.file.write($0, at: group.position) }
            } else if group.pending.isEmpty {
                // The batches as they are, with one pwritev: no copy into one buffer first.
                try group.file.write(gathering: group.members.map { $0.append!.batch.bytes }, at: group.position)
            } else {
                var bytes = group.pending
                for member in group.members { bytes.append(contentsOf: member.append!.batch.bytes) }
                try bytes.withUnsafeBytes { try group.file.write($0, at: group.position) }
            }
        } catch {
            writeError = error
        }
        let writeback = locked { state, wakeups -> Range<Int64>? in
            state.writerBusy = false
            // A failed fdatasync during the write rolled the log back; nothing here counts.
            if let error = writeError ?? state.failure.map({ LogError.failed(cause: $0) }) {
                for member in group.members {
                    member.finish(.failure(error))
                    wakeups.add(member)
                }
                if writeError != nil, state.failure == nil { discardTornWrite(group, &state, &wakeups) }
                state.kick(&wakeups)
                return nil
            }
            precondition(state.flushedPosition == group.position, "the log's end moved under a busy writer")
            state.pending.removeAll(keepingCapacity: true)
            publish(group.members, &state, &wakeups)
            state.flushedPosition = state.active.endPosition
            state.flushedNextOffset = state.active.nextOffset
            state.check()
            state.kick(&wakeups)
            return writebackRange(&state)
        }
        // The group's file is still the active segment's: no roll happens inside a write group.
        if let writeback { startWriteback(writeback, of: group.file) }
    }

    /// A write that failed part-way may have left whole batches past the log's end; a later,
    /// shorter write would leave them intact behind it, for recovery to resurrect or to call
    /// damage. Cutting the file back to the end removes them; if even that fails, the file
    /// is not what the log says, so the log refuses writes.
    private func discardTornWrite(_ group: WriteGroup, _ state: inout LogState, _ wakeups: inout Wakeups) {
        do {
            try group.file.truncate(to: group.position)
        } catch {
            // No fdatasync failed: everything written before this write is still in the file
            // (acknowledged `.os` appends among it), and a reopen finds it. Rolling back to the
            // durable end, as after a failed fsync, would make those appends vanish from memory
            // while they stay on disk. Only the process buffer, which this write carried and
            // which is not on disk, goes.
            let (position, nextOffset) = (state.flushedPosition, state.flushedNextOffset)
            state.pending.removeAll()
            state.active.endPosition = position
            state.active.nextOffset = nextOffset
            state.active.index?.truncate(toPosition: position)
            state.epochHistory.truncate(toNextOffset: nextOffset)
            poison(&state, &wakeups, cause: "cutting a failed write back to byte \(group.position) of \(group.file.path): \(error)")
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
            state.epochHistory.record(epoch: append.epoch, startOffset: header.firstOffset)
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
}
