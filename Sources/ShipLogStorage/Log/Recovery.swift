/// What `open` found and did, so the application can log it and operators can act on it.
public struct RecoveryReport: Sendable, Equatable {
    /// The log was created by this open (it had no segments): neither a clean shutdown nor a
    /// crash.
    public var created: Bool = false
    /// A valid clean-shutdown marker was found: only its index was loaded, nothing scanned.
    /// False for a crash and for a log just created (`created`).
    public var cleanShutdown: Bool = false
    public var scannedBytes: Int64 = 0
    /// Where the log was cut, if it was: the file and the byte position the valid prefix ends at.
    public var truncatedFile: String?
    public var truncatedAtPosition: Int64?
    /// Non-zero bytes cut away (preallocated zeroes are not counted).
    public var droppedBytes: Int64 = 0
    /// Whole later segments removed in point-in-time recovery.
    public var droppedSegments: [String] = []
    public var reason: String?
    /// What open did with the epoch checkpoint (format.md §12).
    public var epochCheckpoint: EpochCheckpointRecovery = .matched
    /// Why the checkpoint was reconciled or rebuilt; nil when it matched.
    public var epochCheckpointReason: String?
    /// An interrupted `reset(startingAt:)` was finished: the log had no segment left but the
    /// reset's new, empty segment (format.md §8), which was put in place at this offset.
    public var finishedResetAt: UInt64?

    public init() {}
}

/// Rebuilds the in-memory picture of a log directory at open, following the recovery rules
/// of format.md §8. Only the last segment is scanned in the default mode.
struct Recovery {
    let directory: SegmentDirectory
    let options: LogOptions
    var report = RecoveryReport()
    /// The segments scanned at open, in order, with where each epoch starts in their
    /// accepted batches: what the epoch checkpoint is reconciled with.
    var scannedEpochs: [(baseOffset: UInt64, starts: [EpochHistory.Entry])] = []

    /// The result of scanning one segment up to its first invalid byte.
    struct ScannedSegment {
        var info: SegmentInfo
        var lastEpoch: UInt64?
        /// Where each epoch starts among the accepted batches (for the epoch history).
        var epochStarts: [EpochHistory.Entry]
        /// The first invalid bytes, if any, and whether intact batches follow them.
        var problem: (position: Int64, reason: String, dataFollows: Bool, lastNonZero: Int64?)?
    }

    func scan(_ handle: SegmentFile, limit: Int64? = nil) throws -> ScannedSegment {
        let file = try handle.file()
        var headerBytes = [UInt8](repeating: 0, count: Format.segmentHeaderBytes)
        let got = try headerBytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        let header = try headerBytes.withUnsafeBytes { try SegmentHeader.decode(UnsafeRawBufferPointer(rebasing: $0[0..<got]), file: handle.path) }
        guard header.baseOffset == handle.baseOffset else {
            throw LogError.corruption(file: handle.path, position: 16, offset: header.baseOffset,
                                      reason: "header base offset does not match the file name")
        }
        var scanner = try SegmentScanner(file: file, from: Int64(Format.segmentHeaderBytes), limit: limit)
        var info = SegmentInfo(baseOffset: handle.baseOffset, handle: handle, endPosition: Int64(Format.segmentHeaderBytes),
                               nextOffset: handle.baseOffset, index: SparseIndex(), newestTimestampMs: nil)
        var lastEpoch: UInt64?
        var starts: [EpochHistory.Entry] = []
        while true {
            switch try scanner.next() {
            case .batch(let batch, let position):
                let h = batch.header
                var reason: String?
                if h.firstOffset != info.nextOffset { reason = "offset \(h.firstOffset) where \(info.nextOffset) was expected" }
                if let last = lastEpoch, h.leaderEpoch < last { reason = "epoch \(h.leaderEpoch) after epoch \(last)" }
                if let reason {
                    return ScannedSegment(info: info, lastEpoch: lastEpoch, epochStarts: starts, problem: (position, reason, true, nil))
                }
                info.index!.noteBatch(firstOffset: h.firstOffset, position: position, intervalBytes: options.indexIntervalBytes)
                info.endPosition = position + Int64(h.totalBytes)
                info.nextOffset = h.nextOffset
                info.newestTimestampMs = h.timestampMs
                if lastEpoch != h.leaderEpoch { starts.append(EpochHistory.Entry(epoch: h.leaderEpoch, startOffset: h.firstOffset)) }
                lastEpoch = h.leaderEpoch
            case .end(let position):
                // Zeroes are the clean end only if nothing intact or non-zero follows them.
                let probe = try SegmentScanner.probeAfter(file: file, position: position)
                if probe.lastNonZero != nil {
                    let reason = "zeroed bytes followed by non-zero data"
                    return ScannedSegment(info: info, lastEpoch: lastEpoch, epochStarts: starts,
                                          problem: (position, reason, probe.intactBatchAt != nil, probe.lastNonZero))
                }
                return ScannedSegment(info: info, lastEpoch: lastEpoch, epochStarts: starts, problem: nil)
            case .invalid(let position, let reason):
                let probe = try SegmentScanner.probeAfter(file: file, position: position)
                return ScannedSegment(info: info, lastEpoch: lastEpoch, epochStarts: starts,
                                      problem: (position, reason, probe.intactBatchAt != nil, probe.lastNonZero ?? position))
            }
        }
    }

    /// Cuts a segment back to `position` durably and records it in the report.
    mutating func cut(_ handle: SegmentFile, at position: Int64, lastNonZero: Int64?, reason: String) throws {
        let file = try handle.file()
        try file.truncate(to: position)
        try file.sync()
        report.truncatedFile = handle.path
        report.truncatedAtPosition = position
        report.droppedBytes += max(0, (lastNonZero ?? (position - 1)) + 1 - position)
        report.reason = reason
    }

    /// Recovers the segments found in the directory, sorted by base offset, and the last epoch.
    mutating func recover(bases: [UInt64], marker: CleanShutdownMarker?) throws -> (segments: [SegmentInfo], lastEpoch: UInt64) {
        precondition(!bases.isEmpty)
        let handles = bases.map { directory.segmentFile($0) }
        var segments: [SegmentInfo] = []
        var lastEpoch: UInt64 = 0
        let scanAll = options.recovery != .tolerateCorruptTail
        for (i, handle) in handles.enumerated() {
            let isLast = i == handles.count - 1
            if let previous = segments.last, previous.nextOffset != handle.baseOffset, scanAll || isLast {
                let reason = "segment starts at offset \(handle.baseOffset), previous segment ends at \(previous.nextOffset)"
                if options.recovery == .pointInTime {
                    try dropSegments(handles[i...])
                    break
                }
                throw LogError.corruption(file: handle.path, position: 0, offset: handle.baseOffset, reason: reason)
            }
            if !isLast && !scanAll {
                let next = handles[i + 1].baseOffset
                let size = directory.fileSystem.fileSize(handle.path) ?? Int64(Format.segmentHeaderBytes)
                // Appends resume in the last segment at the next segment's base offset: the
                // data of the segment before it must end exactly there (finding F4).
                if i == handles.count - 2 { try checkSealedEnd(handle, size: size, nextBase: next) }
                segments.append(SegmentInfo(baseOffset: handle.baseOffset, handle: handle, endPosition: size,
                                            nextOffset: next, index: nil, newestTimestampMs: nil))
                continue
            }
            // close() cuts the active segment to its exact length, so any other size means
            // the files changed after the marker was written: scan instead of trusting it.
            if isLast, let marker, marker.activeBaseOffset == handle.baseOffset,
                directory.fileSystem.fileSize(handle.path) == marker.activeSegmentBytes {
                let trusted = try trustMarker(marker, handle: handle)
                segments.append(trusted)
                lastEpoch = marker.lastEpoch
                report.cleanShutdown = true
                break
            }
            let scanned = try scan(handle)
            report.scannedBytes += scanned.info.endPosition
            segments.append(scanned.info)
            scannedEpochs.append((handle.baseOffset, scanned.epochStarts))
            if let epoch = scanned.lastEpoch { lastEpoch = epoch }
            guard let problem = scanned.problem else { continue }
            let location = "\(handle.path) at byte \(problem.position)"
            switch options.recovery {
            case .absoluteConsistency:
                throw LogError.corruption(file: handle.path, position: problem.position, offset: scanned.info.nextOffset,
                                          reason: problem.reason)
            case .tolerateCorruptTail:
                guard isLast, !problem.dataFollows else {
                    throw LogError.corruption(file: handle.path, position: problem.position, offset: scanned.info.nextOffset,
                                              reason: problem.reason + "; intact batches follow, so this is not a torn tail"
                                                  + " (open with RecoveryMode.pointInTime to keep only the prefix)")
                }
                try cut(handle, at: problem.position, lastNonZero: problem.lastNonZero, reason: "torn tail in \(location): \(problem.reason)")
            case .pointInTime:
                try cut(handle, at: problem.position, lastNonZero: problem.lastNonZero, reason: "\(location): \(problem.reason)")
                try dropSegments(handles[(i + 1)...])
            }
            if options.recovery == .pointInTime { break }
        }
        // An empty last segment after unclean shutdown: the epoch lives in the one before.
        if !report.cleanShutdown, let last = segments.last, last.isEmpty, segments.count > 1 {
            let previous = segments[segments.count - 2]
            let start = try lastIndexedPosition(previous)
            var scanner = try SegmentScanner(file: previous.handle.file(), from: start, limit: previous.endPosition)
            while case .batch(let batch, _) = try scanner.next() { lastEpoch = batch.header.leaderEpoch }
        }
        return (segments, lastEpoch)
    }

    /// Checks that a sealed segment's batches end at `nextBase`, through its index file when
    /// that describes the file as it is, else by scanning it. A mismatch is damage to report,
    /// not a length to assume.
    private func checkSealedEnd(_ handle: SegmentFile, size: Int64, nextBase: UInt64) throws {
        let end: UInt64
        if let index = directory.loadIndex(baseOffset: handle.baseOffset, segmentBytes: size) {
            end = index.nextOffset
        } else {
            end = try directory.rebuildIndex(of: handle, endPosition: size, intervalBytes: options.indexIntervalBytes).nextOffset
        }
        guard end == nextBase else {
            throw LogError.corruption(file: handle.path, position: size, offset: end,
                                      reason: "the segment's batches end at offset \(end), the next segment starts at \(nextBase)")
        }
    }

    private func lastIndexedPosition(_ segment: SegmentInfo) throws -> Int64 {
        if let index = directory.loadIndex(baseOffset: segment.baseOffset, segmentBytes: segment.endPosition) {
            return index.entries.last?.position ?? Int64(Format.segmentHeaderBytes)
        }
        return Int64(Format.segmentHeaderBytes)
    }

    private func trustMarker(_ marker: CleanShutdownMarker, handle: SegmentFile) throws -> SegmentInfo {
        let index = try directory.loadIndex(baseOffset: handle.baseOffset, segmentBytes: marker.activeSegmentBytes)
            ?? directory.rebuildIndex(of: handle, endPosition: marker.activeSegmentBytes, intervalBytes: options.indexIntervalBytes)
        guard index.nextOffset == marker.nextOffset else {
            throw LogError.corruption(file: handle.path, position: marker.activeSegmentBytes, offset: marker.nextOffset,
                                      reason: "index and clean-shutdown marker disagree on the next offset")
        }
        return SegmentInfo(baseOffset: handle.baseOffset, handle: handle, endPosition: marker.activeSegmentBytes,
                           nextOffset: marker.nextOffset, index: SparseIndex(entries: index.entries),
                           newestTimestampMs: index.newestTimestampMs)
    }

    /// Removes segments newest first, so a crash part-way leaves a prefix of the log.
    private mutating func dropSegments(_ handles: ArraySlice<SegmentFile>) throws {
        for handle in handles.reversed() {
            let bytes = directory.fileSystem.fileSize(handle.path) ?? 0
            try? directory.fileSystem.removeFile(directory.indexPath(handle.baseOffset))
            try directory.fileSystem.removeFile(handle.path)
            report.droppedSegments.insert(handle.path, at: 0)
            report.droppedBytes += bytes
        }
        if !handles.isEmpty { try directory.fileSystem.syncDirectory(directory.path) }
    }
}
