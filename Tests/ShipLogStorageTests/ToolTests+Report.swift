import Foundation
import Testing
@testable import ShipLogStorage

/// What `verify` and `stats` report after a crash: totals, the valid length of the active
/// segment rather than its preallocated size, and its missing index explained as normal.
extension ToolTests {
    /// A copy of an open log is what a crash leaves: no clean-shutdown marker, the active
    /// segment preallocated, and no index for it.
    func makeCrashImage(_ dir: TemporaryDirectory) throws -> String {
        var options = smallOptions(segmentBytes: 8 << 10)
        options.durability = .os
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in stride(from: 0, to: 300, by: 3) { try log.append((n..<(n + 3)).map { makeRecord($0) }) }
        let copy = dir.path + "/crashed"
        try FileManager.default.copyItem(atPath: dir.logPath, toPath: copy)
        try log.close()
        return copy
    }

    @Test func verifyEndsWithTotalsAndStatsShowsValidBytesAfterACrash() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let crashed = try makeCrashImage(dir)
        let names = segmentFiles(crashed)
        let active = crashed + "/" + names.last!
        let valid = try batchScan(active).end
        let fileBytes = try #require(FileManager.default.attributesOfItem(atPath: active)[.size] as? Int)
        #expect(fileBytes == 8 << 10 && valid < fileBytes, "the crash image's active segment is preallocated")

        let verify = try shiplog("verify", crashed)
        #expect(verify.status == 0, "\(verify.output)")
        let lines = verify.output.split(separator: "\n").map(String.init)
        #expect(lines.first { $0.hasPrefix(active) }?.contains("index missing (normal for the active segment") == true, "\(verify.output)")
        let total = lines.last ?? ""
        #expect(total.hasPrefix("total: \(names.count) segments, 100 batches, 300 records, offsets 0...299, "), "\(total)")
        #expect(total.contains(" bytes stored, ") && total.contains(" uncompressed, ratio "), "\(total)")
        #expect(total.hasSuffix("; healthy"), "\(total)")

        let report = try json(try shiplog("verify", crashed, "--json"))
        let totals = report["totals"] as? [String: Any] ?? [:]
        let segments = report["segments"] as? [[String: Any]] ?? []
        #expect(totals["segments"] as? Int == names.count && totals["batches"] as? Int == 100 && totals["records"] as? Int == 300)
        #expect(totals["first_offset"] as? Int == 0 && totals["last_offset"] as? Int == 299)
        #expect(totals["stored_bytes"] as? Int == segments.reduce(0) { $0 + ($1["stored_bytes"] as? Int ?? 0) })
        #expect(totals["compression_ratio"] as? Double ?? 0 > 1)
        #expect(totals["verdict"] as? String == "healthy")
        #expect(segments.last?["active"] as? Bool == true && segments.first?["active"] as? Bool == false)
        #expect(report["indexes_to_rebuild"] as? [String] == [], "the active segment's index is not one to rebuild")

        let stats = try shiplog("stats", crashed, "--json")
        #expect(stats.status == 0)
        let figures = try json(stats)
        #expect((figures["segment_bytes"] as? [String: Int])?[names.last!] == Int(valid), "\(stats.output)")
        #expect((figures["segment_file_bytes"] as? [String: Int])?[names.last!] == fileBytes)
        #expect(try shiplog("stats", crashed).output.contains("\(names.last!) \(valid) bytes (file \(fileBytes) bytes: preallocated space after the batches)"))
    }

    /// The verdict in the totals follows the problems.
    @Test func theTotalsLineSaysDamagedWhenItIs() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let last = dir.logPath + "/" + segmentFiles(dir.logPath).last!
        writeFileBytes(last, Array(fileBytes(last).dropLast(7)))
        try FileManager.default.removeItem(atPath: dir.logPath + "/" + Format.cleanMarkerName)
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 1 && verify.output.hasSuffix("; damaged\n"), "\(verify.output)")
        #expect((try json(try shiplog("verify", dir.logPath, "--json"))["totals"] as? [String: Any])?["verdict"] as? String == "damaged")
        let stats = try shiplog("stats", dir.logPath)
        #expect(stats.status == 1 && stats.output.contains("records 297"), "\(stats.output)")
    }
}
