import ShipLogStorage

/// The sums over a log's segments, as `verify` ends with and `stats` prints.
struct Totals: Encodable {
    var segments: Int
    var batches: Int
    var records: Int
    var firstOffset: UInt64?
    var lastOffset: UInt64?
    var storedBytes: Int64
    var uncompressedBytes: Int64
    var compressionRatio: Double
    var verdict: String

    enum CodingKeys: String, CodingKey {
        case segments, batches, records, firstOffset = "first_offset", lastOffset = "last_offset"
        case storedBytes = "stored_bytes", uncompressedBytes = "uncompressed_bytes"
        case compressionRatio = "compression_ratio", verdict
    }

    init(_ reports: [SegmentReport], healthy: Bool) {
        segments = reports.count
        batches = reports.reduce(0) { $0 + $1.batches }
        records = reports.reduce(0) { $0 + $1.records }
        firstOffset = reports.compactMap(\.firstOffset).first
        lastOffset = reports.compactMap(\.lastOffset).last
        storedBytes = reports.reduce(0) { $0 + $1.storedBytes }
        uncompressedBytes = reports.reduce(0) { $0 + $1.uncompressedBytes }
        compressionRatio = storedBytes == 0 ? 1 : Double(uncompressedBytes) / Double(storedBytes)
        verdict = healthy ? "healthy" : "damaged"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(segments, forKey: .segments)
        try c.encode(batches, forKey: .batches)
        try c.encode(records, forKey: .records)
        try c.encode(firstOffset, forKey: .firstOffset)
        try c.encode(lastOffset, forKey: .lastOffset)
        try c.encode(storedBytes, forKey: .storedBytes)
        try c.encode(uncompressedBytes, forKey: .uncompressedBytes)
        try c.encode(compressionRatio, forKey: .compressionRatio)
        try c.encode(verdict, forKey: .verdict)
    }
}

/// Offsets as the tool writes them everywhere: first...last, both included, the way
/// `--from` and `--to` take them.
func offsetRange(_ first: UInt64?, _ last: UInt64?) -> String {
    guard let first, let last else { return "no records" }
    return "offsets \(first)...\(last)"
}
