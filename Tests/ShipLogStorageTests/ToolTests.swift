import Foundation
import Testing
@testable import ShipLogStorage

/// The `shiplog` recovery tool, run as a process: exit codes, messages and effects.
@Suite struct ToolTests {
    struct Run {
        var status: Int32
        var output: String
        var errors: String
    }

    static var toolPath: String { CrashTests.writerPath.replacingOccurrences(of: "ShipLogCrashWriter", with: "shiplog") }

    func shiplog(_ arguments: String...) throws -> Run {
        try Self.run(Self.toolPath, arguments)
    }

    /// Runs a program to its end, collecting its exit status, standard output and errors.
    static func run(_ executable: String, _ arguments: [String]) throws -> Run {
        let finished = try runProgram(executable, arguments)
        return Run(status: finished.status, output: finished.output, errors: finished.errors)
    }

    /// A closed log of 300 records over several 4 KiB segments.
    func makeLog(_ dir: TemporaryDirectory) throws -> [[UInt8]] {
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        let records = (0..<300).map { makeRecord($0) }
        for n in stride(from: 0, to: 300, by: 3) { try log.append(Array(records[n..<(n + 3)]), epoch: UInt64(n / 100)) }
        try log.close()
        return records
    }

    func records(in directory: String) throws -> [[UInt8]] {
        let log = try SegmentLog.open(directory: directory, options: smallOptions(segmentBytes: 4096))
        return try allRecords(log)
    }

    @Test func verifyStatsAndDumpOnAHealthyLog() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let records = try makeLog(dir)
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 0)
        #expect(verify.output.hasSuffix("healthy\n"))
        let stats = try shiplog("stats", dir.logPath, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as! [String: Any]
        #expect(json["records"] as? Int == 300)
        #expect(json["epochs"] as? [Int] == [0, 1, 2])
        let dump = try shiplog("dump", dir.logPath, "--from", "10", "--to", "19")
        let lines = dump.output.split(separator: "\n")
        #expect(lines.count == 10)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect(first["offset"] as? Int == 10)
        // Record 10 ends in bytes that are not UTF-8, so its payload is base64.
        #expect(first["payload"] == nil)
        #expect(Data(base64Encoded: first["payload_base64"] as! String).map { [UInt8]($0) } == records[10])
        let utf8 = try JSONSerialization.jsonObject(with: Data(try shiplog("dump", dir.logPath, "--from", "13", "--limit", "1").output.utf8)) as! [String: Any]
        #expect(utf8["payload_base64"] == nil)
        #expect(utf8["payload"] as? String == String(decoding: records[13], as: UTF8.self))
        #expect(try shiplog("dump", dir.logPath, "--limit", "7").output.split(separator: "\n").count == 7)
        #expect(try shiplog("dump", dir.logPath, "--limit", "0").output.isEmpty)
        // A limit that ends inside a batch (batches hold 3 records), over several segments.
        let limited = try shiplog("dump", dir.logPath, "--from", "4", "--limit", "200", "--threads", "3").output
        let limitedLines = limited.split(separator: "\n")
        #expect(limitedLines.count == 200)
        for (index, line) in limitedLines.enumerated() where index % 37 == 0 || index == 199 {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(object["offset"] as? Int == 4 + index)
        }
        #expect(try shiplog("dump", dir.logPath, "--hex", "--limit", "1").output.contains("00000000  7b 22 73 65 71"))
    }

    @Test func aTornTailIsReportedAndRepairedWithABackupIdempotently() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let last = dir.logPath + "/" + segmentFiles(dir.logPath).last!
        let original = fileBytes(last)
        writeFileBytes(last, Array(original.dropLast(7)))
        try? FileManager.default.removeItem(atPath: dir.logPath + "/CLEAN")
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 1)
        #expect(verify.output.contains("torn tail"))
        #expect(verify.output.contains(last))
        let dryRun = try shiplog("repair", dir.logPath)
        #expect(dryRun.status == 1)
        #expect(fileBytes(last) == Array(original.dropLast(7)), "a dry run changes nothing")
        let repair = try shiplog("repair", dir.logPath, "--apply")
        #expect(repair.status == 0, "\(repair.errors)")
        let backups = try FileManager.default.contentsOfDirectory(atPath: dir.logPath).filter { $0.hasPrefix("repair-backup-") }
        #expect(backups.count == 1)
        #expect(fileBytes(dir.logPath + "/" + backups[0] + "/" + URL(fileURLWithPath: last).lastPathComponent) == Array(original.dropLast(7)))
        #expect(try shiplog("verify", dir.logPath).status == 0)
        let again = try shiplog("repair", dir.logPath, "--apply")
        #expect(again.status == 0)
        #expect(again.output.contains("nothing to repair"))
        #expect(try records(in: dir.logPath) == (0..<297).map { makeRecord($0) }, "only the torn batch is gone")
    }

    @Test func corruptionInTheMiddleNeedsConsentToLoseData() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let names = segmentFiles(dir.logPath)
        let victim = dir.logPath + "/" + names[1]
        var bytes = fileBytes(victim)
        bytes[Format.segmentHeaderBytes + 100] ^= 0x10
        writeFileBytes(victim, bytes)
        let verify = try shiplog("verify", dir.logPath, "--json")
        #expect(verify.status == 1)
        let json = try JSONSerialization.jsonObject(with: Data(verify.output.utf8)) as! [String: Any]
        let problem = (json["problems"] as! [[String: Any]])[0]
        #expect(problem["file"] as? String == victim)
        #expect(problem["position"] as? Int == Format.segmentHeaderBytes)
        #expect(problem["torn_tail"] as? Bool == false)
        let refused = try shiplog("repair", dir.logPath, "--apply")
        #expect(refused.status == 1)
        #expect(refused.errors.contains("--accept-data-loss"))
        #expect(fileBytes(victim) == bytes)
        let repaired = try shiplog("repair", dir.logPath, "--apply", "--accept-data-loss")
        #expect(repaired.status == 0, "\(repaired.errors)")
        #expect(try shiplog("verify", dir.logPath).status == 0)
        let base = Int(Format.baseOffset(ofSegmentName: names[1])!)
        #expect(try records(in: dir.logPath) == (0..<base).map { makeRecord($0) }, "every record before the damage is kept")
    }

    @Test func dumpAndReplayDeliverTheValidPrefixThenReportTheDamage() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let records = try makeLog(dir)
        let names = segmentFiles(dir.logPath)
        let victim = dir.logPath + "/" + names[2]
        var bytes = fileBytes(victim)
        bytes[Format.segmentHeaderBytes + 9] = 7  // an unknown codec in the segment's first batch
        writeFileBytes(victim, bytes)
        let base = Int(Format.baseOffset(ofSegmentName: names[2])!)
        let dump = try shiplog("dump", dir.logPath)
        #expect(dump.status == 1)
        #expect(dump.output.split(separator: "\n").count == base)
        #expect(dump.errors.contains(victim))
        let into = dir.path + "/prefix"
        #expect(try shiplog("replay", dir.logPath, "--into", into).status == 1)
        #expect(try self.records(in: into) == Array(records[0..<base]))
        #expect(try shiplog("stats", dir.logPath).output.contains("damaged"))
    }

    @Test func aMissingIndexIsRebuilt() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let index = dir.logPath + "/" + Format.indexName(baseOffset: 0)
        try FileManager.default.removeItem(atPath: index)
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 1)
        #expect(verify.output.contains("index missing"))
        #expect(try shiplog("repair", dir.logPath, "--apply").status == 0)
        #expect(FileManager.default.fileExists(atPath: index))
        #expect(try shiplog("verify", dir.logPath).status == 0)
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        for offset in [0, 17, 40] { #expect(try log.record(at: UInt64(offset)).bytes == makeRecord(offset)) }
    }

    @Test func unusableDirectoriesExitWithTwoAndSayWhy() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path + "/empty", withIntermediateDirectories: true)
        let empty = try shiplog("verify", dir.path + "/empty")
        #expect(empty.status == 2)
        #expect(empty.errors.contains("is not a ShipLog directory: it is empty"))
        writeFileBytes(dir.path + "/file", [1, 2])
        let file = try shiplog("dump", dir.path + "/file")
        #expect(file.status == 2)
        #expect(file.errors.contains("it is a file"))
        #expect(try shiplog("verify", dir.path + "/missing").status == 2)
        #expect(try shiplog("verify").status == 2, "usage error")
        #expect(try shiplog("frobnicate", dir.path).status == 2)
    }

    /// A log with no records is healthy and empty to every subcommand; a log written by a
    /// newer format version is refused with the version named (exit 2), whether the directory
    /// says so or one segment does.
    @Test func emptyLogsAndUnknownVersions() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try SegmentLog.open(directory: dir.logPath, options: smallOptions()).close()
        #expect(try shiplog("verify", dir.logPath).status == 0)
        let stats = try JSONSerialization.jsonObject(with: Data(try shiplog("stats", dir.logPath, "--json").output.utf8)) as! [String: Any]
        #expect(stats["records"] as? Int == 0)
        let dump = try shiplog("dump", dir.logPath)
        #expect(dump.status == 0 && dump.output.isEmpty)
        let count = try shiplog("replay", dir.logPath, "--exec", "wc -l")
        #expect(count.status == 0 && count.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try shiplog("replay", dir.logPath, "--into", dir.path + "/copy").status == 0)
        #expect(try shiplog("verify", dir.path + "/copy").status == 0)

        let newer = TemporaryDirectory()
        defer { newer.remove() }
        _ = try makeLog(newer)
        // The directory's identity file from a future version 2, checksum and all.
        var identity = [UInt8](repeating: 0, count: Format.directoryFileBytes)
        identity.withUnsafeMutableBytes { out in
            out.copyBytes(from: Format.directoryMagic)
            out.setLittleEndian(UInt32(2), at: 8)
            out.setLittleEndian(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<12])), at: 12)
        }
        let identityPath = newer.logPath + "/" + Format.directoryFileName
        let original = fileBytes(identityPath)
        writeFileBytes(identityPath, identity)
        for subcommand in ["verify", "dump", "stats", "repair", "replay"] {
            let run = subcommand == "replay" ? try shiplog(subcommand, newer.logPath, "--exec", "cat") : try shiplog(subcommand, newer.logPath)
            #expect(run.status == 2, "\(subcommand)")
            #expect(run.errors.contains("version 2"), "\(subcommand): \(run.errors)")
        }
        writeFileBytes(identityPath, original)
        // One sealed segment from version 2: verify names the file.
        let segment = newer.logPath + "/" + segmentFiles(newer.logPath)[1]
        setSegmentFormatVersion(2, of: segment)
        let verify = try shiplog("verify", newer.logPath)
        #expect(verify.status == 2, "a file this version cannot read: \(verify.errors)")
        #expect(verify.errors.contains(segment) && verify.errors.contains("version 2"), "\(verify.errors)")
    }

    @Test func aLockedLogCanBeReadButNotRepaired() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        try FileManager.default.removeItem(atPath: dir.logPath + "/" + Format.indexName(baseOffset: 0))
        let running = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        #expect(try shiplog("dump", dir.logPath).output.split(separator: "\n").count == 300)
        let repair = try shiplog("repair", dir.logPath, "--apply")
        #expect(repair.status == 2)
        #expect(repair.errors.contains("locked"))
        try running.close()
    }

    @Test func replayIntoANewLogKeepsOffsetsAndStreamsToAProgram() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let records = try makeLog(dir)
        let into = dir.path + "/restored"
        let replay = try shiplog("replay", dir.logPath, "--into", into, "--from", "50", "--to", "250")
        #expect(replay.status == 0, "\(replay.errors)")
        #expect(try shiplog("verify", into).status == 0)
        let restored = try SegmentLog.open(directory: into, options: smallOptions(segmentBytes: 4096))
        #expect(restored.firstOffset == 50)
        #expect(restored.nextOffset == 251)
        #expect(try restored.records(in: 50..<251).map { Array($0.bytes) } == Array(records[50...250]))
        #expect(try restored.read(from: 51)[0].header.leaderEpoch == 0)
        #expect(try shiplog("replay", dir.logPath, "--into", into).status == 2, "replay never writes into an existing log")
        let out = dir.path + "/out.jsonl"
        let exec = try shiplog("replay", dir.logPath, "--exec", "cat > '\(out)'", "--from", "290")
        #expect(exec.status == 0, "\(exec.errors)")
        #expect(String(decoding: fileBytes(out), as: UTF8.self).split(separator: "\n").count == 10)
        #expect(try shiplog("replay", dir.logPath, "--exec", "exit 3").status == 3, "the program's failure has its own code")
        // Frames: u32 little-endian length, then the bytes; whole batches and a straddled one.
        let framesPath = dir.path + "/out.frames"
        #expect(try shiplog("replay", dir.logPath, "--frames", "--from", "4", "--exec", "cat > '\(framesPath)'").status == 0)
        let framed = fileBytes(framesPath)
        var decoded: [[UInt8]] = []
        var at = 0
        while at + 4 <= framed.count {
            let length = Int(framed[at]) | Int(framed[at + 1]) << 8 | Int(framed[at + 2]) << 16 | Int(framed[at + 3]) << 24
            decoded.append(Array(framed[(at + 4)..<(at + 4 + length)]))
            at += 4 + length
        }
        #expect(at == framed.count)
        #expect(decoded == Array(records[4...]))
    }

    /// As root, the read-only test runs the tool as `nobody` through setpriv(1), because root
    /// may open any file for writing and would hide the bug this test is for.
    static let setprivPath = "/usr/bin/setpriv"

    /// Not root, or root with setpriv and a toolchain that `nobody` may load the tool from:
    /// tried once by running a copy of the tool as `nobody`.
    static let canRunAsAnotherUser: Bool = {
        guard geteuid() == 0 else { return true }
        guard FileManager.default.isExecutableFile(atPath: setprivPath) else { return false }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let copy = dir.path + "/shiplog"
        guard (try? FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)) != nil,
              (try? FileManager.default.copyItem(atPath: toolPath, toPath: copy)) != nil,
              let run = try? run(setprivPath, ["--reuid=65534", "--regid=65534", "--clear-groups", copy, "--help"])
        else { return false }
        return run.status == 0
    }()

    /// Logs on read-only mounts and snapshots, or owned by another user, must still be
    /// inspected: read-only subcommands open every file read-only. Repair, which must write,
    /// says why it cannot.
    @Test(.enabled(if: ToolTests.canRunAsAnotherUser,
                   "as root, needs /usr/bin/setpriv and a Swift toolchain that the user nobody may read, to drop privileges"))
    func readOnlySubcommandsWorkOnFilesTheUserMayOnlyRead() throws {
        let dir = TemporaryDirectory()
        defer {
            _ = chmod(dir.logPath, 0o755)
            dir.remove()
        }
        _ = try makeLog(dir)
        try FileManager.default.removeItem(atPath: dir.logPath + "/" + Format.indexName(baseOffset: 0))
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.logPath) {
            #expect(chmod(dir.logPath + "/" + name, 0o444) == 0)
        }
        #expect(chmod(dir.logPath, 0o555) == 0)
        // A copy of the tool that `nobody` may run.
        let tool = dir.path + "/shiplog"
        try FileManager.default.copyItem(atPath: Self.toolPath, toPath: tool)
        func run(_ arguments: String...) throws -> Run {
            geteuid() == 0
                ? try Self.run(Self.setprivPath, ["--reuid=65534", "--regid=65534", "--clear-groups", tool] + arguments)
                : try Self.run(tool, arguments)
        }
        let verify = try run("verify", dir.logPath)
        #expect(verify.status == 1, "a missing index is reported: \(verify.errors)")
        #expect(verify.output.contains("missing"), "\(verify.output)")
        #expect(try run("stats", dir.logPath).status == 1, "stats prints its figures and exits 1 on a log verify calls damaged")
        #expect(try run("dump", dir.logPath, "--limit", "5").output.split(separator: "\n").count == 5)
        let replay = try run("replay", dir.logPath, "--exec", "wc -l")
        #expect(replay.status == 0, "\(replay.errors)")
        #expect(replay.output.trimmingCharacters(in: .whitespacesAndNewlines) == "300")
        let repair = try run("repair", dir.logPath, "--apply")
        #expect(repair.status == 2)
        #expect(repair.errors.contains("cannot lock"), "\(repair.errors)")
        #expect(repair.errors.contains("Permission denied"), "\(repair.errors)")
        // A directory the user may not read at all: exit 2, naming it and the errno.
        #expect(chmod(dir.logPath, 0o000) == 0)
        let unreadable = try run("verify", dir.logPath)
        #expect(unreadable.status == 2)
        #expect(unreadable.errors.contains(dir.logPath) && unreadable.errors.contains("Permission denied"), "\(unreadable.errors)")
    }
}

/// A program run to its end: how it ended and what it printed.
struct FinishedProgram {
    var status: Int32
    var killedBySignal: Bool
    var output: String
    var errors: String
}

/// Runs a program to its end, collecting its exit status, standard output and errors.
func runProgram(_ executable: String, _ arguments: [String]) throws -> FinishedProgram {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return FinishedProgram(status: process.terminationStatus, killedBySignal: process.terminationReason == .uncaughtSignal,
                           output: String(decoding: output, as: UTF8.self), errors: String(decoding: errors, as: UTF8.self))
}
