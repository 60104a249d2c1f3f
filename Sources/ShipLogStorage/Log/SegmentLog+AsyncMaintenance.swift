/// The operations that wait their turn in the write queue (flush, sync, truncate, close,
/// retention), for tasks: waiting suspends the task. Called from tasks, the blocking forms
/// would hold a cooperative-pool thread while async appends ahead of them need one to run,
/// and two such calls on a two-core machine would stall every task.
extension SegmentLog {
    /// Writes the in-process buffer to the kernel.
    public func flush() async throws {
        _ = try await exclusiveAsync(flushBody)
    }

    /// Makes everything appended so far durable.
    public func sync() async throws {
        try await waitDurableAsync(through: exclusiveAsync(flushBody))
    }

    /// Drops every record after `offset`, durably; see the blocking form.
    public func truncate(after offset: UInt64) async throws {
        try await exclusiveAsync { state, wakeups in try truncateBody(after: offset, &state, &wakeups) }
    }

    /// Flushes, syncs and writes the clean-shutdown marker; see the blocking form.
    public func close() async throws {
        let result = try await exclusiveAsync(closeBody)
        releaseDirectoryLock()
        try result.get()
    }

    /// Deletes whole sealed segments as the policy says; see the blocking form.
    @discardableResult
    public func enforceRetention(_ policy: RetentionPolicy) async throws -> [String] {
        try state.withLock { try checkWritable($0) }
        var removed: [String] = []
        while let oldest = try nextSegmentToRetire(policy) {
            guard try await exclusiveAsync({ state, _ in try retire(oldest, &state) }) else { break }
            removed.append(oldest.handle.path)
        }
        return removed
    }
}
