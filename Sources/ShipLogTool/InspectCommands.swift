import ArgumentParser
import Foundation
import ShipLogStorage

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every segment and index: CRCs, offset continuity, epoch order. Never writes.",
        discussion: "Example: shiplog verify /var/lib/app/log --json\nExit 0 when healthy, 1 when damaged, 2 when unreadable.")

    @OptionGroup var common: CommonOptions

    func run() throws {
        let (inspector, result) = try common.verify(label: "verify")
        if common.json {
            struct Output: Encodable {
                var healthy: Bool
                var segments: [SegmentReport]
                var problems: [Problem]
                var indexes_to_rebuild: [String]
            }
            printJSON(Output(healthy: result.isHealthy, segments: result.segments, problems: result.problems,
                             indexes_to_rebuild: result.indexProblems.map { inspector.indexPath($0.baseOffset) }))
        } else {
            for s in result.segments {
                let range = s.firstOffset.map { "\($0)...\(s.lastOffset!)" } ?? "empty"
                print("\(s.file): offsets \(range), \(s.batches) batches, \(s.records) records, "
                      + "\(s.storedBytes) bytes stored, \(s.uncompressedBytes) uncompressed, "
                      + String(format: "ratio %.2f", s.compressionRatio) + ", index \(s.index)")
            }
            for problem in result.problems { print("PROBLEM \(problem)") }
            for s in result.indexProblems { print("PROBLEM \(inspector.indexPath(s.baseOffset)): index \(s.index)") }
            print(result.isHealthy ? "healthy" : "damaged")
        }
        if !result.isHealthy { throw ExitCode(1) }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Totals, compression ratio, size per segment, epochs seen, time range.",
        discussion: "Example: shiplog stats /var/lib/app/log")

    @OptionGroup var common: CommonOptions

    func run() throws {
        let (_, result) = try common.verify(label: "stats")
        struct Output: Encodable {
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
            var segment_bytes: [String: Int64]
            var healthy: Bool
        }
        let s = result.segments
        let stored = s.reduce(0) { $0 + $1.storedBytes }
        let uncompressed = s.reduce(0) { $0 + $1.uncompressedBytes }
        let output = Output(
            segments: s.count, batches: s.reduce(0) { $0 + $1.batches }, records: s.reduce(0) { $0 + $1.records },
            first_offset: s.compactMap(\.firstOffset).first, last_offset: s.compactMap(\.lastOffset).last,
            stored_bytes: stored, uncompressed_bytes: uncompressed,
            compression_ratio: stored == 0 ? 1 : Double(uncompressed) / Double(stored),
            epochs: s.reduce(into: Set<UInt64>()) { $0.formUnion($1.epochs) }.sorted(),
            oldest_timestamp_ms: s.compactMap(\.oldestTimestampMs).min(), newest_timestamp_ms: s.compactMap(\.newestTimestampMs).max(),
            segment_bytes: Dictionary(uniqueKeysWithValues: s.map { (URL(fileURLWithPath: $0.file).lastPathComponent, $0.fileBytes) }),
            healthy: result.isHealthy)
        if common.json {
            printJSON(output)
        } else {
            print("segments \(output.segments), batches \(output.batches), records \(output.records)")
            print("offsets \(output.first_offset.map(String.init) ?? "-") ... \(output.last_offset.map(String.init) ?? "-")")
            print("stored \(stored) bytes, uncompressed \(uncompressed) bytes, " + String(format: "ratio %.2f", output.compression_ratio))
            print("epochs \(output.epochs.map(String.init).joined(separator: ","))")
            let format = ISO8601DateFormatter()
            let time = { (ms: Int64?) in ms.map { format.string(from: Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "-" }
            print("time \(time(output.oldest_timestamp_ms)) ... \(time(output.newest_timestamp_ms))")
            for segment in s { print("  \(URL(fileURLWithPath: segment.file).lastPathComponent) \(segment.fileBytes) bytes") }
            if !result.isHealthy { print("damaged: run `shiplog verify` for details") }
        }
    }
}

extension CommonOptions {
    /// Opens the directory and scans all of it, with a progress bar when one is wanted.
    func verify(label: String) throws -> (LogInspector, Verification) {
        let inspector = try inspector()
        let progress = Progress.make(label: label, totalBytes: totalSegmentBytes(inspector), quiet: quiet)
        defer { progress?.finish() }
        return (inspector, try Verification(inspector, progress: progress))
    }
}
