import ArgumentParser
import Foundation
import ShipLogStorage

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every segment and index: CRCs, offset continuity, epoch order, file names. Never writes.",
        discussion: """
            Ends with a totals line: segments, batches, records, offsets, bytes, compression ratio, verdict. \
            On a log a running process holds, the active segment is judged up to the end of the batches the \
            scan saw, and the output says the log is live. Files that are not part of the log are warnings; \
            one named like a segment that the log cannot place is a problem.
            Example: shiplog verify /var/lib/app/log --json
            Exit 0 when healthy, 1 when damaged, 2 when the log cannot be read.
            """)

    @OptionGroup var common: CommonOptions

    func run() throws {
        let (inspector, result) = try common.verify(label: "verify")
        if common.json {
            struct Output: Encodable {
                var healthy: Bool
                var live: Bool
                var live_tail: LiveTail?
                var segments: [SegmentReport]
                var problems: [Problem]
                var warnings: [Problem]
                var indexes_to_rebuild: [String]
                var totals: Totals
            }
            printJSON(Output(healthy: result.isHealthy, live: result.live, live_tail: result.liveTail,
                             segments: result.segments,
                             problems: result.misnamedSegments + result.problems + (result.epochProblem.map { [$0] } ?? []),
                             warnings: result.strayFiles,
                             indexes_to_rebuild: result.indexProblems.map { inspector.indexPath($0.baseOffset) },
                             totals: result.totals))
        } else {
            for s in result.segments {
                let index = s.active && s.index != "ok"
                    ? "index \(s.index) (normal for the active segment: its index is written when it is sealed or the log closes)"
                    : "index \(s.index)"
                print("\(s.file): \(offsetRange(s.firstOffset, s.lastOffset)), \(s.batches) batches, \(s.records) records, "
                      + "\(s.storedBytes) bytes stored, \(s.uncompressedBytes) uncompressed, "
                      + String(format: "ratio %.2f", s.compressionRatio) + ", \(index)")
            }
            if let tail = result.liveTail { print(tail.description) }
            for stray in result.strayFiles { print("WARNING \(stray) (left alone)") }
            for problem in result.misnamedSegments + result.problems { print("PROBLEM \(problem)") }
            if let problem = result.epochProblem { print("PROBLEM \(problem) (shiplog repair rebuilds it)") }
            for s in result.indexProblems { print("PROBLEM \(inspector.indexPath(s.baseOffset)): index \(s.index)") }
            let t = result.totals
            print("total: \(t.segments) segments, \(t.batches) batches, \(t.records) records, \(offsetRange(t.firstOffset, t.lastOffset)), "
                  + "\(t.storedBytes) bytes stored, \(t.uncompressedBytes) uncompressed, "
                  + String(format: "ratio %.2f", t.compressionRatio) + "; \(result.live ? "live, " : "")\(t.verdict)")
        }
        if !result.isHealthy { throw ExitCode(1) }
    }
}

extension CommonOptions {
    /// Opens the directory and scans all of it, with a progress bar when one is wanted.
    /// `lockHeldHere` when this process holds the log's lock (see `LogWalk`).
    func verify(label: String, lockHeldHere: Bool = false) throws -> (LogInspector, Verification) {
        let inspector = try inspector()
        let progress = Progress.make(label: label, totalBytes: totalSegmentBytes(inspector), quiet: quiet)
        defer { progress?.finish() }
        return (inspector, try Verification(inspector, lockHeldHere: lockHeldHere, progress: progress))
    }
}
