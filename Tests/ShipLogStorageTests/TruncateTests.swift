import Foundation
import Testing
@testable import ShipLogStorage

/// `truncate(after:)` under crashes at every step, failures at every step, and concurrent
/// readers (findings F2, F3, F7 and F10 of the storage review).
@Suite struct TruncateTests {
    /// Ten fsynced batches of ten records in segments of `segmentBytes`.
    private func tenBatches(_ path: String, fs: any FileSystem, segmentBytes: Int) throws -> [[UInt8]] {
        var options = smallOptions(segmentBytes: segmentBytes)
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: path, options: options)
        var records: [[UInt8]] = []
        for b in 0..<10 {
            let batch = (0..<10).map { makeRecord(b * 10 + $0) }
            try log.append(batch, durability: .fsync)
            records += batch
        }
        try log.close()
        return records
    }

    /// Every (crash point, cut) pair: a truncate killed before its k-th disk change leaves
    /// the old log or the truncated one, or between them, never less than the kept records.
    @Test(arguments: [(54, 1 << 20), (54, 1 << 10), (59, 1 << 10), (20, 1 << 10), (0, 1 << 10)])
    func aCrashAtAnyStepOfTruncateKeepsTheKeptRecords(offset: UInt64, segmentBytes: Int) throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let original = try tenBatches(dir.logPath, fs: PosixFileSystem(), segmentBytes: segmentBytes)
            let fs = ScriptedFileSystem()
            var options = smallOptions(segmentBytes: segmentBytes)
            options.fileSystem = fs
            var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: options)
            fs.crash(beforeDiskChange: step)
            let completed = (try? log!.truncate(after: offset)) != nil && !fs.crashed
            log = nil  // the process is gone: nothing more reaches the disk
            _ = log
            let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: segmentBytes))
            let records = try allRecords(reopened)
            let kept = Int(offset) + 1
            #expect(records.count >= kept, "crash before disk change \(step) of truncate(after: \(offset)) lost kept records")
            #expect(records == Array(original.prefix(records.count)), "crash before disk change \(step): not a prefix of the old log")
            if completed { #expect(records.count == kept) }
            // The log goes on from wherever it ended.
            let next = try reopened.append(makeRecord(424_242), durability: .fsync)
            #expect(next == UInt64(records.count))
            try reopened.close()
            if completed { break }
            step += 1
            try #require(step < 200, "truncate never completed")
        }
    }

    /// A failure at any disk change inside truncate: afterwards the log either works (the
    /// failure came before any change) or refuses writes (`failed`); either way what it
    /// reads equals what a reopen finds, and it never accepts an append it would lose.
    @Test(arguments: [Int32(EIO), ENOSPC])
    func aFailureAtAnyStepOfTruncateLeavesMemoryEqualToDisk(errno code: Int32) throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let original = try tenBatches(dir.logPath, fs: PosixFileSystem(), segmentBytes: 1 << 10)
            let fs = ScriptedFileSystem()
            var options = smallOptions(segmentBytes: 1 << 10)
            options.fileSystem = fs
            var log: SegmentLog! = try SegmentLog.open(directory: dir.logPath, options: options)
            fs.fail(diskChange: step, errno: code)
            let outcome = Result { try log.truncate(after: 54) }
            let fired = fs.failedDiskChange
            fs.clearRules()
            let inMemory = try allRecords(log)
            let append = Result { try log.append(makeRecord(777), durability: .fsync) }
            let afterAppend = try allRecords(log)
            #expect(inMemory == Array(original.prefix(inMemory.count)), "step \(step): not a prefix of the old log")
            #expect(inMemory.count >= 55)
            if case .failure = append {
                #expect(afterAppend == inMemory)
            } else {
                #expect(afterAppend == inMemory + [makeRecord(777)])
            }
            // Dropped without close, as a crash would leave it: a reopen finds the same records.
            log = nil
            let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 1 << 10))
            #expect(try allRecords(reopened) == afterAppend, "step \(step): memory and disk disagree after \(outcome)")
            try reopened.close()
            if case .success = outcome, !fired { break }
            step += 1
            try #require(step < 200, "truncate never completed")
        }
    }

    /// F7: a cursor that read past the cut ends with `truncated` naming the new end, never
    /// delivering the new records as if they followed the old ones.
    @Test func aCursorPastTheCutThrowsTruncated() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        for b in 0..<10 { try log.append((0..<10).map { makeRecord(b * 10 + $0) }) }
        var cursor = log.batches(from: 0)
        for _ in 0..<6 { _ = try cursor.next() }  // read 0..<60
        try log.truncate(after: 49)
        for b in 5..<10 { try log.append((0..<10).map { makeRecord(10_000 + b * 10 + $0) }) }
        #expect(throws: LogError.truncated(readerOffset: 60, newNextOffset: 50)) { _ = try cursor.next() }

        // A cursor that had read only the kept records goes on into the new ones.
        var behind = log.batches(from: 0)
        for _ in 0..<5 { _ = try behind.next() }
        try log.truncate(after: 79)
        let next = try #require(try behind.next())
        #expect(try next.decode().map { Array($0.bytes) } == (0..<10).map { makeRecord(10_050 + $0) })
        try log.close()
    }

    /// F7: a tail across `truncate(after: 49)` throws `truncated` instead of delivering the old
    /// 50…99 and then skipping to the new 100….
    @Test func aTailAcrossATruncateThrowsTruncated() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        for b in 0..<10 { try await log.append((0..<10).map { makeRecord(b * 10 + $0) }) }
        var tail = log.tail(from: 0).makeAsyncIterator()
        var delivered: UInt64 = 0
        while delivered < 100, let batch = try await tail.next() { delivered = batch.header.nextOffset }
        try await log.truncate(after: 49)
        for b in 5..<15 { try await log.append((0..<10).map { makeRecord(20_000 + b * 10 + $0) }) }
        await #expect(throws: LogError.truncated(readerOffset: 100, newNextOffset: 50)) { _ = try await tail.next() }
        try await log.close()
    }

    /// F7: range reads racing truncations and re-appends see one history or the other:
    /// never a checksum or "zeroes" error, and never old and new records mixed.
    @Test func rangeReadsDuringTruncationsSeeOneHistory() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(segmentBytes: 8 << 10)
        options.durability = .os
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        // Record n of generation g is "g:n": a read is one history when all its records share g.
        @Sendable func record(_ generation: Int, _ n: Int) -> [UInt8] { Array("\(generation):\(n)".utf8) + [UInt8](repeating: 7, count: n % 50) }
        for b in 0..<20 { try log.append((0..<10).map { record(0, b * 10 + $0) }) }
        let writer = Worker { () -> Int in
            for generation in 1...150 {
                try log.truncate(after: 49)
                for b in 5..<20 { try log.append((0..<10).map { record(generation, b * 10 + $0) }) }
            }
            return 150
        }
        var reads = 0
        while !writer.isFinished, reads < 100_000 {
            let records: [LogRecord]
            do {
                records = try log.records(in: 40..<200)
            } catch LogError.truncated(_, let newNextOffset) {
                // A read that a truncation overtook (a loaded machine can pause it that long)
                // says so and where to resume, instead of mixing the histories: also fine.
                #expect(newNextOffset == 50)
                reads += 1
                continue
            }
            let generations = Set(records.filter { $0.offset >= 50 }.map { String(decoding: $0.bytes, as: UTF8.self).split(separator: ":")[0] })
            #expect(generations.count <= 1, "a read mixed histories: \(generations)")
            #expect(records.map(\.offset) == Array(40..<(40 + UInt64(records.count))), "offsets must be dense")
            #expect(records.filter { $0.offset < 50 }.allSatisfy { String(decoding: $0.bytes, as: UTF8.self).hasPrefix("0:\($0.offset)") })
            reads += 1
        }
        #expect(try writer.join(seconds: 60)?.get() == 150)
        try log.close()
    }

    /// F10: no public input traps: truncating at or past the end is a no-op.
    @Test func truncateAtOrPastTheEndChangesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        try log.truncate(after: .max)  // empty log
        try log.append((0..<5).map { makeRecord($0) })
        try log.truncate(after: .max)
        try log.truncate(after: 4)
        try log.truncate(after: 5)
        #expect(log.nextOffset == 5)
        try log.truncate(after: 3)
        #expect(log.nextOffset == 4)
        try log.close()
    }
}

