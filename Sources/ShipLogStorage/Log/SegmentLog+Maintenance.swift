extension SegmentLog {
    /// Deletes whole sealed segments, oldest first, while the log is over `maxTotalBytes`
    /// or a segment's newest batch is older than `maxAge`. The active segment is never
    /// deleted, so a log smaller than one segment loses nothing: choose `segmentBytes` well
    /// below the retention limit (a tenth of it, say) for retention to track it closely.
    /// Returns the paths removed. Throws `closed` on a closed handle.
    @discardableResult
    public func enforceRetention(_ policy: RetentionPolicy) throws -> [String] {
        try state.withLock { try checkWritable($0) }
        let now = options.clock()
        let maxAgeMs = policy.maxAge.map { age -> Int64 in
            let (ms, overflow) = age.components.seconds.multipliedReportingOverflow(by: 1000)
            return overflow ? (age < .zero ? .min : .max) : ms + age.components.attoseconds / 1_000_000_000_000_000
        }
        var removed: [String] = []
        while true {
            let candidate: SegmentInfo? = state.withLock { state in
                guard state.segments.count > 1 else { return nil }
                return state.segments[0]
            }
            guard var oldest = candidate else { break }
            var expired = false
            if let maxTotalBytes = policy.maxTotalBytes, totalBytes > maxTotalBytes { expired = true }
            if !expired, let maxAgeMs {
                if oldest.newestTimestampMs == nil {
                    oldest = try locate(oldest.baseOffset)?.segment ?? oldest
                }
                let (cutoff, overflow) = now.subtractingReportingOverflow(maxAgeMs)
                if let newest = oldest.newestTimestampMs, !overflow || maxAgeMs < 0, newest < cutoff { expired = true }
            }
            guard expired else { break }
            let deleted = try exclusive { state, _ -> Bool in
                try checkWritable(state)
                guard state.segments.count > 1, state.segments[0].baseOffset == oldest.baseOffset else { return false }
                try files.fileSystem.removeFile(oldest.handle.path)
                state.segments.removeFirst()
                try? files.fileSystem.removeFile(files.indexPath(oldest.baseOffset))
                try files.fileSystem.syncDirectory(directory)
                return true
            }
            guard deleted else { break }
            removed.append(oldest.handle.path)
        }
        return removed
    }
}
