import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// `shiplog replay`: the --exec program's own status, programs started where the tool is,
/// and --into copies that appear whole or not at all.
@Suite struct ReplayTests {
    func shiplog(_ arguments: String...) throws -> ToolTests.Run { try ToolTests.run(ToolTests.toolPath, arguments) }

    @Test func execReportsTheProgramsOwnStatus() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try ToolTests().makeLog(dir)
        let early = try shiplog("replay", dir.logPath, "--exec", "exit 3")
        #expect(early.status == 3, "its own code, not 1 (damage)")
        #expect(early.errors.contains("'exit 3' exited with status 3") && !early.errors.contains("Broken pipe"), "\(early.errors)")
        let late = try shiplog("replay", dir.logPath, "--exec", "cat > /dev/null; exit 4")
        #expect(late.status == 3 && late.errors.contains("exited with status 4"), "\(late.errors)")
        let killed = try shiplog("replay", dir.logPath, "--exec", "kill -9 $$")
        #expect(killed.status == 3 && killed.errors.contains("killed by signal 9"), "\(killed.errors)")
        // A program that stops reading and succeeds made its choice: 0, with a note. The
        // records must outgrow the pipe (1 MiB) for the tool to see it stop.
        let large = dir.path + "/large"
        let log = try SegmentLog.open(directory: large, options: smallOptions(segmentBytes: 1 << 20))
        for n in 0..<1000 { try log.append((0..<20).map { Array(repeating: UInt8(65 + $0), count: 200 + n % 7) }) }
        try log.close()
        let head = try shiplog("replay", large, "--exec", "head -c 100 > /dev/null")
        #expect(head.status == 0 && head.errors.contains("the rest was not delivered"), "\(head.errors)")
    }

    /// Started from a directory its user may not enter, the program still runs: the tool
    /// starts it without changing directory (Foundation's Process changed into it first and
    /// failed with "Permission denied" naming /bin/sh). As root the tool runs as `nobody`,
    /// for whom a 0700 directory is closed.
    @Test(.enabled(if: ToolTests.canRunAsAnotherUser,
                   "as root, needs /usr/bin/setpriv and a Swift toolchain that the user nobody may read, to drop privileges"))
    func execStartsTheProgramWithoutChangingDirectory() throws {
        let dir = TemporaryDirectory()
        let closed = dir.path + "/closed"
        defer {
            _ = chmod(closed, 0o700)
            dir.remove()
        }
        _ = try ToolTests().makeLog(dir)
        try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: true)
        let tool = dir.path + "/shiplog"
        try FileManager.default.copyItem(atPath: ToolTests.toolPath, toPath: tool)
        let asUser = geteuid() == 0 ? [ToolTests.setprivPath, "--reuid=65534", "--regid=65534", "--clear-groups", tool] : [tool]
        // The shell enters the directory, closes it, then becomes the tool.
        let run = try ToolTests.run("/bin/sh", ["-c", "cd \"$0\" && chmod 0 . && exec \"$@\"", closed]
                                        + asUser + ["replay", dir.logPath, "--exec", "wc -l"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.trimmingCharacters(in: .whitespacesAndNewlines) == "300")
    }

    /// --since picks where the copy starts: the first batch written at or after it, and every
    /// batch after, even one whose clock stepped back (a copy has no holes).
    @Test func intoSinceStartsAtTheFirstBatchWrittenThen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let ticks = Atomic<Int64>(0)
        var options = smallOptions(segmentBytes: 4096)
        options.clock = { 1_700_000_000_000 + 1000 * ticks.add(1, ordering: .relaxed).oldValue }
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in stride(from: 0, to: 300, by: 3) {
            if n == 240 { ticks.store(30, ordering: .relaxed) }  // the clock steps back 50 s
            try log.append((n..<(n + 3)).map { makeRecord($0) })
        }
        try log.close()
        let into = dir.path + "/since"
        // Batch 60 (offsets 180...) was written at tick 60.
        let replay = try shiplog("replay", dir.logPath, "--into", into, "--since", String(1_700_000_000_000 + 60_000))
        #expect(replay.status == 0, "\(replay.errors)")
        let copy = try SegmentLog.open(directory: into, options: smallOptions(segmentBytes: 4096))
        #expect(copy.firstOffset == 180)
        #expect(try allRecords(copy) == (180..<300).map { makeRecord($0) })
        try copy.close()
    }

    /// A copy that fails (a full disk, an I/O error) leaves nothing at the destination and
    /// no partial copy beside it, and never a clean-shutdown marker for a part.
    @Test(.enabled(if: KillPoints.unavailable == nil, "needs strace to make calls fail: \(KillPoints.unavailable ?? "")"))
    func aFailedCopyLeavesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try ToolTests().makeLog(dir)
        let into = dir.path + "/copy"
        let arguments = ["replay", dir.logPath, "--into", into, "--from", "50", "--quiet"]
        let failures = try KillPoints.forEachPoint(arguments, .fail("ENOSPC"), prepare: { try? FileManager.default.removeItem(atPath: into) }) { point, run in
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".copy") }
            #expect(left.isEmpty, "\(point): no partial copy is left: \(left)")
            guard run.status != 0 else { return try checkCopy(into, "\(point)") }
            #expect(run.status == 1 && run.errors.contains("No space left"), "\(point): \(run.errors)")
            if run.errors.contains("is whole") {
                try checkCopy(into, "\(point): failing after the rename")  // syncing the new name failed
            } else {
                #expect(!FileManager.default.fileExists(atPath: into), "\(point): \(into) was not created")
                #expect(run.errors.contains("was not created"), "\(point): \(run.errors)")
            }
        }
        #expect(failures > 5)
    }

    /// Killed at every call that changes the disk, replay --into leaves the destination
    /// absent or whole; run again, it removes the partial copy and makes the whole one.
    @Test(.enabled(if: KillPoints.unavailable == nil, "needs strace to kill the tool at chosen calls: \(KillPoints.unavailable ?? "")"))
    func aKilledCopyIsAbsentOrWhole() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try ToolTests().makeLog(dir)
        let into = dir.path + "/copy"
        let arguments = ["replay", dir.logPath, "--into", into, "--from", "50", "--quiet"]
        let started = ContinuousClock.now
        let kills = try KillPoints.forEachPoint(arguments, .kill, prepare: { try? FileManager.default.removeItem(atPath: into) }) { point, run in
            if FileManager.default.fileExists(atPath: into) { try checkCopy(into, "\(point)") }
            guard run.injected else { return }
            let again = try ToolTests.run(ToolTests.toolPath, arguments)
            if again.status != 0 {
                #expect(again.status == 2 && again.errors.contains("not empty"), "\(point): only a whole copy stops a second run: \(again.errors)")
            }
            try checkCopy(into, "\(point), then replayed again")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".copy") }
            #expect(left.isEmpty, "\(point): the second run removed the partial copy: \(left)")
        }
        #expect(kills > 5)
        print("replay --into: \(kills) kill points in \(ContinuousClock.now - started)")
    }

    /// A whole copy of offsets 50... of ToolTests.makeLog's log.
    func checkCopy(_ into: String, _ point: String) throws {
        let copy = try SegmentLog.open(directory: into, options: smallOptions(segmentBytes: 4096))
        defer { try? copy.close() }
        #expect(copy.firstOffset == 50 && copy.nextOffset == 300, "\(point)")
        #expect(try allRecords(copy) == (50..<300).map { makeRecord($0) }, "\(point)")
    }
}
