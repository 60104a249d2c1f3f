/// What `open` did with the epoch checkpoint file (format.md §12).
public enum EpochCheckpointRecovery: Sendable, Equatable {
    /// The file agreed with the log, or the log holds no batch and there was no file.
    case matched
    /// The file was right where the writer guarantees it and was brought in line with the
    /// batches where a crash or a cheap operation leaves it behind or ahead: epochs past the
    /// log's end or before its start dropped, the epochs of the segments scanned at open
    /// taken from their batches. Rewritten.
    case reconciled
    /// The file was missing, damaged, of another version, or contradicted the log: rebuilt
    /// from the batch headers of every segment. Rewritten.
    case rebuilt
}

/// Recovers the epoch history at open (format.md §12, "Recovery").
///
/// Why the file can be trusted without reading every batch: the writer rewrites it, durably,
/// before it writes a batch of an epoch the file does not name, and after every truncate and
/// reset; retention only drops whole segments from the front. So whatever a crash leaves, the
/// file names every epoch the log's batches hold, at their start offsets, and at most some
/// epochs past the log's end or before its start. Cutting it to the log's offsets gives the
/// history. The only part of the log that a crash leaves uncertain is the tail, which open
/// scans (the last segment, or every segment outside the default recovery mode); the file is
/// reconciled with those batches. What remains is checked cheaply: the first epoch starts at
/// the log's first offset, the last is the last batch's, and each entry's boundary is read
/// from two batch headers (`checkBoundaries`), which proves it against a stale file too.
/// Anything else (no file, a bad CRC, an unknown version, a disagreement) rebuilds the
/// history from the batch headers of every segment: about 48 bytes read per batch.
struct EpochRecovery {
    let files: SegmentDirectory

    var path: String { files.path + "/" + Format.epochCheckpointName }

    /// The history of the recovered log and what the file holds afterwards (nil: no file).
    func recover(segments: [SegmentInfo], lastEpoch: UInt64, scanned: [(baseOffset: UInt64, starts: [EpochHistory.Entry])],
                 report: inout RecoveryReport) throws -> (history: EpochHistory, checkpoint: EpochHistory?) {
        let first = segments[0].baseOffset
        let next = segments[segments.count - 1].nextOffset
        let name = Format.epochCheckpointName
        var stored: EpochHistory?
        var problem: String?
        if files.fileSystem.fileSize(path) == nil {
            problem = "\(name) is missing"
        } else {
            switch try SegmentLog.readWholeFile(path, fileSystem: files.fileSystem).withUnsafeBytes({ EpochCheckpoint.decode($0) }) {
            case .success(let history): stored = history
            case .failure(let failure): problem = "\(name) is damaged: \(failure)"
            }
        }
        if first == next, stored == nil, problem == "\(name) is missing" {
            return (EpochHistory(), nil)  // no batch, no file: nothing to name
        }
        var history = EpochHistory()
        if let stored {
            switch reconcile(stored, first: first, next: next, lastEpoch: lastEpoch, segments: segments, scanned: scanned) {
            case .success(let reconciled):
                history = reconciled
                if reconciled == stored { return (stored, stored) }
                report.epochCheckpoint = .reconciled
                report.epochCheckpointReason = "\(name) named \(stored.entries.count) epochs, the log's batches \(reconciled.entries.count)"
                    + " (a crash or retention left it ahead or behind the log)"
            case .failure(let failure):
                problem = "\(name) disagrees with the log: \(failure.reason)"
            }
        }
        if let problem {
            history = first == next ? EpochHistory() : try rebuild(segments)
            report.epochCheckpoint = .rebuilt
            report.epochCheckpointReason = problem
        }
        try SegmentLog.writeDurably(EpochCheckpoint.encoded(history), to: path, in: files)
        return (history, history)
    }

    struct Disagreement: Error { let reason: String }

    /// The stored history cut to the log and merged with the batches scanned at open; a
    /// failure when it contradicts what open knows of the log.
    func reconcile(_ stored: EpochHistory, first: UInt64, next: UInt64, lastEpoch: UInt64, segments: [SegmentInfo],
                   scanned: [(baseOffset: UInt64, starts: [EpochHistory.Entry])]) -> Result<EpochHistory, Disagreement> {
        var history = stored.reconciled(firstOffset: first, nextOffset: next)
        // The scanned segments that reach the end of the log, oldest first: their batches
        // are known, so they replace whatever the file says from there on.
        let scannedStarts = Dictionary(scanned.map { ($0.baseOffset, $0.starts) }, uniquingKeysWith: { $1 })
        var from: Int?
        for i in segments.indices.reversed() {
            guard scannedStarts[segments[i].baseOffset] != nil else { break }
            from = i
        }
        if let from {
            history.truncate(toNextOffset: segments[from].baseOffset)
            for entry in segments[from...].flatMap({ scannedStarts[$0.baseOffset]! }) {
                if let last = history.lastEpoch, entry.epoch < last {
                    return .failure(Disagreement(reason: "the batch at offset \(entry.startOffset) has epoch \(entry.epoch),"
                                                 + " below epoch \(last) that the file says came before it"))
                }
                history.record(epoch: entry.epoch, startOffset: entry.startOffset)
            }
        }
        guard let firstEntry = history.entries.first, firstEntry.startOffset == first else {
            return .failure(Disagreement(reason: "it names no epoch for the log's first offset \(first)"))
        }
        guard history.lastEpoch == lastEpoch else {
            return .failure(Disagreement(reason: "its last epoch is \(history.lastEpoch ?? 0), the last batch's is \(lastEpoch)"))
        }
        do {
            if let wrong = try checkBoundaries(history, segments: segments) { return .failure(Disagreement(reason: wrong)) }
        } catch {
            return .failure(Disagreement(reason: "\(error)"))
        }
        return .success(history)
    }

    /// The history read from the batch headers of every segment, jumping from header to
    /// header (payloads are neither read nor checked: reads check them).
    func rebuild(_ segments: [SegmentInfo]) throws -> EpochHistory {
        var history = EpochHistory()
        for segment in segments where !segment.isEmpty {
            var walker = try HeaderWalker(segment, from: Int64(Format.segmentHeaderBytes), expected: segment.baseOffset, fileSystem: files.fileSystem)
            while let header = try walker.next() {
                if let last = history.lastEpoch, header.leaderEpoch < last {
                    throw walker.damage("epoch \(header.leaderEpoch) after epoch \(last)")
                }
                history.record(epoch: header.leaderEpoch, startOffset: header.firstOffset)
            }
        }
        return history
    }

    /// Checks every entry against the batch headers at its boundary: a batch of its epoch
    /// starts exactly at its start offset, and the batch just before is in the previous
    /// entry's epoch. With the first entry at the log's first offset, the last in the last
    /// batch's epoch, and epochs never decreasing along the log, that proves the history
    /// names exactly the batches' epochs. Two headers read per entry (after a scan of at
    /// most one index interval), so it costs little however long the log.
    func checkBoundaries(_ history: EpochHistory, segments: [SegmentInfo]) throws -> String? {
        for (i, entry) in history.entries.enumerated() {
            let start = entry.startOffset
            guard let k = segments.lastIndex(where: { $0.baseOffset <= start && !$0.isEmpty }), start < segments[k].nextOffset else {
                return "epoch \(entry.epoch) starts at offset \(start), outside the log"
            }
            var before: BatchHeader?
            var at: BatchHeader?
            if start == segments[k].baseOffset {
                if k > 0, i > 0 {
                    let previous = segments[k - 1]
                    var walker = try HeaderWalker(previous, from: lastIndexedPosition(previous), expected: nil, fileSystem: files.fileSystem)
                    while let header = try walker.next() { before = header }
                }
                var walker = try HeaderWalker(segments[k], from: Int64(Format.segmentHeaderBytes), expected: start, fileSystem: files.fileSystem)
                at = try walker.next()
            } else {
                let from = indexFloor(segments[k], start - 1)
                var walker = try HeaderWalker(segments[k], from: from, expected: nil, fileSystem: files.fileSystem)
                while let header = try walker.next() {
                    if header.nextOffset <= start - 1 { continue }
                    if header.firstOffset < start { before = header } else { at = header; break }
                }
            }
            guard let at, at.firstOffset == start, at.leaderEpoch == entry.epoch else {
                return "no batch of epoch \(entry.epoch) starts at offset \(start)"
            }
            if i > 0, before?.leaderEpoch != history.entries[i - 1].epoch {
                return "the batch before offset \(start) is not in epoch \(history.entries[i - 1].epoch)"
            }
        }
        return nil
    }

    /// Where a scan for `offset` in `segment` may start: its index's entry at or before it.
    private func indexFloor(_ segment: SegmentInfo, _ offset: UInt64) -> Int64 {
        let index = segment.index ?? files.loadIndex(baseOffset: segment.baseOffset, segmentBytes: segment.endPosition)
            .map { SparseIndex(entries: $0.entries) }
        return index?.floor(offset)?.position ?? Int64(Format.segmentHeaderBytes)
    }

    private func lastIndexedPosition(_ segment: SegmentInfo) -> Int64 {
        indexFloor(segment, segment.nextOffset - 1)
    }
}
