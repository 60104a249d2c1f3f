import Foundation
import Testing
@testable import ShipLogStorage

/// Files in a log's directory that are not part of it: named like a segment but not one the
/// log can place (a problem: records in it would be missing), or anything else (a warning).
/// Repair never removes either.
extension ToolTests {
    @Test func filesThatAreNotPartOfTheLogAreNamedAndNeverRemoved() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let tooLarge = dir.logPath + "/99999999999999999999.log"  // 20 digits, more than a u64 holds
        let short = dir.logPath + "/12345.log"
        let garbage = dir.logPath + "/garbage.log"
        let notes = dir.logPath + "/notes.txt"
        var generator = SystemRandomNumberGenerator()
        let random = (0..<500).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for path in [tooLarge, short, garbage, notes] { writeFileBytes(path, random) }

        let verify = try shiplog("verify", dir.logPath, "--json")
        #expect(verify.status == 1)
        let report = try json(verify)
        let problems = (report["problems"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }
        let warnings = (report["warnings"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }
        #expect(Set(problems) == [tooLarge, short], "\(verify.output)")
        #expect(Set(warnings) == [garbage, notes], "\(verify.output)")
        #expect(report["healthy"] as? Bool == false)
        let text = try shiplog("verify", dir.logPath).output
        #expect(text.contains("PROBLEM \(tooLarge): named like a segment"), "\(text)")
        #expect(text.contains("WARNING \(garbage): not part of the log (left alone)"), "\(text)")

        let refused = try shiplog("repair", dir.logPath, "--apply")
        #expect(refused.status == 1 && refused.errors.contains("nothing changed") && refused.errors.contains(tooLarge), "\(refused.errors)")
        try FileManager.default.removeItem(atPath: tooLarge)
        try FileManager.default.removeItem(atPath: short)
        let warned = try shiplog("verify", dir.logPath)
        #expect(warned.status == 0 && warned.output.contains("WARNING \(notes)"), "warnings alone leave the log healthy: \(warned.output)")

        // A repair that cuts and removes segments leaves what it does not understand alone.
        let names = segmentFiles(dir.logPath)
        let victim = dir.logPath + "/" + names[1]
        var bytes = fileBytes(victim)
        bytes[Format.segmentHeaderBytes + 100] ^= 0x10
        writeFileBytes(victim, bytes)
        let repaired = try shiplog("repair", dir.logPath, "--apply", "--accept-data-loss")
        #expect(repaired.status == 0, "\(repaired.errors)")
        #expect(fileBytes(garbage) == random && fileBytes(notes) == random)
        #expect(try shiplog("verify", dir.logPath).status == 0)
    }
}
