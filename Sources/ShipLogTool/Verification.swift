import ShipLogStorage

/// What `verify` finds in one segment.
struct SegmentReport: Encodable {
    var file: String
    var baseOffset: UInt64
    /// The last segment, the one a writer appends to.
    var active = false
    var firstOffset: UInt64?
    var lastOffset: UInt64?
    var batches = 0
    var records = 0
    var storedBytes: Int64 = 0
    var uncompressedBytes: Int64 = 0
    /// End of the last intact batch: the valid length of the segment.
    var validBytes: Int64 = Int64(Format.segmentHeaderBytes)
    var fileBytes: Int64 = 0
    var index = "ok"
    var epochs: Set<UInt64> = []
    var oldestTimestampMs: Int64?
    var newestTimestampMs: Int64?

    var fileName: String { String(file.split(separator: "/").last ?? "") }
    var compressionRatio: Double { storedBytes == 0 ? 1 : Double(uncompressedBytes) / Double(storedBytes) }

    /// Counts an intact batch that starts at `position`.
    mutating func add(_ batch: StoredBatch, at position: Int64) {
        let h = batch.header
        firstOffset = firstOffset ?? h.firstOffset
        lastOffset = h.lastOffset
        batches += 1
        records += Int(h.recordCount)
        storedBytes += Int64(h.storedBytes)
        uncompressedBytes += Int64(h.uncompressedBytes)
        validBytes = position + Int64(h.totalBytes)
        epochs.insert(h.leaderEpoch)
        oldestTimestampMs = min(oldestTimestampMs ?? h.timestampMs, h.timestampMs)
        newestTimestampMs = max(newestTimestampMs ?? h.timestampMs, h.timestampMs)
    }

    enum CodingKeys: String, CodingKey {
        case file, baseOffset = "base_offset", active, firstOffset = "first_offset", lastOffset = "last_offset", batches, records
        case storedBytes = "stored_bytes", uncompressedBytes = "uncompressed_bytes", validBytes = "valid_bytes"
        case fileBytes = "file_bytes", index, compressionRatio = "compression_ratio"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(file, forKey: .file)
        try c.encode(baseOffset, forKey: .baseOffset)
        try c.encode(active, forKey: .active)
        try c.encode(firstOffset, forKey: .firstOffset)
        try c.encode(lastOffset, forKey: .lastOffset)
        try c.encode(batches, forKey: .batches)
        try c.encode(records, forKey: .records)
        try c.encode(storedBytes, forKey: .storedBytes)
        try c.encode(uncompressedBytes, forKey: .uncompressedBytes)
        try c.encode(validBytes, forKey: .validBytes)
        try c.encode(fileBytes, forKey: .fileBytes)
        try c.encode(index, forKey: .index)
        try c.encode(compressionRatio, forKey: .compressionRatio)
    }
}

/// A problem `verify` found: where, at which offset, and what.
struct Problem: Encodable, CustomStringConvertible {
    var file: String
    var position: Int64
    var offset: UInt64?
    var reason: String
    /// A torn tail: invalid bytes at the end of the last segment with nothing intact after.
    var tornTail: Bool

    enum CodingKeys: String, CodingKey { case file, position, offset, reason, tornTail = "torn_tail" }

    var description: String {
        if position == 0 && offset == nil { return "\(file): \(reason)" }
        return "\(file): byte \(position)\(offset.map { ", offset \($0)" } ?? ""): \(reason)\(tornTail ? " (torn tail)" : "")"
    }
}

/// Scans every segment and index of a log: CRCs, offset continuity (within and between
/// segments), epoch order, and the names in its directory.
struct Verification {
    var segments: [SegmentReport] = []
    var problems: [Problem] = []
    /// Files named like segments that the log cannot place (format.md §1).
    var misnamedSegments: [Problem] = []
    /// Other files that are not part of the log: reported, never touched.
    var strayFiles: [Problem] = []
    /// A writer held the log while it was read: see `LogWalk`.
    var live = false
    var liveTail: LiveTail?
    /// The epochs of the intact batches, as the walk found them (format.md §12).
    var epochHistory = EpochHistory()
    /// The epoch checkpoint disagrees with the batches (checked when the data is intact and
    /// no writer holds the log).
    var epochProblem: Problem?
    /// Sealed segments whose index file is missing or damaged. The active segment's index
    /// is written when it is sealed or the log closes, so its absence is normal.
    var indexProblems: [SegmentReport] { segments.filter { !$0.active && $0.index != "ok" } }
    var isHealthy: Bool { problems.isEmpty && indexProblems.isEmpty && misnamedSegments.isEmpty && epochProblem == nil }
    var totals: Totals { Totals(segments, healthy: isHealthy) }

    init(_ inspector: LogInspector, lockHeldHere: Bool = false, progress: Progress?) throws {
        for file in inspector.foreignFiles {
            let path = inspector.directory + "/" + file.name
            let reason = file.name.hasPrefix("repair-backup-") ? "a backup left by `shiplog repair`" : file.reason
            let entry = Problem(file: path, position: 0, offset: nil, reason: reason, tornTail: false)
            if file.looksLikeASegment { misnamedSegments.append(entry) } else { strayFiles.append(entry) }
        }
        var walk = LogWalk(inspector, lockHeldHere: lockHeldHere)
        var report: SegmentReport?
        var scratch: [UInt8] = []
        try walk.run { step in
            switch step {
            case .segment(let base, let path, let isActive):
                report = SegmentReport(file: path, baseOffset: base, active: isActive)
            case .problem(let problem):
                problems.append(problem)
            case .batch(let batch, let position):
                // The records inside a batch whose checksum matches: dump and replay decode
                // them, so a batch they would stop at must not pass here.
                do {
                    try batch.withRecordSection(scratch: &scratch) { _ in }
                } catch LogError.corruption(_, _, _, let reason) {
                    problems.append(Problem(file: report?.file ?? "", position: position, offset: batch.header.firstOffset,
                                            reason: reason, tornTail: false))
                }
                report?.add(batch, at: position)
                // Only up to the first damage, which a repair cuts at (an epoch or offset
                // going back is damage the walk reports before the batch).
                if problems.isEmpty {
                    epochHistory.record(epoch: batch.header.leaderEpoch, startOffset: batch.header.firstOffset)
                }
                progress?.advance(by: Int64(batch.header.totalBytes))
            case .segmentEnd(let fileBytes):
                if var finished = report {
                    finished.fileBytes = fileBytes
                    finished.index = inspector.indexStatus(segment: finished.baseOffset, segmentBytes: finished.validBytes).rawValue
                    segments.append(finished)
                }
                report = nil
            }
            return true
        }
        live = walk.live
        liveTail = walk.liveTail
        if problems.isEmpty, !live { epochProblem = try checkEpochCheckpoint(inspector) }
    }

    /// Compares the checkpoint, cut to the log's offsets as recovery cuts it, with the
    /// epochs of the batches. A checkpoint naming epochs past the end is what a crash
    /// leaves and open reconciles: not a problem. A missing one is, once the log holds a
    /// batch, because the writer writes it before the first.
    private func checkEpochCheckpoint(_ inspector: LogInspector) throws -> Problem? {
        let withBatches = segments.filter { $0.firstOffset != nil }
        let path = inspector.epochCheckpointPath
        guard let first = withBatches.first?.firstOffset, let last = withBatches.last?.lastOffset else {
            if case .failure(let failure)? = try inspector.epochCheckpoint() {
                return Problem(file: path, position: 0, offset: nil, reason: "epoch checkpoint damaged: \(failure)", tornTail: false)
            }
            return nil
        }
        switch try inspector.epochCheckpoint() {
        case nil:
            return Problem(file: path, position: 0, offset: nil, reason: "epoch checkpoint missing", tornTail: false)
        case .failure(let failure)?:
            return Problem(file: path, position: 0, offset: nil, reason: "epoch checkpoint damaged: \(failure)", tornTail: false)
        case .success(let stored)?:
            let reconciled = stored.reconciled(firstOffset: first, nextOffset: last + 1)
            guard reconciled != epochHistory else { return nil }
            return Problem(file: path, position: 0, offset: nil,
                           reason: "epoch checkpoint names \(Self.describe(reconciled)), the batches hold \(Self.describe(epochHistory))",
                           tornTail: false)
        }
    }

    static func describe(_ history: EpochHistory) -> String {
        history.entries.isEmpty ? "no epochs"
            : history.entries.map { "epoch \($0.epoch) from \($0.startOffset)" }.joined(separator: ", ")
    }
}
