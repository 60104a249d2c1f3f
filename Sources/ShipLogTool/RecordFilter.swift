import ArgumentParser
import Foundation
import ShipLogStorage

/// Which records a dump or replay takes: an offset range and a time range.
struct RecordFilter: ParsableArguments {
    @Option(help: "First offset to include.")
    var from: UInt64?

    @Option(help: "Last offset to include.")
    var to: UInt64?

    @Option(help: "Only batches written at or after this time (ISO 8601, or ms since the Unix epoch).")
    var since: String?

    @Option(help: "Only batches written at or before this time (ISO 8601, or ms since the Unix epoch).")
    var until: String?

    func validate() throws {
        if let from, let to, from > to { throw ValidationError("--from \(from) is after --to \(to)") }
        _ = try milliseconds(since, "--since")
        _ = try milliseconds(until, "--until")
    }

    func milliseconds(_ text: String?, _ name: String) throws -> Int64? {
        guard let text else { return nil }
        if let ms = Int64(text) { return ms }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        throw ValidationError("\(name) '\(text)' is neither ISO 8601 nor milliseconds")
    }

    /// Calls `body` with each stored batch that holds a wanted record, in offset order,
    /// streaming segment by segment. Stops early when `body` returns false, and at the first
    /// invalid bytes, which it throws as damage after the valid prefix has been delivered.
    func forEachBatch(_ inspector: LogInspector, progress: Progress?, _ body: (StoredBatch) throws -> Bool) throws {
        let sinceMs = try milliseconds(since, "--since")
        let untilMs = try milliseconds(until, "--until")
        struct Stop: Error {}
        do {
            for base in inspector.segmentBaseOffsets {
                if let to, base > to { break }
                var damage: String?
                try inspector.scan(segment: base) { event in
                    switch event {
                    case .batch(let batch, _):
                        progress?.advance(by: Int64(batch.bytes.count))
                        let h = batch.header
                        if let from, h.lastOffset < from { return }
                        if let to, h.firstOffset > to { throw Stop() }
                        if let sinceMs, h.timestampMs < sinceMs { return }
                        if let untilMs, h.timestampMs > untilMs { throw Stop() }
                        if try !body(batch) { throw Stop() }
                    case .problem(let position, let reason, _):
                        damage = "\(inspector.segmentPath(base)): byte \(position): \(reason)"
                    }
                }
                if let damage { throw ToolFailure.damaged("stopped at damage: \(damage)") }
            }
        } catch is Stop {}
    }

    /// The offsets wanted (batches can straddle them). Read once: the option wrappers are
    /// slow to read per record.
    var offsets: ClosedRange<UInt64> { (from ?? 0)...(to ?? .max) }
}
