extension SegmentLog {
    /// Deletes whole sealed segments, oldest first, while the log is over `maxTotalBytes`
    /// or a segment's newest batch is older than `maxAge`. The active segment is never
    /// deleted, so a log smaller than one segment loses nothing: choose `segmentBytes` well
    /// below the retention limit (a tenth of it, say) for retention to track it closely.
    /// Returns the paths removed. Throws `closed` on a closed handle.
    @discardableResult
    public func enforceRetention(_ policy: RetentionPolicy) throws -> [String] {
        try state.withLock { try checkWritable($0) }
        var removed: [String] = []
        while let oldest = try nextSegmentToRetire(policy) {
            guard try exclusive({ state, _ in try retire(oldest, &state) }) else { break }
            removed.append(oldest.handle.path)
        }
        return removed
    }

    /// The oldest sealed segment if the policy says it goes: the log is over
    /// `maxTotalBytes`, or the segment's newest batch is older than `maxAge`.
    func nextSegmentToRetire(_ policy: RetentionPolicy) throws -> SegmentInfo? {
        let candidate: SegmentInfo? = state.withLock { state in
            guard state.segments.count > 1 else { return nil }
            return state.segments[0]
        }
        guard var oldest = candidate else { return nil }
        if let maxTotalBytes = policy.maxTotalBytes, totalBytes > maxTotalBytes { return oldest }
        guard let maxAge = policy.maxAge else { return nil }
        let (ms, overflow) = maxAge.components.seconds.multipliedReportingOverflow(by: 1000)
        let maxAgeMs = overflow ? (maxAge < .zero ? Int64.min : .max) : ms + maxAge.components.attoseconds / 1_000_000_000_000_000
        if oldest.newestTimestampMs == nil {
            oldest = try locate(oldest.baseOffset)?.segment ?? oldest
        }
        let (cutoff, cutoffOverflow) = options.clock().subtractingReportingOverflow(maxAgeMs)
        if let newest = oldest.newestTimestampMs, !cutoffOverflow || maxAgeMs < 0, newest < cutoff { return oldest }
        return nil
    }

    /// Deletes `oldest` if it is still the first segment; runs as an exclusive operation.
    func retire(_ oldest: SegmentInfo, _ state: inout LogState) throws -> Bool {
        try checkWritable(state)
        guard state.segments.count > 1, state.segments[0].baseOffset == oldest.baseOffset else { return false }
        try files.fileSystem.removeFile(oldest.handle.path)
        state.segments.removeFirst()
        // The file keeps the older epochs until the next rewrite: it still reconciles to the
        // history (recovery trims its front), so retention costs no checkpoint fsync.
        state.epochHistory = state.epochHistory.reconciled(firstOffset: state.firstOffset, nextOffset: state.nextOffset)
        try? files.fileSystem.removeFile(files.indexPath(oldest.baseOffset))
        try files.fileSystem.syncDirectory(directory)
        return true
    }
}
