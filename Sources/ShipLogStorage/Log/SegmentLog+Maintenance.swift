extension SegmentLog {
    /// Drops every record after `offset`, durably: a follower whose log diverged from its
    /// primary's keeps only the common prefix. `offset` may fall inside a batch; that batch is
    /// rewritten with its leading records (same epoch and timestamp). Truncating to before
    /// the first offset empties the log but keeps its position (`nextOffset == offset + 1`).
    public func truncate(after offset: UInt64) throws {
        try state.withLock { state in
            try checkWritable(state)
            let keepNext = offset + 1
            guard keepNext < state.nextOffset else { return }
            guard keepNext >= state.firstOffset else {
                throw LogError.offsetOutOfRange(requested: offset, firstOffset: state.firstOffset, nextOffset: state.nextOffset)
            }
            try flushPending(&state)
            // Later segments go first, newest first, so a crash part-way leaves a prefix.
            while state.segments.count > 1, state.active.baseOffset >= keepNext, state.active.baseOffset > state.firstOffset {
                let removed = state.removeLastSegment()
                try? files.fileSystem.removeFile(files.indexPath(removed.baseOffset))
                try files.fileSystem.removeFile(removed.handle.path)
            }
            try files.fileSystem.syncDirectory(directory)
            // The target segment becomes active again: its index file no longer describes it.
            try? files.fileSystem.removeFile(files.indexPath(state.active.baseOffset))
            var segment = state.active
            if segment.index == nil {
                segment.index = SparseIndex(entries: try files.rebuildIndex(of: segment.handle, endPosition: segment.endPosition,
                                                                        intervalBytes: options.indexIntervalBytes).entries)
            }
            let file = try segment.handle.file()
            let start = segment.index?.floor(keepNext)?.position ?? Int64(Format.segmentHeaderBytes)
            var scanner = try SegmentScanner(file: file, from: start, limit: segment.endPosition, bufferBytes: 64 << 10)
            var cutPosition = segment.endPosition
            var rewrite: StoredBatch?
            var newest = segment.newestTimestampMs
            scan: while true {
                switch try scanner.next() {
                case .batch(let batch, let position):
                    if batch.header.nextOffset <= keepNext {
                        newest = batch.header.timestampMs
                        continue
                    }
                    cutPosition = position
                    if batch.header.firstOffset < keepNext {
                        let kept = try batch.decode(file: file.path, position: position)
                            .prefix(Int(keepNext - batch.header.firstOffset)).map { Array($0.bytes) }
                        var shortened = StoredBatch(encoding: kept, codec: options.compression)
                        shortened.seal(firstOffset: batch.header.firstOffset, leaderEpoch: batch.header.leaderEpoch,
                                       timestampMs: batch.header.timestampMs)
                        rewrite = shortened
                        newest = batch.header.timestampMs
                    }
                    break scan
                case .end:
                    break scan
                case .invalid(let position, let reason):
                    throw LogError.corruption(file: file.path, position: position, offset: keepNext, reason: reason)
                }
            }
            try file.truncate(to: cutPosition)
            var end = cutPosition
            if let rewrite {
                try rewrite.bytes.withUnsafeBytes { try file.write($0, at: cutPosition) }
                end += Int64(rewrite.bytes.count)
            }
            try file.sync()
            if options.preallocateSegments { try file.preallocate(to: max(Int64(options.segmentBytes), end)) }
            segment.index!.truncate(toPosition: cutPosition)
            segment.endPosition = end
            segment.nextOffset = max(keepNext, segment.baseOffset)
            segment.newestTimestampMs = newest
            state.active = segment
            state.flushedPosition = end
            state.durablePosition = end
            state.flushedNextOffset = segment.nextOffset
            state.durableNextOffset = segment.nextOffset
            state.check()
        }
    }

    /// Deletes whole sealed segments, oldest first, while the log is over `maxTotalBytes`
    /// or a segment's newest batch is older than `maxAge`. The active segment is never
    /// deleted. Returns the paths removed.
    @discardableResult
    public func enforceRetention(_ policy: RetentionPolicy) throws -> [String] {
        let now = options.clock()
        let maxAgeMs = policy.maxAge.map { Int64($0.components.seconds) * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 }
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
                if let newest = oldest.newestTimestampMs, newest < now - maxAgeMs { expired = true }
            }
            guard expired else { break }
            try state.withLock { state in
                guard state.segments.count > 1, state.segments[0].baseOffset == oldest.baseOffset else { return }
                try files.fileSystem.removeFile(oldest.handle.path)
                try? files.fileSystem.removeFile(files.indexPath(oldest.baseOffset))
                try files.fileSystem.syncDirectory(directory)
                state.segments.removeFirst()
            }
            removed.append(oldest.handle.path)
        }
        return removed
    }
}
