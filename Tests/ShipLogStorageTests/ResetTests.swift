import Foundation
import Testing
@testable import ShipLogStorage

/// `reset(startingAt:)`: the follower's full resync (format.md §8, "Reset").
@Suite struct ResetTests {
    let options = smallOptions(segmentBytes: 2048, compression: .none)

    @Test(arguments: [UInt64(500), 0, 30, 1])
    func resetEmptiesTheLogAndRestartsItAtTheOffset(offset: UInt64) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try appendBatches(log, epochs: [1, 1, 2, 2, 2, 3, 3])
        try log.append(makeRecord(1), epoch: 3, durability: .buffered)
        #expect(log.segmentCount > 1)
        try log.reset(startingAt: offset)
        #expect(log.firstOffset == offset)
        #expect(log.nextOffset == offset)
        #expect(log.segmentCount == 1)
        #expect(log.epochHistory == EpochHistory())
        #expect(try allRecords(log).isEmpty)
        #expect(checkpointFile(dir.logPath) == EpochHistory())
        #expect(segmentFiles(dir.logPath) == [Format.segmentName(baseOffset: offset)])
        // The primary's batches go on from there, epochs and all (lower epochs too).
        try log.append([makeRecord(2), makeRecord(3)], epoch: 1, durability: .fsync)
        try log.append([makeRecord(4)], epoch: 6, durability: .os)
        #expect(log.epochHistory == history([(1, offset), (6, offset + 2)]))
        try log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(reopened.recoveryReport.epochCheckpoint == .matched)
        #expect(reopened.firstOffset == offset)
        #expect(try allRecords(reopened) == [makeRecord(2), makeRecord(3), makeRecord(4)])
        #expect(reopened.epochHistory == history([(1, offset), (6, offset + 2)]))
        try reopened.reset(startingAt: offset + 100)
        #expect(reopened.nextOffset == offset + 100)
        try reopened.close()
    }

    /// A cursor that read records, and a tail waiting for more, learn that they are gone.
    @Test func readersAndTailsSeeTruncated() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try appendBatches(log, epochs: [1, 1, 1])
        var cursor = log.batches(from: 0)
        _ = try cursor.next()
        var waiting = log.batches(from: 30)  // at the end, nothing read
        #expect(try waiting.next() == nil)
        let tail = Task {
            var iterator = log.tail(from: 30).makeAsyncIterator()
            return try await iterator.next()
        }
        try await log.reset(startingAt: 1000)
        #expect(throws: LogError.truncated(readerOffset: 10, newNextOffset: 1000)) { _ = try cursor.next() }
        #expect(throws: LogError.truncated(readerOffset: 30, newNextOffset: 1000)) { _ = try waiting.next() }
        await #expect(throws: LogError.self) { _ = try await tail.value }
        // A reader that starts after the reset reads the new log.
        try await log.append(makeRecord(9), epoch: 2)
        var fresh = log.batches(from: 1000)
        #expect(try fresh.next()?.header.firstOffset == 1000)
        try await log.close()
    }

    /// A crash before every disk change of a reset: reopening gives the old log, a prefix of
    /// it, or the empty log at the offset; the epoch history always matches the batches.
    @Test(arguments: [UInt64(1000), 0, 20])
    func aCrashAtAnyStepOfResetLeavesTheOldLogAPrefixOrTheEmptyLog(offset: UInt64) throws {
        var step = 1
        var sawPrefix = false
        var sawEmpty = false
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let setup = try SegmentLog.open(directory: dir.logPath, options: options)
            let original = try appendBatches(setup, epochs: [1, 1, 2, 2, 3, 3, 4])
            try setup.close()
            let fs = ScriptedFileSystem()
            var scripted = options
            scripted.fileSystem = fs
            var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: scripted)
            fs.crash(beforeDiskChange: step)
            let completed = (try? log!.reset(startingAt: offset)) != nil && !fs.crashed
            log = nil
            _ = log
            let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
            let records = try allRecords(reopened)
            let isEmptyAtOffset = records.isEmpty && reopened.firstOffset == offset
            let isPrefix = !records.isEmpty && reopened.firstOffset == 0 && records == Array(original.prefix(records.count))
            #expect(isEmptyAtOffset || isPrefix, "crash before disk change \(step): \(records.count) records from \(reopened.firstOffset)")
            #expect(reopened.epochHistory == (try epochsOfBatches(reopened)), "crash before disk change \(step)")
            if completed { #expect(isEmptyAtOffset) }
            sawPrefix = sawPrefix || (isPrefix && records.count < original.count)
            sawEmpty = sawEmpty || (isEmptyAtOffset && !completed)
            // Whatever it is, it takes the primary's batches from its end.
            try reopened.append(makeRecord(7), epoch: 5, durability: .fsync)
            #expect(reopened.epochHistory == (try epochsOfBatches(reopened)))
            try reopened.close()
            if completed { break }
            step += 1
            try #require(step < 100, "reset never completed")
        }
        #expect(sawPrefix, "some crash point falls between segment removals")
        #expect(sawEmpty, "some crash point falls after the last removal, before the reset finished")
    }

    /// A failure at any disk change of a reset: the log works (nothing changed yet) or refuses
    /// writes, and what it reads equals what a reopen finds.
    @Test func aFailureAtAnyStepOfResetLeavesMemoryEqualToDisk() throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let setup = try SegmentLog.open(directory: dir.logPath, options: options)
            try appendBatches(setup, epochs: [1, 2, 2, 3, 3])
            try setup.close()
            let (log, fs) = try openScriptedLog(dir, options)
            fs.fail(diskChange: step, errno: EIO)
            let outcome = Result { try log.reset(startingAt: 300) }
            let fired = fs.failedDiskChange
            fs.clearRules()
            // Whether or not it took this append, the log in memory is what a reopen finds.
            let appended = Result { try log.append(makeRecord(1), epoch: 4, durability: .fsync) }
            if case .failure = outcome, case .success = appended, log.nextOffset != 51 {
                Issue.record("step \(step): a reset that failed after changing files left the log taking appends")
            }
            let inMemory = (try allRecords(log), log.firstOffset, log.nextOffset, log.epochHistory)
            _ = try? log.close()
            let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
            #expect(try allRecords(reopened) == inMemory.0, "step \(step)")
            #expect(reopened.firstOffset == inMemory.1 && reopened.nextOffset == inMemory.2, "step \(step)")
            #expect(reopened.epochHistory == inMemory.3, "step \(step)")
            #expect(reopened.epochHistory == (try epochsOfBatches(reopened)))
            try reopened.close()
            if !fired { break }
            step += 1
            try #require(step < 100, "reset never completed")
        }
    }
}
