extension SegmentLog {
    /// Appends one record at the log's default durability; returns its offset.
    @discardableResult
    public func append(_ record: [UInt8], epoch: UInt64 = 0) throws -> UInt64 {
        try append([record], epoch: epoch, durability: options.durability).lowerBound
    }

    /// Appends one record; returns its offset once `durability` is reached.
    @discardableResult
    public func append(_ record: [UInt8], epoch: UInt64 = 0, durability: Durability) throws -> UInt64 {
        try append([record], epoch: epoch, durability: durability).lowerBound
    }

    /// Appends records as one batch at the log's default durability; returns their offsets.
    @discardableResult
    public func append(_ records: [[UInt8]], epoch: UInt64 = 0) throws -> Range<UInt64> {
        try append(records, epoch: epoch, durability: options.durability)
    }

    /// Appends records as one batch (one header, one checksum, compressed together);
    /// returns their offsets. Blocks its thread until `durability` is reached: for threads
    /// the caller owns. From tasks, use the `async` form, which suspends instead.
    @discardableResult
    public func append(_ records: [[UInt8]], epoch: UInt64 = 0, durability: Durability) throws -> Range<UInt64> {
        try submit(batchAppend(records, epoch: epoch, durability: durability))
    }

    /// Checks and compresses records into an append. Compression happens on the caller's
    /// thread before joining the queue, so appenders compress in parallel.
    func batchAppend(_ records: [[UInt8]], epoch: UInt64, durability: Durability) throws -> LogRequest.Append {
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
        let batch = StoredBatch(encoding: records, codec: options.compression)
        return LogRequest.Append(batch: batch, epoch: epoch, timestampMs: options.clock(), keepHeader: false, durability: durability)
    }

    /// Checks a stored batch from another log into an append that keeps its header.
    func storedAppend(_ batch: StoredBatch, durability: Durability) throws -> LogRequest.Append {
        // A batch made by `StoredBatch(bytes:)` was checked there (the follower's only check).
        guard batch.checksumVerified || batch.checksumMatches else {
            throw LogError.corruption(file: "<stored batch>", position: 0, offset: batch.header.firstOffset,
                                      reason: "batch checksum mismatch")
        }
        guard batch.bytes.count <= options.maxBatchBytes else {
            throw LogError.batchTooLarge(bytes: batch.bytes.count, limit: options.maxBatchBytes)
        }
        return LogRequest.Append(batch: batch, epoch: batch.header.leaderEpoch, timestampMs: batch.header.timestampMs,
                                 keepHeader: true, durability: durability)
    }

    /// Appends a batch exactly as another log stored it (replication ships these bytes) at
    /// the log's default durability. Its first offset must be this log's next offset; its
    /// epoch and timestamp are kept.
    @discardableResult
    public func append(storedBatch batch: StoredBatch) throws -> Range<UInt64> {
        try append(storedBatch: batch, durability: options.durability)
    }

    /// Appends a batch exactly as another log stored it, once `durability` is reached.
    @discardableResult
    public func append(storedBatch batch: StoredBatch, durability: Durability) throws -> Range<UInt64> {
        try submit(storedAppend(batch, durability: durability))
    }

    /// Writes the in-process buffer to the kernel (`Durability.buffered` appends). Blocks
    /// its thread while earlier appends are written; from tasks, the `async` form suspends.
    public func flush() throws {
        try exclusive(flushBody)
    }

    /// Makes everything appended so far durable. From tasks, the `async` form suspends.
    public func sync() throws {
        try waitDurable(through: exclusive(flushBody))
    }

    /// Flushes the process buffer; returns the end that is now in the kernel.
    func flushBody(_ state: inout LogState, _ wakeups: inout Wakeups) throws -> UInt64 {
        try checkWritable(state)
        try flushPending(&state)
        return state.flushedNextOffset
    }
}
