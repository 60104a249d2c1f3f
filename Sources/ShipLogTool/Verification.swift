import ShipLogStorage

/// What `verify` finds in one segment.
struct SegmentReport: Encodable {
    var file: String
    var baseOffset: UInt64
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

    var compressionRatio: Double { storedBytes == 0 ? 1 : Double(uncompressedBytes) / Double(storedBytes) }

    enum CodingKeys: String, CodingKey {
        case file, baseOffset = "base_offset", firstOffset = "first_offset", lastOffset = "last_offset", batches, records
        case storedBytes = "stored_bytes", uncompressedBytes = "uncompressed_bytes", validBytes = "valid_bytes"
        case fileBytes = "file_bytes", index, compressionRatio = "compression_ratio"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(file, forKey: .file)
        try c.encode(baseOffset, forKey: .baseOffset)
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
        "\(file): byte \(position)\(offset.map { ", offset \($0)" } ?? ""): \(reason)\(tornTail ? " (torn tail)" : "")"
    }
}

/// Scans every segment and index of a log: CRCs, offset continuity, epoch order.
struct Verification {
    var segments: [SegmentReport] = []
    var problems: [Problem] = []
    /// Sealed segments whose index file is missing or damaged.
    var indexProblems: [SegmentReport] { segments.dropLast().filter { $0.index != "ok" } }
    var isHealthy: Bool { problems.isEmpty && indexProblems.isEmpty }

    init(_ inspector: LogInspector, progress: Progress?) throws {
        var expected: UInt64?
        var lastEpoch: UInt64 = 0
        let bases = inspector.segmentBaseOffsets
        for (i, base) in bases.enumerated() {
            let path = inspector.segmentPath(base)
            let isLast = i == bases.count - 1
            var report = SegmentReport(file: path, baseOffset: base)
            if let expected, expected != base {
                problems.append(Problem(file: path, position: 0, offset: base,
                                        reason: "segment starts at offset \(base), the previous one ends at \(expected)",
                                        tornTail: false))
            }
            var next = base
            report.fileBytes = try inspector.scan(segment: base) { event in
                switch event {
                case .batch(let batch, let position):
                    let h = batch.header
                    if h.firstOffset != next {
                        problems.append(Problem(file: path, position: position, offset: h.firstOffset,
                                                reason: "offset \(h.firstOffset) where \(next) was expected", tornTail: false))
                    }
                    if h.leaderEpoch < lastEpoch {
                        problems.append(Problem(file: path, position: position, offset: h.firstOffset,
                                                reason: "epoch \(h.leaderEpoch) after epoch \(lastEpoch)", tornTail: false))
                    }
                    lastEpoch = max(lastEpoch, h.leaderEpoch)
                    next = h.nextOffset
                    report.firstOffset = report.firstOffset ?? h.firstOffset
                    report.lastOffset = h.lastOffset
                    report.batches += 1
                    report.records += Int(h.recordCount)
                    report.storedBytes += Int64(h.storedBytes)
                    report.uncompressedBytes += Int64(h.uncompressedBytes)
                    report.validBytes = position + Int64(h.totalBytes)
                    report.epochs.insert(h.leaderEpoch)
                    report.oldestTimestampMs = min(report.oldestTimestampMs ?? h.timestampMs, h.timestampMs)
                    report.newestTimestampMs = max(report.newestTimestampMs ?? h.timestampMs, h.timestampMs)
                    progress?.advance(by: Int64(h.totalBytes))
                case .problem(let position, let reason, let dataFollows):
                    problems.append(Problem(file: path, position: position, offset: next, reason: reason,
                                            tornTail: isLast && !dataFollows))
                }
            }
            let status = inspector.indexStatus(segment: base, segmentBytes: report.validBytes)
            report.index = status.rawValue
            segments.append(report)
            expected = next
        }
    }
}
