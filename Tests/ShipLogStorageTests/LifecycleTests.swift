import Foundation
import Testing
@testable import ShipLogStorage

/// Creating and closing a log (findings F8 and F9 of the storage review).
@Suite struct LifecycleTests {
    /// F9: a crash before any disk change of creating a log leaves a directory that opens as
    /// a new, empty log.
    @Test func aCrashAtAnyStepOfCreationOpensAsANewLog() throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let fs = ScriptedFileSystem()
            var options = smallOptions()
            options.fileSystem = fs
            fs.crash(beforeDiskChange: step)
            let created = try? SegmentLog.open(directory: dir.logPath, options: options)
            let completed = !fs.crashed
            if let created { try? created.close() }
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
            #expect(log.nextOffset == 0 && log.firstOffset == 0, "crash before disk change \(step)")
            #expect(try log.append(makeRecord(0), durability: .fsync) == 0)
            try log.close()
            if completed { break }
            step += 1
            try #require(step < 50)
        }
    }

    @Test func aDirectoryHoldingOnlyTheLockAndATemporaryIdentityOpensAsANewLog() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.logPath, withIntermediateDirectories: true)
        writeFileBytes(dir.logPath + "/LOCK", [])
        writeFileBytes(dir.logPath + "/SHIPLOG.tmp", [1, 2, 3])
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(log.nextOffset == 0)
        try log.close()
        #expect(!FileManager.default.fileExists(atPath: dir.logPath + "/SHIPLOG.tmp"))
    }

    /// F8: a closed handle refuses everything, including retention, which would otherwise
    /// delete segments another handle now uses.
    @Test func everyOperationOnAClosedHandleThrowsClosed() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let a = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 2 << 10))
        for n in 0..<200 { try a.append(makeRecord(n)) }
        try a.close()
        let b = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 2 << 10))
        let segmentsBefore = segmentFiles(dir.logPath)
        #expect(throws: LogError.closed) { try a.enforceRetention(RetentionPolicy(maxTotalBytes: 0)) }
        #expect(throws: LogError.closed) { try a.append(makeRecord(0)) }
        #expect(throws: LogError.closed) { try a.truncate(after: 10) }
        #expect(throws: LogError.closed) { try a.flush() }
        #expect(throws: LogError.closed) { try a.sync() }
        #expect(throws: LogError.closed) { _ = try a.records(in: 0..<10) }
        #expect(throws: LogError.closed) { _ = try a.record(at: 0) }
        #expect(throws: LogError.closed) { _ = try a.read(from: 0) }
        try a.close()  // idempotent
        #expect(segmentFiles(dir.logPath) == segmentsBefore)
        #expect(try b.record(at: 0).bytes == makeRecord(0))
        try b.close()
    }
}
