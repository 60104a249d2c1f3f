import Foundation
import Testing
@testable import ShipLogStorage

/// The recovery rules of format.md §8, each checked on real files.
@Suite struct RecoveryTests {
    /// Writes `count` single-record batches and abandons the handle without a clean close.
    /// Returns the last segment's path and each batch's start position in it.
    func writeUncleanLog(_ dir: TemporaryDirectory, count: Int, recovery: RecoveryMode = .tolerateCorruptTail,
                         segmentBytes: Int = 1 << 20) throws -> (String, [Int64]) {
        var options = smallOptions(segmentBytes: segmentBytes)
        options.recovery = recovery
        var positions: [Int64] = []
        var position = Int64(Format.segmentHeaderBytes)
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: options)
            for n in 0..<count {
                positions.append(position)
                try log.append(makeRecord(n))
                position += Int64(try log.read(from: UInt64(n))[0].bytes.count)
            }
        }
        return (dir.logPath + "/" + segmentFiles(dir.logPath).last!, positions + [position])
    }

    func reopen(_ dir: TemporaryDirectory, recovery: RecoveryMode = .tolerateCorruptTail, segmentBytes: Int = 1 << 20) throws -> SegmentLog {
        var options = smallOptions(segmentBytes: segmentBytes)
        options.recovery = recovery
        return try SegmentLog.open(directory: dir.logPath, options: options)
    }

    @Test func preallocatedZeroesAfterACrashAreACleanEnd() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (segment, _) = try writeUncleanLog(dir, count: 5)
        #expect(FileManager.default.fileSize(segment) == 1 << 20, "segment was preallocated")
        let log = try reopen(dir)
        #expect(!log.recoveryReport.cleanShutdown)
        #expect(log.recoveryReport.droppedBytes == 0)
        #expect(log.recoveryReport.truncatedFile == nil)
        #expect(try allRecords(log) == (0..<5).map { makeRecord($0) })
    }

    /// Writes `bytes` at `position` in place, leaving the rest of the file (and its holes and
    /// never-written preallocated space) as it is. Then drops the file's pages from the page
    /// cache: zero pages cached from reading never-written space count as data to SEEK_DATA,
    /// as they would not after the reboot that follows a real crash.
    func writeInPlace(_ path: String, _ bytes: [UInt8], at position: Int64) {
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        #expect(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(position)) } == bytes.count)
        #expect(fdatasync(fd) == 0)
        #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
    }

    /// Recovery reads only the parts of the preallocated tail that may hold data (SEEK_DATA),
    /// so it must still find an intact batch, or a stray byte, far out in otherwise
    /// never-written space: here 6 and 7 MiB into an 8 MiB segment, past the 1 MiB the
    /// scanner itself reads ahead.
    @Test func dataFarPastTheEndIsFoundAcrossNeverWrittenSpace() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let segmentBytes = 8 << 20
        let (segment, positions) = try writeUncleanLog(dir, count: 3, segmentBytes: segmentBytes)
        let original = fileBytes(segment)
        let lastBatch = Array(original[Int(positions[2])..<Int(positions[3])])
        // The last batch torn away, and an intact copy of it 6 MiB out.
        writeInPlace(segment, [UInt8](repeating: 0, count: lastBatch.count), at: positions[2])
        writeInPlace(segment, lastBatch, at: 6 << 20)
        #expect(throws: LogError.self, "intact data after the damage is corruption, not a torn tail") {
            try reopen(dir, segmentBytes: segmentBytes)
        }
        // Only a stray non-zero byte out there: a torn tail whose dropped bytes reach it.
        writeInPlace(segment, [UInt8](repeating: 0, count: lastBatch.count), at: 6 << 20)
        writeInPlace(segment, [7], at: 7 << 20)
        let log = try reopen(dir, segmentBytes: segmentBytes)
        #expect(try allRecords(log) == (0..<2).map { makeRecord($0) })
        #expect(log.recoveryReport.droppedBytes == (7 << 20) + 1 - positions[2])
    }

    @Test func truncatingTheLastBatchAtEveryByteKeepsExactlyTheValidPrefix() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (segment, positions) = try writeUncleanLog(dir, count: 4)
        let original = Array(fileBytes(segment)[0..<Int(positions[4])])
        for cut in Int(positions[3])..<Int(positions[4]) {
            writeFileBytes(segment, Array(original[0..<cut]))
            let log = try reopen(dir)
            #expect(try allRecords(log) == (0..<3).map { makeRecord($0) }, "cut at byte \(cut)")
            // Trailing zeroes are indistinguishable from preallocated space and are not counted.
            let lastNonZero = original[Int(positions[3])..<cut].lastIndex { $0 != 0 }
            #expect(log.recoveryReport.droppedBytes == lastNonZero.map { Int64($0 + 1) - positions[3] } ?? 0)
            #expect(try log.append(makeRecord(3)) == 3, "appends continue at the cut")
        }
    }

    @Test func everyFlippedBitInTheLastBatchIsATornTail() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (segment, positions) = try writeUncleanLog(dir, count: 3)
        let original = Array(fileBytes(segment)[0..<Int(positions[3])])
        for byte in Int(positions[2])..<Int(positions[3]) {
            for bit in 0..<8 {
                var damaged = original
                damaged[byte] ^= 1 << bit
                writeFileBytes(segment, damaged)
                let log = try reopen(dir)
                #expect(try allRecords(log) == (0..<2).map { makeRecord($0) }, "bit \(bit) of byte \(byte)")
                #expect(log.recoveryReport.truncatedAtPosition == positions[2])
            }
        }
    }

    @Test func everyFlippedBitInAMiddleBatchIsDetectedAndNamed() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (segment, positions) = try writeUncleanLog(dir, count: 3)
        let original = Array(fileBytes(segment)[0..<Int(positions[3])])
        for byte in Int(positions[1])..<Int(positions[2]) {
            for bit in 0..<8 {
                var damaged = original
                damaged[byte] ^= 1 << bit
                writeFileBytes(segment, damaged)
                // Default mode: intact data follows, so this is corruption, not a torn tail.
                do {
                    _ = try reopen(dir)
                    Issue.record("bit \(bit) of byte \(byte) was not detected; batches at \(positions)")
                } catch let LogError.corruption(file, position, _, _) {
                    #expect(file == segment)
                    #expect(position == positions[1])
                }
                #expect(fileBytes(segment) == damaged, "a failed open changes nothing")
                // Point-in-time keeps the prefix before the damage.
                do {
                    let log = try reopen(dir, recovery: .pointInTime)
                    #expect(try allRecords(log) == [makeRecord(0)])
                }
                writeFileBytes(segment, original)
            }
        }
    }

    @Test func absoluteConsistencyRefusesATornTail() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (segment, positions) = try writeUncleanLog(dir, count: 3)
        writeFileBytes(segment, Array(fileBytes(segment)[0..<Int(positions[3] - 5)]))
        #expect(throws: LogError.self) { try reopen(dir, recovery: .absoluteConsistency) }
        #expect(try allRecords(reopen(dir)) == (0..<2).map { makeRecord($0) })
    }

    @Test func pointInTimeDropsLaterSegmentsAfterCorruption() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
            for n in 0..<300 { try log.append(makeRecord(n)) }
            try log.close()
        }
        let names = segmentFiles(dir.logPath)
        #expect(names.count > 3)
        let victim = dir.logPath + "/" + names[1]
        var bytes = fileBytes(victim)
        bytes[Format.segmentHeaderBytes + 60] ^= 0xFF
        writeFileBytes(victim, bytes)
        var options = smallOptions(segmentBytes: 4096)
        options.recovery = .pointInTime
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(log.nextOffset == Format.baseOffset(ofSegmentName: names[1])!)
        #expect(log.recoveryReport.droppedSegments.count == names.count - 2)
        #expect(segmentFiles(dir.logPath).count == 2)
        // The default mode does not scan sealed segments at open, but a read finds the damage.
        try log.close()
    }

    @Test func corruptionInASealedSegmentIsReportedWhenRead() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
            for n in 0..<200 { try log.append(makeRecord(n)) }
            try log.close()
        }
        let victim = dir.logPath + "/" + segmentFiles(dir.logPath)[0]
        var bytes = fileBytes(victim)
        bytes[Format.segmentHeaderBytes + 60] ^= 0xFF
        writeFileBytes(victim, bytes)
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        #expect(throws: LogError.self) { try allRecords(log) }
    }

    @Test func aCrashDuringOpenStillCountsAsUnclean() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
            try log.append(makeRecord(0))
            try log.close()
        }
        #expect(FileManager.default.fileExists(atPath: dir.logPath + "/CLEAN"))
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(log.recoveryReport.cleanShutdown)
        #expect(!FileManager.default.fileExists(atPath: dir.logPath + "/CLEAN"), "the marker is removed first on open")
    }
}
