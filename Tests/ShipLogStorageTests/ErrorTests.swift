import Foundation
import Testing
@testable import ShipLogStorage

@Suite struct ErrorTests {
    @Test func secondOpenOfALockedDirectoryIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath)
        #expect(throws: LogError.directoryLocked(path: dir.logPath + "/LOCK")) { try SegmentLog.open(directory: dir.logPath) }
        try log.close()
        _ = try SegmentLog.open(directory: dir.logPath)
    }

    @Test func foreignDirectoriesAndFilesAreRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path + "/foreign", withIntermediateDirectories: true)
        writeFileBytes(dir.path + "/foreign/notes.txt", Array("hello".utf8))
        #expect(throws: LogError.self) { try SegmentLog.open(directory: dir.path + "/foreign") }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/foreign/LOCK"), "a foreign directory is left untouched")
        writeFileBytes(dir.path + "/plain-file", [1])
        #expect(throws: LogError.notAShipLogDirectory(path: dir.path + "/plain-file", reason: "it is a file, not a directory")) {
            try SegmentLog.open(directory: dir.path + "/plain-file")
        }
        var options = LogOptions()
        options.createIfMissing = false
        #expect(throws: LogError.notAShipLogDirectory(path: dir.path + "/absent", reason: "it does not exist")) {
            try SegmentLog.open(directory: dir.path + "/absent", options: options)
        }
    }

    @Test func unknownSegmentFormatVersionIsAClearError() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do { _ = try SegmentLog.open(directory: dir.logPath) }
        let segment = dir.logPath + "/" + segmentFiles(dir.logPath)[0]
        setSegmentFormatVersion(7, of: segment)
        #expect(throws: LogError.unsupportedFormatVersion(file: segment, version: 7)) { try SegmentLog.open(directory: dir.logPath) }
    }

    @Test func oversizedRecordsAndBatchesAreRefusedWithoutWriting() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = LogOptions()
        options.maxRecordBytes = 1000
        options.maxBatchBytes = 4000
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(throws: LogError.recordTooLarge(bytes: 1001, limit: 1000)) { try log.append([UInt8](repeating: 1, count: 1001)) }
        #expect(throws: LogError.self) { try log.append([[UInt8]](repeating: [UInt8](repeating: 1, count: 900), count: 5)) }
        #expect(throws: LogError.emptyBatch) { try log.append([[UInt8]]()) }
        #expect(log.nextOffset == 0)
        try log.append([1], epoch: 4)
        #expect(throws: LogError.epochRegression(epoch: 3, lastEpoch: 4)) { try log.append([1], epoch: 3) }
    }

    @Test func aFailedFsyncPoisonsTheLogAndRollsBackToTheDurablePoint() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        var options = smallOptions()
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try log.append(makeRecord(0), durability: .fsync)
        try log.append(makeRecord(1), durability: .os)
        fs.faults.withLock { $0.failSyncs = true }
        #expect(throws: LogError.self) { try log.append(makeRecord(2), durability: .fsync) }
        fs.faults.withLock { $0.failSyncs = false }
        // Never retry and pretend: every later write is refused even though fsync works again.
        #expect(throws: LogError.self) { try log.append(makeRecord(3), durability: .fsync) }
        #expect(throws: LogError.self) { try log.append(makeRecord(3), durability: .buffered) }
        #expect(log.nextOffset == 1, "in-memory state is back at the last durable point")
        #expect(try allRecords(log) == [makeRecord(0)])
    }

    @Test func aFullDiskFailsTheAppendAndLosesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        var options = smallOptions(segmentBytes: 4096)
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in 0..<10 { try log.append(makeRecord(n)) }
        fs.faults.withLock { $0.failWritesWithENOSPC = true }
        for n in 10..<200 {
            do {
                try log.append(makeRecord(n))
                Issue.record("append \(n) succeeded on a full disk")
                break
            } catch LogError.io(_, _, let code) {
                #expect(code == ENOSPC)
            }
        }
        #expect(log.nextOffset == 10)
        #expect(try allRecords(log) == (0..<10).map { makeRecord($0) })
        fs.faults.withLock { $0.failWritesWithENOSPC = false }
        for n in 10..<200 { try log.append(makeRecord(n)) }
        #expect(try allRecords(log) == (0..<200).map { makeRecord($0) })
    }
}
