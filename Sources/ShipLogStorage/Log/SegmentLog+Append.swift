extension SegmentLog {
    /// Appends one record; returns its offset.
    @discardableResult
    public func append(_ record: [UInt8], epoch: UInt64 = 0, durability: Durability? = nil) throws -> UInt64 {
        try append([record], epoch: epoch, durability: durability).lowerBound
    }

    /// Appends records as one batch (one header, one checksum, compressed together);
    /// returns their offsets. Blocks until `durability` (default: the log's) is reached.
    @discardableResult
    public func append(_ records: [[UInt8]], epoch: UInt64 = 0, durability: Durability? = nil) throws -> Range<UInt64> {
        guard !records.isEmpty else { throw LogError.emptyBatch }
        let maxRecordBytes = options.maxRecordBytes
        var sectionBytes = 0
        for record in records {
            guard record.count <= maxRecordBytes else {
                throw LogError.recordTooLarge(bytes: record.count, limit: maxRecordBytes)
            }
            sectionBytes += Format.recordLengthPrefixBytes + record.count
        }
        guard Format.batchHeaderBytes + sectionBytes <= options.maxBatchBytes else {
            throw LogError.batchTooLarge(bytes: Format.batchHeaderBytes + sectionBytes, limit: options.maxBatchBytes)
        }
        // Compression happens before taking the mutex, so appenders compress in parallel.
        return try write(StoredBatch(encoding: records, codec: options.compression), epoch: epoch, timestampMs: options.clock(), keepHeader: false,
                         durability: durability ?? options.durability)
    }

    /// Appends a batch exactly as another log stored it (replication ships these bytes).
    /// Its first offset must be this log's next offset; its epoch and timestamp are kept.
    @discardableResult
    public func append(storedBatch batch: StoredBatch, durability: Durability? = nil) throws -> Range<UInt64> {
        guard batch.checksumMatches else {
            throw LogError.corruption(file: "<stored batch>", position: 0, offset: batch.header.firstOffset,
                                      reason: "batch checksum mismatch")
        }
        guard batch.bytes.count <= options.maxBatchBytes else {
            throw LogError.batchTooLarge(bytes: batch.bytes.count, limit: options.maxBatchBytes)
        }
        return try write(batch, epoch: batch.header.leaderEpoch, timestampMs: batch.header.timestampMs,
                         keepHeader: true, durability: durability ?? options.durability)
    }

    private func write(_ batch: consuming StoredBatch, epoch: UInt64, timestampMs: Int64, keepHeader: Bool,
                       durability: Durability) throws -> Range<UInt64> {
        var batch = batch
        let (range, waiters) = try state.withLock { state -> (Range<UInt64>, [CheckedContinuation<Void, Never>]) in
            try checkWritable(state)
            guard epoch >= state.lastEpoch else { throw LogError.epochRegression(epoch: epoch, lastEpoch: state.lastEpoch) }
            let firstOffset = state.nextOffset
            if keepHeader {
                guard batch.header.firstOffset == firstOffset else {
                    throw LogError.nonContiguousBatch(expectedOffset: firstOffset, batchOffset: batch.header.firstOffset)
                }
            } else {
                batch.seal(firstOffset: firstOffset, leaderEpoch: epoch, timestampMs: timestampMs)
            }
            let size = Int64(batch.bytes.count)
            if state.active.endPosition > Int64(Format.segmentHeaderBytes),
                state.active.endPosition + size > Int64(options.segmentBytes) {
                try roll(&state)
            }
            let position = state.active.endPosition
            if durability >= .os || state.pending.count + batch.bytes.count >= options.processBufferBytes {
                // Earlier buffered bytes go first; on failure nothing of this batch counts as
                // appended and they stay buffered.
                try flushPending(&state)
                let file = try state.active.handle.file()
                try batch.bytes.withUnsafeBytes { try file.write($0, at: position) }
                state.flushedPosition = position + size
                state.flushedNextOffset = batch.header.nextOffset
            } else {
                state.pending.append(contentsOf: batch.bytes)
            }
            state.active.endPosition = position + size
            state.active.nextOffset = batch.header.nextOffset
            state.active.newestTimestampMs = batch.header.timestampMs
            state.active.index?.noteBatch(firstOffset: firstOffset, position: position, intervalBytes: options.indexIntervalBytes)
            state.lastEpoch = epoch
            state.check()
            return (firstOffset..<batch.header.nextOffset, state.takeTailWaiters())
        }
        for waiter in waiters { waiter.resume() }
        if durability == .fsync { try waitDurable(through: range.upperBound) }
        return range
    }

    /// Seals the active segment (synced, cut to its length, index written) and starts a new
    /// one. Sealing syncs, so every sealed segment is wholly durable.
    func roll(_ state: inout LogState) throws {
        try flushPending(&state)
        let sealed = state.active
        let file = try sealed.handle.file()
        do {
            try file.truncate(to: sealed.endPosition)
            try file.sync()
        } catch {
            markFailed(&state, cause: "sealing \(sealed.handle.path): \(error)")
            throw LogError.failed(cause: "\(error)")
        }
        state.durableNextOffset = sealed.nextOffset
        state.durablePosition = sealed.endPosition
        try files.writeIndex(of: sealed)
        let next = try files.createSegment(
            baseOffset: sealed.nextOffset,
            preallocateBytes: options.preallocateSegments ? Int64(options.segmentBytes) : nil)
        state.appendSegment(next)
        state.flushedPosition = next.endPosition
        state.durablePosition = next.endPosition
        state.flushedNextOffset = next.nextOffset
        state.durableNextOffset = next.nextOffset
    }

    /// Writes the in-process buffer to the kernel (`Durability.none` appends).
    public func flush() throws {
        try state.withLock { state in
            try checkWritable(state)
            try flushPending(&state)
        }
    }

    /// Makes everything appended so far durable.
    public func sync() throws {
        let target = state.withLock { $0.nextOffset }
        try waitDurable(through: target)
    }
}
