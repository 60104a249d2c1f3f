import Foundation
import Testing
@testable import ShipLogStorage

/// `shiplog repair`: what it says before it acts, what it counts, the backup's durability,
/// and a disk too full for the backup.
@Suite struct RepairTests {
    /// A closed log of several segments whose second segment's first batch is corrupt.
    func damagedLog(_ log: String) throws -> String {
        // ToolTests.makeLog's log, at any path.
        let writer = try SegmentLog.open(directory: log, options: smallOptions(segmentBytes: 4096))
        for n in stride(from: 0, to: 300, by: 3) { try writer.append((n..<(n + 3)).map { makeRecord($0) }, epoch: UInt64(n / 100)) }
        try writer.close()
        let victim = log + "/" + segmentFiles(log)[1]
        var bytes = fileBytes(victim)
        bytes[Format.segmentHeaderBytes + 100] ^= 0x10
        writeFileBytes(victim, bytes)
        return victim
    }

    @Test func aRefusedRepairSaysWouldAndChangesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try damagedLog(dir.logPath)
        let before = DirectorySnapshot(dir.logPath)
        let refused = try ToolTests.run(ToolTests.toolPath, ["repair", dir.logPath, "--apply"])
        #expect(refused.status == 1)
        #expect(refused.errors.contains("--accept-data-loss") && refused.errors.contains("nothing was changed"), "\(refused.errors)")
        let lines = refused.output.split(separator: "\n")
        #expect(lines.count >= 4, "the backup, CLEAN, the later segments and the cut: \(refused.output)")
        #expect(lines.allSatisfy { $0.hasPrefix("would ") }, "every step of a refused run says would: \(refused.output)")
        #expect(DirectorySnapshot(dir.logPath) == before)
    }

    /// A torn tail in a preallocated segment loses the torn batch's bytes, and says so, not
    /// the megabyte of zeroes after it.
    @Test func aTornTailCountsTheBytesOfBatchesLostNotPreallocatedZeroes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(segmentBytes: 1 << 20)
        options.durability = .os
        var tornAt: Int64 = 0
        var end: Int64 = 0
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: options)
            for n in 0..<20 { try log.append([makeRecord(n), makeRecord(n + 100)]) }
            tornAt = log.totalBytes
            try log.append((0..<8).map { makeRecord($0 + 500) })
            end = log.totalBytes
            // Dropped without close: the segment stays preallocated, with no clean marker.
        }
        let segment = dir.logPath + "/" + segmentFiles(dir.logPath)[0]
        #expect(fileBytes(segment).count == 1 << 20, "still preallocated")
        var bytes = fileBytes(segment)
        bytes[Int(end) - 3] ^= 0xff
        writeFileBytes(segment, bytes)
        let plan = try ToolTests.run(ToolTests.toolPath, ["repair", dir.logPath])
        #expect(plan.output.contains("cut \(segment) at byte \(tornAt): drop \(end - tornAt) bytes of data"), "\(plan.output)")
    }

    /// The copies, their folder and its new name are durable before the first change to the
    /// log, so a power cut cannot keep the cut and lose the backup. Read from a trace of the
    /// calls with their file descriptors' paths (strace -y).
    @Test(.enabled(if: KillPoints.unavailable == nil, "needs strace to trace the tool: \(KillPoints.unavailable ?? "")"))
    func theBackupIsDurableBeforeTheLogChanges() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try damagedLog(dir.logPath)
        let trace = dir.path + "/trace"
        let run = try KillPoints.run(KillPoints.stracePath, ["-f", "-y", "-o", trace, "-e", "trace=fsync,fdatasync,unlink,ftruncate,rename",
                                                             ToolTests.toolPath, "repair", dir.logPath, "--apply", "--accept-data-loss"])
        #expect(run.status == 0, "\(run.errors)")
        let calls = String(decoding: fileBytes(trace), as: UTF8.self).split(separator: "\n").map(String.init)
        let backup = try #require(DirectorySnapshot(dir.logPath).folders.first { $0.hasPrefix("repair-backup-") })
        let partial = dir.logPath + "/" + backup + ".partial"
        guard let firstChange = calls.firstIndex(where: {
            ($0.contains("unlink(") || $0.contains("ftruncate(")) && $0.contains(dir.logPath + "/0") && !$0.contains("repair-backup-")
        }) else {
            Issue.record("no change to a segment in the trace:\n\(calls.joined(separator: "\n"))")
            return
        }
        let before = calls[..<firstChange]
        func index(_ predicate: (String) -> Bool) -> Int? { before.firstIndex(where: predicate) }
        for name in DirectorySnapshot(dir.logPath + "/" + backup).files.keys {
            #expect(index { $0.contains("fdatasync(") && $0.contains("<\(partial)/\(name)>") } != nil, "\(name) synced before the log changes")
        }
        let folderSynced = index { $0.contains("fsync(") && $0.contains("<\(partial)>") }
        let renamed = index { $0.contains("rename(\"\(partial)\"") }
        let logSynced = renamed.flatMap { after in before[after...].firstIndex { $0.contains("fsync(") && $0.contains("<\(dir.logPath)>") } }
        #expect(folderSynced != nil && renamed != nil && folderSynced! < renamed!, "the folder is synced, then renamed")
        #expect(logSynced != nil, "the new name is synced in the log directory before the log changes")
    }

    /// Mounting a small tmpfs needs root; elsewhere the full-disk test says why it skips.
    static let tmpfsUnavailable: String? = {
        guard geteuid() == 0 else { return "needs root to mount a small tmpfs" }
        let point = NSTemporaryDirectory() + "shiplog-tmpfs-probe-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: point) }
        guard let mount = try? KillPoints.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", point]), mount.status == 0 else {
            return "mount -t tmpfs failed (no CAP_SYS_ADMIN here?)"
        }
        _ = try? KillPoints.run("/bin/umount", [point])
        return nil
    }()

    /// On a disk that cannot hold the backup, repair refuses before writing anything (a
    /// partial backup once filled the disk and kept the library from opening the log), and
    /// says how much it needs; once there is room it repairs and the library opens the log.
    @Test(.enabled(if: RepairTests.tmpfsUnavailable == nil, "\(RepairTests.tmpfsUnavailable ?? "")"))
    func aDiskTooFullForTheBackupIsRefusedUpFront() throws {
        let dir = TemporaryDirectory()
        let disk = dir.path + "/disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        let mount = try KillPoints.run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", disk])
        try #require(mount.status == 0, "\(mount.errors)")
        defer {
            _ = try? KillPoints.run("/bin/umount", [disk])
            dir.remove()
        }
        let log = disk + "/log"
        _ = try damagedLog(log)
        // Leave less free than the backup's margin alone.
        let filler = disk + "/filler"
        let free = try #require(availableBytes(disk))
        writeFileBytes(filler, [UInt8](repeating: 1, count: Int(free) - 256 << 10))
        let before = DirectorySnapshot(log)
        let dryRun = try ToolTests.run(ToolTests.toolPath, ["repair", log, "--accept-data-loss"])
        #expect(dryRun.output.contains("not enough free space"), "a dry run warns: \(dryRun.output)")
        let refused = try ToolTests.run(ToolTests.toolPath, ["repair", log, "--apply", "--accept-data-loss"])
        #expect(refused.status == 1)
        #expect(refused.errors.contains("not enough free space") && refused.errors.contains("nothing was changed"), "\(refused.errors)")
        #expect(DirectorySnapshot(log) == before, "no backup folder, no change")
        try FileManager.default.removeItem(atPath: filler)
        let repaired = try ToolTests.run(ToolTests.toolPath, ["repair", log, "--apply", "--accept-data-loss"])
        #expect(repaired.status == 0, "\(repaired.errors)")
        let reopened = try SegmentLog.open(directory: log, options: smallOptions(segmentBytes: 4096))
        #expect(try allRecords(reopened) == (0..<Int(reopened.nextOffset)).map { makeRecord($0) })
        try reopened.close()
    }

    func availableBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}
