import Foundation
import Testing
@testable import ShipLogStorage

/// Offset ranges: one notation in the output (first...last, both included, as --from and
/// --to take them), and offsets asked for that the log does not hold are an error.
extension ToolTests {
    /// 300 records at offsets 100...399, as a log left by retention or started at an offset.
    func makeLogFrom100(_ dir: TemporaryDirectory) throws {
        var options = smallOptions(segmentBytes: 4096)
        options.initialOffset = 100
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in stride(from: 0, to: 300, by: 3) { try log.append((n..<(n + 3)).map { makeRecord($0) }) }
        try log.close()
    }

    @Test func offsetsOutsideTheLogExitTwoAfterWhatItHolds() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try makeLogFrom100(dir)
        let below = try shiplog("dump", dir.logPath, "--from", "10", "--to", "12")
        #expect(below.status == 2 && below.output.isEmpty)
        #expect(below.errors.contains("offsets 10...12 are not in the log, which starts at offset 100"), "\(below.errors)")
        let past = try shiplog("dump", dir.logPath, "--from", "400")
        #expect(past.status == 2 && past.output.isEmpty)
        #expect(past.errors.contains("offsets from 400 on are not in the log, which holds offsets 100...399"), "\(past.errors)")
        // Both ends out: the records the log holds are printed, then the error names both parts.
        let both = try shiplog("dump", dir.logPath, "--from", "90", "--to", "410")
        #expect(both.status == 2)
        #expect(both.output.split(separator: "\n").count == 300)
        #expect(both.errors.contains("offsets 90...99 and 400...410 are not in the log"), "\(both.errors)")
        let hex = try shiplog("dump", dir.logPath, "--hex", "--to", "405")
        #expect(hex.status == 2 && hex.output.contains("offset 399 "))
        let replay = try shiplog("replay", dir.logPath, "--exec", "wc -l", "--from", "395", "--to", "405")
        #expect(replay.status == 2 && replay.output.trimmingCharacters(in: .whitespacesAndNewlines) == "5", "\(replay.errors)")
        // Exactly the log, or only one end given inside it: no complaint.
        #expect(try shiplog("dump", dir.logPath, "--from", "100", "--to", "399").status == 0)
        #expect(try shiplog("dump", dir.logPath, "--to", "150").output.split(separator: "\n").count == 51)
        #expect(try shiplog("dump", dir.logPath, "--from", "399").output.split(separator: "\n").count == 1)
        #expect(try shiplog("dump", dir.logPath, "--from", "390", "--limit", "100").status == 0)
    }

    @Test func everyOutputWritesRangesFirstDotDotDotLast() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let verify = try shiplog("verify", dir.logPath)
        let lines = verify.output.split(separator: "\n")
        #expect(lines.first?.contains(": offsets 0...") == true, "\(verify.output)")
        #expect(lines.last?.contains("offsets 0...299") == true, "\(verify.output)")
        let stats = try shiplog("stats", dir.logPath)
        #expect(stats.output.contains("\noffsets 0...299\n"), "\(stats.output)")
        #expect(stats.output.contains("time ") && !stats.output.contains(" ... "))
        let replay = try shiplog("replay", dir.logPath, "--into", dir.path + "/copy", "--from", "50", "--to", "250")
        #expect(replay.output.contains("offsets 50...250 (next offset 251)"), "\(replay.output)")
        for run in [verify, stats, replay] { #expect(!run.output.contains("..<")) }
        // Help text is wrapped to the terminal: compare it with its whitespace folded.
        let fold = { (text: String) in text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        #expect(fold(try shiplog("dump", "--help").output).contains("--from 10 --to 12 is offsets 10, 11 and 12"))
        #expect(fold(try shiplog("--help").output).contains("Offset ranges are written first...last, both included"))
    }

    /// `dump` prints JSON lines whatever: a --json flag that changed nothing is gone. The
    /// --threads help states its default once, not followed by this machine's value.
    @Test func dumpTakesNoJSONFlagAndThreadsHelpStatesItsDefaultOnce() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let refused = try shiplog("dump", dir.logPath, "--json")
        #expect(refused.status == 2 && refused.errors.contains("--json"), "\(refused.errors)")
        for subcommand in ["dump", "replay"] {
            let help = try shiplog(subcommand, "--help").output
            let folded = help.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(folded.contains("(default: one per core, at most 8)."), "\(help)")
            #expect(!folded.contains("at most 8). (default"), "\(help)")
        }
        #expect(try shiplog("dump", dir.logPath, "--threads", "0").status == 2)
    }
}
