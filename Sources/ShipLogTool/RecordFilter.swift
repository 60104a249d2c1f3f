import ArgumentParser
import Foundation
import ShipLogStorage

/// Which records a dump or replay takes: an offset range and a time range.
struct RecordFilter: ParsableArguments {
    @Option(help: "First offset to include (default: the log's first).")
    var from: UInt64?

    @Option(help: "Last offset to include: --from 10 --to 12 is offsets 10, 11 and 12 (default: the log's last).")
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
    /// damage (invalid bytes, a hole between segments, offsets or epochs out of order), which
    /// it throws after the valid prefix has been delivered. On a live log it says so on
    /// standard error and reads the active segment up to the end its scan saw (`LogWalk`).
    @discardableResult
    func forEachBatch(_ inspector: LogInspector, progress: Progress?, _ body: (StoredBatch) throws -> Bool) throws -> LogWalk {
        let sinceMs = try milliseconds(since, "--since")
        let untilMs = try milliseconds(until, "--until")
        var walk = LogWalk(inspector)
        var damage: Problem?
        defer { if let tail = walk.liveTail { say(tail.description) } }
        try walk.run(from: from) { step in
            switch step {
            case .segment(let base, _, _):
                if let to, base > to { return false }
            case .problem(let problem):
                // Damage that starts past the offsets asked for is not in their way.
                if let to, let offset = problem.offset, offset > to { return true }
                damage = problem
                return false
            case .batch(let batch, _):
                progress?.advance(by: Int64(batch.bytes.count))
                let h = batch.header
                if let from, h.lastOffset < from { return true }
                if let to, h.firstOffset > to { return false }
                if let sinceMs, h.timestampMs < sinceMs { return true }
                if let untilMs, h.timestampMs > untilMs { return false }
                return try body(batch)
            case .segmentEnd:
                break
            }
            return true
        }
        if let damage { throw ToolFailure.damaged("stopped at damage: \(damage)") }
        return walk
    }

    /// After the records were delivered: offsets asked for with --from or --to that the log
    /// does not hold are an error (exit 2), as the library's `offsetOutOfRange` is, rather
    /// than an empty answer that looks like success. Only what the walk saw is judged: a walk
    /// that stopped early (at --to, --until or a limit) says nothing of the log's end.
    func checkOffsetsWereInTheLog(_ walk: LogWalk) throws {
        guard let first = walk.firstOffset else { return }
        var missing: [String] = []
        if let from, from < first {
            missing.append("\(from)...\(min(to ?? .max, first - 1))")
        }
        if walk.reachedEnd, let next = walk.nextOffset {
            if let to, to >= next {
                missing.append("\(max(from ?? 0, next))...\(to)")
            } else if to == nil, let from, from >= next {
                missing.append("from \(from) on")
            }
        }
        guard !missing.isEmpty else { return }
        var held = "starts at offset \(first)"
        if walk.reachedEnd, let next = walk.nextOffset {
            held = next > first ? "holds offsets \(first)...\(next - 1)" : "holds no records (its next offset is \(next))"
        }
        throw ToolFailure.usage("offsets \(missing.joined(separator: " and ")) are not in the log, which \(held)"
                                + (walk.live ? " so far (it is live)" : ""))
    }

    /// The offsets wanted (batches can straddle them). Read once: the option wrappers are
    /// slow to read per record.
    var offsets: ClosedRange<UInt64> { (from ?? 0)...(to ?? .max) }
}
