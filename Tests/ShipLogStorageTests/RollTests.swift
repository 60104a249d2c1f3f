import Foundation
import Testing
@testable import ShipLogStorage

/// Rolling to a new segment is all or nothing, and recovery trusts a sealed segment's data
/// over the next file's name (finding F4 of the storage review).
@Suite struct RollTests {
    private func options(_ fs: any FileSystem = PosixFileSystem()) -> LogOptions {
        var options = smallOptions(segmentBytes: 2 << 10, compression: .none)
        options.fileSystem = fs
        return options
    }

    /// Appends records until the next one would roll; returns them.
    private func fillFirstSegment(_ log: SegmentLog) throws -> [[UInt8]] {
        var records: [[UInt8]] = []
        while log.segmentCount == 1 {
            let record = makeRecord(records.count)
            let before = log.totalBytes
            try log.append(record, durability: .fsync)
            records.append(record)
            if log.totalBytes + (log.totalBytes - before) > 2 << 10 { break }
        }
        return records
    }

    @Test func aFailedDirectorySyncAfterTheNewSegmentIsInPlacePoisonsTheLog() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = ScriptedFileSystem()
        var log: SegmentLog! = try SegmentLog.open(directory: dir.logPath, options: options(fs))
        var acknowledged = try fillFirstSegment(log)
        fs.add(.syncDirectory, .fail(errno: EIO))
        #expect(throws: LogError.self) { try log.append(makeRecord(9999), durability: .fsync) }
        #expect(log.segmentCount == 2, "the new segment is on disk, so it is in the log's list")
        // Poisoned: nothing more is accepted, not even a batch small enough for the sealed segment.
        fs.clearRules()
        #expect(throws: LogError.self) { try log.append([1], durability: .os) }
        #expect(try allRecords(log) == acknowledged)
        log = nil
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options())
        #expect(try allRecords(reopened) == acknowledged)
        let next = try reopened.append(makeRecord(5), durability: .fsync)
        #expect(next == UInt64(acknowledged.count))
        acknowledged.append(makeRecord(5))
        try reopened.close()
        let again = try SegmentLog.open(directory: dir.logPath, options: options())
        #expect(try allRecords(again) == acknowledged)
        try again.close()
    }

    @Test func aRollThatFailsBeforeTheNewFileIsInPlaceChangesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = ScriptedFileSystem()
        let log = try SegmentLog.open(directory: dir.logPath, options: options(fs))
        var acknowledged = try fillFirstSegment(log)
        fs.add(.write, pathSuffix: ".log.tmp", times: nil, .fail(errno: EMFILE))
        #expect(throws: LogError.io(operation: "write (injected)", path: dir.logPath + "/" + Format.segmentName(baseOffset: UInt64(acknowledged.count)) + ".tmp", errno: EMFILE)) {
            try log.append(makeRecord(9999), durability: .fsync)
        }
        #expect(log.segmentCount == 1)
        fs.clearRules()
        for n in 0..<40 {
            try log.append(makeRecord(100 + n), durability: .os)
            acknowledged.append(makeRecord(100 + n))
        }
        #expect(log.segmentCount > 1)
        #expect(try allRecords(log) == acknowledged)
        try log.close()
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: dir.logPath)).contains { $0.hasSuffix(".tmp") })
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options())
        #expect(try allRecords(reopened) == acknowledged)
        try reopened.close()
    }

    /// A crash before every disk change of an append that rolls: every acknowledged record
    /// is there after reopening, and the log goes on at the right offset.
    @Test func aCrashAtAnyStepOfARollLosesNothingAcknowledged() throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let fs = ScriptedFileSystem()
            var log: SegmentLog! = try SegmentLog.open(directory: dir.logPath, options: options(fs))
            var acknowledged = try fillFirstSegment(log)
            fs.crash(beforeDiskChange: step)
            if (try? log.append(makeRecord(9999), durability: .fsync)) != nil { acknowledged.append(makeRecord(9999)) }
            let completed = !fs.crashed
            log = nil
            let reopened = try SegmentLog.open(directory: dir.logPath, options: options())
            let records = try allRecords(reopened)
            #expect(Array(records.prefix(acknowledged.count)) == acknowledged, "crash before disk change \(step) lost a record")
            #expect(records.count <= acknowledged.count + 1)
            #expect(try reopened.append([7], durability: .fsync) == UInt64(records.count))
            try reopened.close()
            if completed { break }
            step += 1
            try #require(step < 100)
        }
    }

    /// The review's case: a sealed segment holding a batch past the next segment's base.
    /// Opening must report it, not assume the sealed segment ends where the next begins.
    @Test(arguments: [true, false])
    func aSealedSegmentThatRunsPastTheNextSegmentIsDamage(keepIndexFile: Bool) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: options())
        for n in 0..<60 { try log.append(makeRecord(n), durability: .os) }
        let segments = segmentFiles(dir.logPath)
        try #require(segments.count >= 3)
        try log.close()
        let sealed = dir.logPath + "/" + segments[segments.count - 2]
        let nextBase = try #require(Format.baseOffset(ofSegmentName: segments[segments.count - 1]))
        var extra = StoredBatch(encoding: [makeRecord(4242)], codec: .none)
        extra.seal(firstOffset: nextBase, leaderEpoch: 0, timestampMs: 0)
        writeFileBytes(sealed, fileBytes(sealed) + extra.bytes)
        if !keepIndexFile { try FileManager.default.removeItem(atPath: String(sealed.dropLast(4)) + ".index") }
        try? FileManager.default.removeItem(atPath: dir.logPath + "/CLEAN")
        #expect {
            _ = try SegmentLog.open(directory: dir.logPath, options: options())
        } throws: { error in
            guard case LogError.corruption(let file, _, _, let reason) = error else { return false }
            return file == sealed && reason.contains("next segment starts at \(nextBase)")
        }
    }
}
