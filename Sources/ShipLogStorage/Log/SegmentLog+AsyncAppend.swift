/// Appends for Swift concurrency: the same pipeline as the blocking forms, but a task waiting
/// for its turn or for durability suspends (a continuation the group commit resumes) instead
/// of holding one of the cooperative pool's few threads, and the fdatasync an async append
/// leads runs on the log's own queue. Use these from tasks and actors; use the blocking forms
/// from threads you own. Cancelling a task that waits in `append` does not withdraw the
/// append: once queued it is written, and the call returns when its durability is reached.
extension SegmentLog {
    /// Appends one record at the log's default durability; returns its offset.
    @discardableResult
    public func append(_ record: [UInt8], epoch: UInt64 = 0) async throws -> UInt64 {
        try await append([record], epoch: epoch, durability: options.durability).lowerBound
    }

    /// Appends one record; returns its offset once `durability` is reached.
    @discardableResult
    public func append(_ record: [UInt8], epoch: UInt64 = 0, durability: Durability) async throws -> UInt64 {
        try await append([record], epoch: epoch, durability: durability).lowerBound
    }

    /// Appends records as one batch at the log's default durability; returns their offsets.
    @discardableResult
    public func append(_ records: [[UInt8]], epoch: UInt64 = 0) async throws -> Range<UInt64> {
        try await append(records, epoch: epoch, durability: options.durability)
    }

    /// Appends records as one batch; returns their offsets once `durability` is reached.
    @discardableResult
    public func append(_ records: [[UInt8]], epoch: UInt64 = 0, durability: Durability) async throws -> Range<UInt64> {
        try await submitAsync(batchAppend(records, epoch: epoch, durability: durability))
    }

    /// Appends a batch exactly as another log stored it, at the log's default durability.
    @discardableResult
    public func append(storedBatch batch: StoredBatch) async throws -> Range<UInt64> {
        try await append(storedBatch: batch, durability: options.durability)
    }

    /// Appends a batch exactly as another log stored it, once `durability` is reached.
    @discardableResult
    public func append(storedBatch batch: StoredBatch, durability: Durability) async throws -> Range<UInt64> {
        try await submitAsync(storedAppend(batch, durability: durability))
    }

    private func submitAsync(_ append: LogRequest.Append) async throws -> Range<UInt64> {
        try await driveAsync(LogRequest(append: append, isAsync: true), joiningQueue: true)
    }
}
