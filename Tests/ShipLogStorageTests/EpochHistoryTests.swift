import Foundation
import Testing
@testable import ShipLogStorage

/// `SegmentLog.epochHistory` and its checkpoint file through appends, truncation, retention
/// and reopening (format.md §12).
@Suite struct EpochHistoryTests {
    let options = smallOptions(segmentBytes: 2048, compression: .none)

    @Test func appendsInSeveralEpochsAreNamedWhereEachEpochStarts() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(log.epochHistory == EpochHistory())
        try appendBatches(log, epochs: [0, 0, 2, 2, 2, 5])
        try await log.append([makeRecord(1)], epoch: 5, durability: .buffered)  // buffered, same epoch
        // Another log's batch, byte for byte, in a new epoch; then an async append.
        let source = TemporaryDirectory()
        defer { source.remove() }
        var sourceOptions = options
        sourceOptions.initialOffset = log.nextOffset
        let other = try SegmentLog.open(directory: source.logPath, options: sourceOptions)
        try await other.append([makeRecord(7), makeRecord(8)], epoch: 7)
        var cursor = other.batches(from: other.firstOffset)
        try await log.append(storedBatch: try #require(try cursor.next()))
        _ = try await log.append([makeRecord(9)], epoch: 9, durability: .os)
        let expected = history([(0, 0), (2, 20), (5, 50), (7, 61), (9, 63)])
        #expect(log.epochHistory == expected)
        #expect(try epochsOfBatches(log) == expected)
        #expect(log.segmentCount > 2, "the epochs span segments")
        #expect(checkpointFile(dir.logPath) == expected, "each epoch change was written before its batch")
        try await log.close()
        try await other.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(reopened.recoveryReport.cleanShutdown)
        #expect(reopened.recoveryReport.epochCheckpoint == .matched)
        #expect(reopened.epochHistory == expected)
        // Epochs only grow: a lower one is refused and changes nothing.
        #expect(throws: LogError.epochRegression(epoch: 3, lastEpoch: 9)) { try reopened.append(makeRecord(0), epoch: 3) }
        #expect(reopened.epochHistory == expected)
        try await reopened.close()
    }

    /// The checkpoint is written once per epoch change, never per append in the same epoch.
    @Test func appendsInOneEpochNeverTouchTheCheckpoint() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, options)
        func checkpointWrites() -> Int {
            fs.trace.filter { $0.operation == .rename && $0.path.hasSuffix("/" + Format.epochCheckpointName) }.count
        }
        try appendBatches(log, epochs: Array(repeating: 1, count: 30))
        #expect(checkpointWrites() == 1, "the first batch starts epoch 1")
        try appendBatches(log, epochs: Array(repeating: 2, count: 30))
        #expect(checkpointWrites() == 2)
        try log.close()
        #expect(checkpointWrites() == 2, "close finds it exact")
    }

    @Test(arguments: [UInt64(24), 29, 30, 19, 9, 0])
    func truncateKeepsTheEpochsOfTheKeptRecords(after offset: UInt64) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try appendBatches(log, epochs: [1, 1, 3, 4, 4, 6])  // epoch 1 from 0, 3 from 20, 4 from 30, 6 from 50
        try log.truncate(after: offset)
        let expected = try epochsOfBatches(log)
        #expect(log.epochHistory == expected)
        #expect(checkpointFile(dir.logPath) == expected)
        #expect(log.lastEpoch == expected.lastEpoch ?? 0)
        // The log may go on in the kept epoch, or a new one.
        try log.append(makeRecord(1), epoch: log.lastEpoch)
        try log.append(makeRecord(2), epoch: 8)
        #expect(log.epochHistory == (try epochsOfBatches(log)))
        try log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(reopened.recoveryReport.epochCheckpoint == .matched)
        #expect(reopened.epochHistory == (try epochsOfBatches(reopened)))
        try reopened.close()
    }

    @Test func retentionTrimsTheFrontWithoutRewritingTheFile() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: options)
        try appendBatches(log!, epochs: [1, 1, 1, 2, 2, 2, 3, 3, 3, 4])
        let before = checkpointFile(dir.logPath)
        let removed = try log!.enforceRetention(RetentionPolicy(maxTotalBytes: log!.totalBytes / 2))
        #expect(!removed.isEmpty)
        let expected = try epochsOfBatches(log!)
        #expect(log!.epochHistory == expected)
        #expect(expected.entries.first?.startOffset == log!.firstOffset)
        #expect(checkpointFile(dir.logPath) == before, "retention costs no checkpoint write")
        log = nil  // unclean: the next open reconciles the file's front
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(!reopened.recoveryReport.cleanShutdown)
        #expect(reopened.recoveryReport.epochCheckpoint == .reconciled)
        #expect(reopened.epochHistory == expected)
        #expect(checkpointFile(dir.logPath) == expected)
        try reopened.close()
    }

    @Test func anUncleanReopenMatchesTheBatches() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: options)
        try appendBatches(log!, epochs: [0, 2, 2, 5, 5, 5, 5])
        let expected = log!.epochHistory
        log = nil
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(!reopened.recoveryReport.cleanShutdown)
        #expect(reopened.recoveryReport.epochCheckpoint == .matched)
        #expect(reopened.epochHistory == expected)
        try reopened.close()
    }

    enum Damage: String, CaseIterable { case deleted, corrupted, foreignVersion, behindInTheLastSegment, behindInASealedSegment, ahead }

    /// A checkpoint missing, damaged, behind or ahead of the log is rebuilt or reconciled at
    /// open, and the report says which and why.
    @Test(arguments: Damage.allCases, [true, false])
    func aDamagedOrStaleCheckpointIsRepairedAtOpen(damage: Damage, clean: Bool) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try appendBatches(log, epochs: [1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4])
        let expected = log.epochHistory
        try log.close()
        let path = dir.logPath + "/" + Format.epochCheckpointName
        var outcome = EpochCheckpointRecovery.rebuilt
        switch damage {
        case .deleted:
            try FileManager.default.removeItem(atPath: path)
        case .corrupted:
            var bytes = fileBytes(path)
            bytes[bytes.count - 10] ^= 0x40
            writeFileBytes(path, bytes)
        case .foreignVersion:
            var bytes = fileBytes(path)
            bytes.withUnsafeMutableBytes { $0.setLittleEndian(UInt32(9), at: 8) }
            writeFileBytes(path, bytes)
        case .behindInTheLastSegment:
            // Epoch 4 is in the last segment: a scan (unclean) finds it; a clean open sees the
            // last epoch disagree with the marker's.
            writeFileBytes(path, EpochCheckpoint.encoded(EpochHistory(entries: Array(expected.entries.dropLast()))))
            outcome = clean ? .rebuilt : .reconciled
        case .behindInASealedSegment:
            writeFileBytes(path, EpochCheckpoint.encoded(EpochHistory(entries: Array(expected.entries.prefix(2)))))
        case .ahead:
            var ahead = expected
            ahead.record(epoch: 9, startOffset: 140)
            writeFileBytes(path, EpochCheckpoint.encoded(ahead))
            outcome = .reconciled
        }
        if !clean { try FileManager.default.removeItem(atPath: dir.logPath + "/" + Format.cleanMarkerName) }
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(reopened.recoveryReport.cleanShutdown == clean)
        #expect(reopened.recoveryReport.epochCheckpoint == outcome, "\(damage), clean \(clean)")
        #expect(reopened.recoveryReport.epochCheckpointReason != nil)
        #expect(reopened.epochHistory == expected)
        #expect(checkpointFile(dir.logPath) == expected, "rewritten")
        try reopened.close()
        let again = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(again.recoveryReport.epochCheckpoint == .matched)
        try again.close()
    }

    /// A crash at every disk change of an append that starts a new epoch: reopening gives a
    /// history equal to the batches, whether or not the batch made it.
    @Test(arguments: [Durability.fsync, .os, .buffered])
    func aCrashAtAnyStepOfAnEpochChangeLeavesAHistoryMatchingTheBatches(durability: Durability) throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let setup = try SegmentLog.open(directory: dir.logPath, options: options)
            try appendBatches(setup, epochs: [1, 1, 1])
            try setup.close()
            let fs = ScriptedFileSystem()
            var scripted = options
            scripted.fileSystem = fs
            var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: scripted)
            fs.crash(beforeDiskChange: step)
            var completed = (try? log!.append((0..<10).map { makeRecord($0) }, epoch: 2, durability: durability)) != nil
            if durability == .buffered { completed = completed && (try? log!.flush()) != nil }
            completed = completed && !fs.crashed
            log = nil
            _ = log
            let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
            let batches = try epochsOfBatches(reopened)
            #expect(reopened.epochHistory == batches, "crash before disk change \(step)")
            #expect(reopened.nextOffset == 30 || reopened.nextOffset == 40)
            if completed { #expect(batches == history([(1, 0), (2, 30)])) }
            // The log goes on in a third epoch, and a clean reopen trusts what it wrote.
            try reopened.append(makeRecord(5), epoch: 3)
            try reopened.close()
            let again = try SegmentLog.open(directory: dir.logPath, options: options)
            #expect(again.recoveryReport.epochCheckpoint == .matched)
            #expect(again.epochHistory == (try epochsOfBatches(again)))
            try again.close()
            if completed { break }
            step += 1
            try #require(step < 50, "the append never completed")
        }
    }

    /// A crash at every step of a truncate that removes whole epochs.
    @Test func aCrashAtAnyStepOfTruncateLeavesAHistoryMatchingTheBatches() throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let setup = try SegmentLog.open(directory: dir.logPath, options: options)
            try appendBatches(setup, epochs: [1, 1, 2, 2, 3, 3, 4, 4])
            try setup.close()
            let fs = ScriptedFileSystem()
            var scripted = options
            scripted.fileSystem = fs
            var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: scripted)
            fs.crash(beforeDiskChange: step)
            let completed = (try? log!.truncate(after: 24)) != nil && !fs.crashed
            log = nil
            _ = log
            let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
            #expect(reopened.epochHistory == (try epochsOfBatches(reopened)), "crash before disk change \(step)")
            #expect(reopened.nextOffset >= 25)
            if completed { #expect(reopened.epochHistory == history([(1, 0), (2, 20)])) }
            // Back down to epoch 2 after the cut, then on.
            try reopened.append(makeRecord(5), epoch: reopened.lastEpoch)
            #expect(reopened.epochHistory == (try epochsOfBatches(reopened)))
            try reopened.close()
            if completed { break }
            step += 1
            try #require(step < 100, "truncate never completed")
        }
    }

    /// A failed batch write after the checkpoint named its epoch: the next append in the old
    /// epoch at the same offset rewrites the file first, so a crash never leaves it naming
    /// an epoch the batches do not hold.
    @Test func aFailedWriteAfterAnEpochChangeDoesNotLeaveTheFileWrong() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = ScriptedFileSystem()
        var scripted = options
        scripted.fileSystem = fs
        var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: scripted)
        try appendBatches(log!, epochs: [1, 1])
        fs.add(.write, pathSuffix: ".log", .fail(errno: ENOSPC))
        #expect(throws: LogError.self) { try log!.append(makeRecord(1), epoch: 2, durability: .os) }
        #expect(checkpointFile(dir.logPath) == history([(1, 0), (2, 20)]), "written before the batch")
        #expect(log!.epochHistory == history([(1, 0)]))
        try log!.append(makeRecord(2), epoch: 1, durability: .fsync)
        #expect(checkpointFile(dir.logPath) == history([(1, 0)]), "rewritten before the batch at 20")
        log = nil  // crash
        _ = log
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(reopened.epochHistory == history([(1, 0)]))
        #expect(reopened.recoveryReport.epochCheckpoint == .matched)
        try reopened.close()
    }
}
