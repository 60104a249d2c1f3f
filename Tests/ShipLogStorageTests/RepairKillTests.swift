import Foundation
import Testing
@testable import ShipLogStorage

/// `shiplog repair --apply` killed at every call that changes the disk (KillPoints): after
/// each kill the log opens with the library and holds the old log or a prefix of it, never
/// a hole; a complete-looking backup is complete; a second repair reaches the result of an
/// uninterrupted one.
@Suite(.enabled(if: KillPoints.unavailable == nil, "needs strace to kill the tool at chosen calls: \(KillPoints.unavailable ?? "")"))
struct RepairKillTests {
    /// A damaged log, kept pristine for every run, and what an uninterrupted repair makes of it.
    struct Scenario {
        let dir = TemporaryDirectory()
        let arguments: [String]
        /// The log before the repair: files and records (up to its damage).
        var old = DirectorySnapshot("")
        var oldRecords: [[UInt8]] = []
        /// After an uninterrupted repair.
        var repaired = DirectorySnapshot("")
        var keptRecords: [[UInt8]] = []
        /// The segment the damage is in, if any.
        var damaged: String?
        /// An index-only repair must keep the clean-shutdown marker at every step.
        var keepsClean = false

        var pristine: String { dir.path + "/pristine" }
        var log: String { dir.logPath }

        init(_ extra: [String], damage: (String) throws -> String?) throws {
            arguments = ["repair", dir.logPath, "--apply", "--quiet"] + extra
            oldRecords = try ToolTests().makeLog(dir)
            damaged = try damage(log)
            try copyDirectory(log, to: pristine)
            old = DirectorySnapshot(log)
            let reference = dir.path + "/reference"
            try copyDirectory(log, to: reference)
            let run = try ToolTests.run(ToolTests.toolPath, ["repair", reference, "--apply", "--quiet"] + extra)
            try #require(run.status == 0, "an uninterrupted repair: \(run.errors)")
            repaired = DirectorySnapshot(reference)
            let read = try readable(reference)
            try #require(read.error == nil && read.complete, "the repaired log reads to its end: \(String(describing: read.error))")
            keptRecords = read.records
            keepsClean = old.files[Format.cleanMarkerName] != nil && repaired.files[Format.cleanMarkerName] != nil
        }

        func reset() throws { try copyDirectory(pristine, to: log) }
    }

    /// What the library reads from a copy of `path`: records from the first offset until the
    /// end or the first error, and the error (open's included).
    static func readable(_ path: String, recovery: RecoveryMode = .tolerateCorruptTail) throws
        -> (records: [[UInt8]], complete: Bool, error: (any Error)?) {
        let copy = path + ".opened"
        try copyDirectory(path, to: copy)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        var records: [[UInt8]] = []
        do {
            var options = smallOptions(segmentBytes: 4096)
            options.recovery = recovery
            let log = try SegmentLog.open(directory: copy, options: options)
            defer { try? log.close() }
            var cursor = log.batches(from: log.firstOffset)
            while let batch = try cursor.next() { records += try batch.decode().map { Array($0.bytes) } }
            return (records, records.count == Int(log.nextOffset - log.firstOffset), nil)
        } catch {
            return (records, false, error)
        }
    }

    /// The state a kill left: the old log or a prefix of it, as files and as the library reads it.
    func checkInterrupted(_ s: Scenario, _ point: String) throws {
        let now = DirectorySnapshot(s.log)
        let segments = now.segments
        #expect(segments == Array(s.old.segments.prefix(segments.count)), "\(point): the segments left are the first ones")
        for name in segments.dropLast() {
            #expect(same(now.files[name], s.old.files[name]), "\(point): \(name), not the last left, is unchanged")
        }
        if let last = segments.last {
            #expect(same(now.files[last], s.old.files[last]) || same(now.files[last], s.repaired.files[last]),
                    "\(point): \(last) is as it was or as the repair cuts it")
        }
        let unchanged = segments.allSatisfy { now.files[$0] == s.old.files[$0] } && segments == s.old.segments
        if now.files[Format.cleanMarkerName] != nil {
            #expect(unchanged, "\(point): a clean-shutdown marker vouches only for the old segments")
        }
        if s.keepsClean { #expect(now.files[Format.cleanMarkerName] != nil, "\(point): an index rebuild keeps the marker") }
        for folder in now.folders where folder.hasPrefix("repair-backup-") && !folder.hasSuffix(".partial") {
            let backup = DirectorySnapshot(s.log + "/" + folder)
            for (name, bytes) in backup.files { #expect(same(bytes, s.old.files[name]), "\(point): \(folder)/\(name) is whole") }
        }
        let read = try Self.readable(s.log)
        #expect(read.records == Array(s.oldRecords.prefix(read.records.count)), "\(point): the library reads a prefix of the old records")
        guard let error = read.error else {
            #expect(read.complete && read.records.count >= s.keptRecords.count, "\(point): every record the repair keeps is there")
            return
        }
        // Only the old damage may stop the library, still where it was.
        guard case LogError.corruption(let file, _, _, _)? = error as? LogError, let damaged = s.damaged,
              file.hasSuffix(damaged), now.files[damaged] == s.old.files[damaged]
        else {
            Issue.record("\(point): the library fails on something other than the old damage: \(error)")
            return
        }
        if segments.last == damaged {
            // Later segments gone, the cut not made: the damaged segment is the last, and open
            // refuses it loudly as damage in the middle of the last segment (no order avoids
            // this step: cutting first is what made the hole). Point-in-time recovery, or the
            // repair run again, keeps exactly the prefix.
            let pointInTime = try Self.readable(s.log, recovery: .pointInTime)
            #expect(pointInTime.error == nil && pointInTime.records == s.keptRecords, "\(point): point-in-time open keeps the prefix")
        } else {
            #expect(read.records.count >= s.keptRecords.count, "\(point): every record the repair keeps is still there")
        }
    }

    /// The state of a finished repair: what an uninterrupted one leaves.
    func checkRepaired(_ s: Scenario, _ point: String) throws {
        let now = DirectorySnapshot(s.log)
        #expect(now.segments == s.repaired.segments, "\(point)")
        for name in now.segments { #expect(same(now.files[name], s.repaired.files[name]), "\(point): \(name)") }
        #expect((now.files[Format.cleanMarkerName] != nil) == (s.repaired.files[Format.cleanMarkerName] != nil), "\(point): CLEAN")
        #expect(!now.folders.contains { $0.hasSuffix(".partial") }, "\(point): no incomplete backup is left")
        #expect(now.folders.contains { $0.hasPrefix("repair-backup-") }, "\(point): a complete backup")
        let read = try Self.readable(s.log)
        #expect(read.error == nil && read.complete && read.records == s.keptRecords, "\(point): \(String(describing: read.error))")
    }

    func killEverywhere(_ s: Scenario) throws {
        let started = ContinuousClock.now
        let kills = try KillPoints.forEachPoint(s.arguments, .kill, prepare: s.reset) { point, run in
            guard run.injected else {
                #expect(run.status == 0, "\(point.call) #\(point.n) was never reached; the run failed: \(run.errors)")
                try checkRepaired(s, "uninterrupted (\(point.call) made \(point.n - 1) times)")
                return
            }
            try checkInterrupted(s, "\(point)")
            try repairAgain(s, "\(point)")
        }
        #expect(kills > 5, "the loop reached the repair's changes")
        print("repair \(s.arguments.dropFirst(2).joined(separator: " ")): \(kills) kill points in \(ContinuousClock.now - started)")
    }

    func repairAgain(_ s: Scenario, _ point: String) throws {
        let again = try ToolTests.run(ToolTests.toolPath, s.arguments)
        #expect(again.status == 0, "\(point), then repaired again: \(again.errors)")
        try checkRepaired(s, "\(point), then repaired again")
    }

    @Test func corruptionInTheMiddleKeepingThePrefix() throws {
        let s = try Scenario(["--accept-data-loss"]) { log in
            // The second segment's first batch; the log was closed cleanly, so CLEAN is there.
            let name = segmentFiles(log)[1]
            var bytes = fileBytes(log + "/" + name)
            bytes[Format.segmentHeaderBytes + 100] ^= 0x10
            writeFileBytes(log + "/" + name, bytes)
            return name
        }
        defer { s.dir.remove() }
        #expect(s.repaired.segments.count == 2 && s.old.segments.count >= 3, "segments after the damage are removed")
        try killEverywhere(s)
    }

    /// A call failing (EIO) instead of a kill: the same states, and a message that says what
    /// was done, what was not, and where the backup is, or that nothing was changed.
    @Test func aFailureAtEveryStepSaysWhatWasDone() throws {
        let s = try Scenario(["--accept-data-loss"]) { log in
            let name = segmentFiles(log)[1]
            var bytes = fileBytes(log + "/" + name)
            bytes[Format.segmentHeaderBytes + 100] ^= 0x10
            writeFileBytes(log + "/" + name, bytes)
            return name
        }
        defer { s.dir.remove() }
        let failures = try KillPoints.forEachPoint(s.arguments, .fail("EIO"), prepare: s.reset) { point, run in
            guard run.injected else { return try checkRepaired(s, "uninjected") }
            let now = DirectorySnapshot(s.log)
            if run.status == 0 {
                // Only calls whose failure costs nothing may pass unnoticed: the rest say so.
                #expect(["fsync", "rmdir"].contains(point.call) || run.output.contains("repaired"), "\(point): \(run.output)")
            } else {
                #expect(run.status == 1, "\(point): \(run.errors)")
                #expect(run.errors.contains("Input/output error"), "\(point): names the error: \(run.errors)")
                if run.errors.contains("backing up") {
                    #expect(run.errors.contains("nothing in the log was changed"), "\(point): \(run.errors)")
                    // Failing after the rename, the backup is whole (checkInterrupted compares it).
                    let whole = run.errors.contains("is complete")
                    #expect(whole || !now.folders.contains { $0.hasPrefix("repair-backup-") }, "\(point): the partial backup is removed")
                } else {
                    for part in ["done:", "not done:", "repair-backup-", "running the same repair again"] {
                        #expect(run.errors.contains(part), "\(point): says \(part) \(run.errors)")
                    }
                }
            }
            try checkInterrupted(s, "\(point)")
            try repairAgain(s, "\(point)")
        }
        #expect(failures > 5)
        print("repair --accept-data-loss: \(failures) failure points")
    }

    @Test func tornTail() throws {
        let s = try Scenario([]) { log in
            let name = segmentFiles(log).last!
            writeFileBytes(log + "/" + name, Array(fileBytes(log + "/" + name).dropLast(7)))
            try FileManager.default.removeItem(atPath: log + "/" + Format.cleanMarkerName)
            return name
        }
        defer { s.dir.remove() }
        try killEverywhere(s)
    }

    @Test func missingIndexKeepsTheCleanMarker() throws {
        let s = try Scenario([]) { log in
            try FileManager.default.removeItem(atPath: log + "/" + Format.indexName(baseOffset: 0))
            return nil
        }
        defer { s.dir.remove() }
        #expect(s.keepsClean, "an index rebuild leaves the clean-shutdown marker")
        try killEverywhere(s)
    }
}

/// Whether two files' bytes are equal: a Bool, so that a failed expectation prints the
/// message rather than kilobytes of both files.
func same(_ a: [UInt8]?, _ b: [UInt8]?) -> Bool { a == b }
