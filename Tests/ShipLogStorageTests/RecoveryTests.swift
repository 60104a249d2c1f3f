import Foundation
import Testing
@testable import ShipLogStorage

/// The recovery rules of format.md §8, each checked on real files.
@Suite struct RecoveryTests {
    /// Writes `count` single-record batches and abandons the handle without a clean close.
    /// Returns the last segment's path and each batch's start position in it.
    func writeUncleanLog(_ dir: TemporaryDirectory, count: Int, recovery: RecoveryMode = .tolerateCorruptTail) throws -> (String, [Int64]) {
        var options = smallOptions(segmentBytes: 1 << 20)
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

    func reopen(_ dir: TemporaryDirectory, recovery: RecoveryMode = .tolerateCorruptTail) throws -> SegmentLog {
        var options = smallOptions(segmentBytes: 1 << 20)
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
