import ArgumentParser
import Foundation
import ShipLogStorage

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Totals, compression ratio, size per segment, epochs seen, time range.",
        discussion: """
            Segment sizes are the bytes of intact batches: the active segment's file is longer after a crash \
            or while a writer holds it (preallocated space), and that length is shown beside it.
            Example: shiplog stats /var/lib/app/log
            """)

    @OptionGroup var common: CommonOptions

    func run() throws {
        let (_, result) = try common.verify(label: "stats")
        let s = result.segments
        let t = result.totals
        let output = StatsOutput(
            segments: t.segments, batches: t.batches, records: t.records,
            first_offset: t.firstOffset, last_offset: t.lastOffset,
            stored_bytes: t.storedBytes, uncompressed_bytes: t.uncompressedBytes, compression_ratio: t.compressionRatio,
            epochs: s.reduce(into: Set<UInt64>()) { $0.formUnion($1.epochs) }.sorted(),
            oldest_timestamp_ms: s.compactMap(\.oldestTimestampMs).min(), newest_timestamp_ms: s.compactMap(\.newestTimestampMs).max(),
            segment_bytes: Dictionary(uniqueKeysWithValues: s.map { ($0.fileName, $0.validBytes) }),
            segment_file_bytes: Dictionary(uniqueKeysWithValues: s.map { ($0.fileName, $0.fileBytes) }),
            healthy: result.isHealthy, live: result.live)
        if common.json { printJSON(output) } else { printText(output, result) }
        // Damage exits 1 here too, after the figures, so that scripts need not parse them.
        if !result.isHealthy { throw ExitCode(1) }
    }

    private func printText(_ output: StatsOutput, _ result: Verification) {
        let s = result.segments
        let t = result.totals
        print("segments \(t.segments), batches \(t.batches), records \(t.records)")
        print(offsetRange(t.firstOffset, t.lastOffset))
        print("stored \(t.storedBytes) bytes, uncompressed \(t.uncompressedBytes) bytes, " + String(format: "ratio %.2f", t.compressionRatio))
        print("epochs \(output.epochs.map(String.init).joined(separator: ","))")
        let format = ISO8601DateFormatter()
        let time = { (ms: Int64?) in ms.map { format.string(from: Date(timeIntervalSince1970: Double($0) / 1000)) } }
        if let oldest = time(output.oldest_timestamp_ms), let newest = time(output.newest_timestamp_ms) {
            print("time \(oldest)...\(newest)")
        } else {
            print("time -")
        }
        for segment in s {
            let file = segment.fileBytes > segment.validBytes
                ? " (file \(segment.fileBytes) bytes: \(segment.active ? "preallocated space after the batches" : "bytes after the batches"))"
                : ""
            print("  \(segment.fileName) \(segment.validBytes) bytes\(file)")
        }
        if let tail = result.liveTail { print(tail.description) }
        if !result.isHealthy { print("damaged: run `shiplog verify` for details") }
    }
}

/// What `stats --json` prints.
private struct StatsOutput: Encodable {
    var segments: Int
    var batches: Int
    var records: Int
    var first_offset: UInt64?
    var last_offset: UInt64?
    var stored_bytes: Int64
    var uncompressed_bytes: Int64
    var compression_ratio: Double
    var epochs: [UInt64]
    var oldest_timestamp_ms: Int64?
    var newest_timestamp_ms: Int64?
    /// Bytes of intact batches (header included) per segment file.
    var segment_bytes: [String: Int64]
    /// Each segment file's length, preallocated space included.
    var segment_file_bytes: [String: Int64]
    var healthy: Bool
    var live: Bool
}
