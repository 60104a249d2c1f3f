import Foundation
import Testing
@testable import ShipLogStorage

/// Read-only subcommands on a log a running process is writing: the active segment is judged
/// up to the end the scan saw, and nothing after it counts as damage while a writer holds the
/// lock; the output says the log is live.
extension ToolTests {
    /// A real writer process (ShipLogCrashWriter, `.fsync` appends, 256 KiB segments that
    /// roll every few hundred appends) runs beside the tool. Before the tool judged live logs,
    /// `verify` called the tail torn in about 3 runs of 4, because bytes appended after its
    /// scan passed the end looked like data after zeroes.
    @Test func readOnlySubcommandsJudgeALiveLogByTheEndTheySaw() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: CrashTests.writerPath)
        writer.arguments = [dir.logPath, "7"]
        // Its progress lines are not needed, and an unread pipe would stop it when full.
        writer.standardOutput = FileHandle.nullDevice
        try writer.run()
        let pid = writer.processIdentifier
        var stopped = false
        defer { if !stopped { kill(pid, SIGKILL); writer.waitUntilExit() } }

        let start = ContinuousClock.now
        while (try? shiplog("stats", dir.logPath, "--json"))
            .flatMap({ try? JSONSerialization.jsonObject(with: Data($0.output.utf8)) as? [String: Any] })?["records"] as? Int ?? 0 == 0 {
            try #require(ContinuousClock.now - start < .seconds(20), "the writer wrote nothing in 20 s")
            usleep(20_000)
        }
        var rounds = 0
        var lastCount = 0
        while rounds < 10 && ContinuousClock.now - start < .seconds(40) {
            rounds += 1
            let verify = try shiplog("verify", dir.logPath, "--json")
            #expect(verify.status == 0, "round \(rounds): \(verify.output) \(verify.errors)")
            let report = try JSONSerialization.jsonObject(with: Data(verify.output.utf8)) as? [String: Any] ?? [:]
            #expect(report["live"] as? Bool == true, "round \(rounds)")
            #expect(report["healthy"] as? Bool == true, "round \(rounds)")

            let dump = try shiplog("dump", dir.logPath)
            #expect(dump.status == 0, "round \(rounds): \(dump.errors)")
            #expect(dump.errors.contains("live"), "round \(rounds): \(dump.errors)")
            let lines = dump.output.split(separator: "\n")
            for (offset, line) in lines.enumerated() where offset % 101 == 0 || offset == lines.count - 1 {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
                #expect(object["offset"] as? Int == offset, "round \(rounds): offsets are dense from 0")
                let payload = (object["payload_base64"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
                    ?? (object["payload"] as? String).map { Array($0.utf8) }
                #expect(payload == CrashRecord.bytes(offset: UInt64(offset)), "round \(rounds): offset \(offset)")
            }
            #expect(lines.count >= lastCount, "a live log only grows")
            lastCount = lines.count

            let stats = try shiplog("stats", dir.logPath, "--json")
            #expect(stats.status == 0, "round \(rounds): \(stats.errors)")
            #expect((try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any])?["live"] as? Bool == true)
        }
        #expect(rounds >= 3, "the tool ran beside the writer at least 3 times")
        #expect(kill(pid, 0) == 0, "the writer kept running beside the tool's lock probes")

        kill(pid, SIGKILL)
        writer.waitUntilExit()
        stopped = true
        // Killed, it holds no lock: the tail is judged again (torn or not, it is no longer live).
        let after = try shiplog("verify", dir.logPath, "--json")
        let report = try JSONSerialization.jsonObject(with: Data(after.output.utf8)) as? [String: Any] ?? [:]
        #expect(report["live"] as? Bool == false, "\(after.output)")
    }

    /// The same bytes after the end of the active segment are not judged while a writer holds
    /// the lock, and are damage in a copy that nobody holds.
    @Test func aTailBeingWrittenIsDamageOnlyWhenNoWriterHoldsTheLog() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(segmentBytes: 64 << 10)
        options.durability = .os
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in stride(from: 0, to: 60, by: 3) { try log.append((n..<(n + 3)).map { makeRecord($0) }) }
        let active = dir.logPath + "/" + segmentFiles(dir.logPath).last!
        let end = try batchScan(active).end
        // What a reader may see while an append is in flight: half a batch header, then
        // zeroes, then bytes of a later write that reached the page cache first.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: active))
        try handle.seek(toOffset: UInt64(end))
        try handle.write(contentsOf: Data([0x53, 0x4c, 0x42, 0x31, 9, 9]))
        try handle.seek(toOffset: UInt64(end + 3000))
        try handle.write(contentsOf: Data(repeating: 0xab, count: 100))
        try handle.close()

        let verify = try shiplog("verify", dir.logPath, "--json")
        #expect(verify.status == 0, "\(verify.output)")
        let report = try JSONSerialization.jsonObject(with: Data(verify.output.utf8)) as? [String: Any] ?? [:]
        #expect(report["live"] as? Bool == true)
        let tail = report["live_tail"] as? [String: Any] ?? [:]
        #expect(tail["position"] as? Int == Int(end) && tail["next_offset"] as? Int == 60, "\(report)")
        let text = try shiplog("verify", dir.logPath)
        #expect(text.status == 0 && text.output.contains("live"), "\(text.output)")
        let dump = try shiplog("dump", dir.logPath)
        #expect(dump.status == 0 && dump.output.split(separator: "\n").count == 60, "\(dump.errors)")
        #expect(dump.errors.contains("live"))
        let replay = try shiplog("replay", dir.logPath, "--exec", "wc -l")
        #expect(replay.status == 0 && replay.output.trimmingCharacters(in: .whitespacesAndNewlines) == "60", "\(replay.errors)")
        // Repair judges only a log nobody writes: even its dry run, which takes no lock, says so.
        let dryRun = try shiplog("repair", dir.logPath)
        #expect(dryRun.status == 2 && dryRun.errors.contains("held by a running process"), "\(dryRun.errors)")

        // A copy is what a crash leaves: nobody holds it, so the same tail is damage.
        let copy = dir.path + "/copy"
        try FileManager.default.copyItem(atPath: dir.logPath, toPath: copy)
        let judged = try shiplog("verify", copy, "--json")
        #expect(judged.status == 1, "\(judged.output)")
        let copyReport = try JSONSerialization.jsonObject(with: Data(judged.output.utf8)) as? [String: Any] ?? [:]
        #expect(copyReport["live"] as? Bool == false)
        #expect(try shiplog("dump", copy).status == 1)
        try log.close()
    }
}
