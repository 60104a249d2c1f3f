import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

@Suite struct LogTests {
    @Test(arguments: [CompressionCodec.none, .lz4], [Durability.buffered, .os, .fsync])
    func appendedRecordsReadBackAfterReopen(codec: CompressionCodec, durability: Durability) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(compression: codec)
        options.durability = durability
        let records = (0..<300).map { makeRecord($0) }
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: options)
            var offset: UInt64 = 0
            for chunk in stride(from: 0, to: records.count, by: 7) {
                let batch = Array(records[chunk..<min(chunk + 7, records.count)])
                let range = try log.append(batch, epoch: 1)
                #expect(range == offset..<(offset + UInt64(batch.count)))
                offset = range.upperBound
            }
            #expect(try allRecords(log) == records)
            try log.close()
        }
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(reopened.recoveryReport.cleanShutdown)
        #expect(reopened.nextOffset == 300)
        #expect(reopened.lastEpoch == 1)
        #expect(try allRecords(reopened) == records)
        #expect(try reopened.append(makeRecord(300), epoch: 1) == 300)
    }

    @Test func segmentsRollByteSizedAndSortByName() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096, compression: .none))
        for n in 0..<400 { try log.append([makeRecord(n)]) }
        let names = segmentFiles(dir.logPath)
        #expect(names.count > 5)
        #expect(names.first == "00000000000000000000.log")
        #expect(names.map { Format.baseOffset(ofSegmentName: $0)! } == names.map { Format.baseOffset(ofSegmentName: $0)! }.sorted())
        try log.close()
        for name in names {
            #expect((FileManager.default.fileSize(dir.logPath + "/" + name)) <= 4096, "\(name) exceeds segmentBytes")
        }
    }

    @Test func everyOffsetIsFoundThroughTheSparseIndexAcrossSegments() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        var expected: [[UInt8]] = []
        for n in 0..<120 {
            let batch = (0..<(n % 5 + 1)).map { makeRecord(expected.count + $0) }
            try log.append(batch)
            expected += batch
        }
        try log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        #expect(reopened.segmentCount > 3)
        for offset in 0..<expected.count {
            #expect(try reopened.record(at: UInt64(offset)).bytes == expected[offset], "offset \(offset)")
        }
        #expect(throws: LogError.offsetOutOfRange(requested: UInt64(expected.count), firstOffset: 0, nextOffset: UInt64(expected.count))) {
            try reopened.record(at: UInt64(expected.count)).bytes
        }
        #expect(try reopened.records(in: 10..<25).map { Array($0.bytes) } == Array(expected[10..<25]))
    }

    @Test func missingOrDamagedIndexFilesAreRebuilt() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        let expected = (0..<300).map { makeRecord($0) }
        for record in expected { try log.append(record) }
        try log.close()
        let indexes = try FileManager.default.contentsOfDirectory(atPath: dir.logPath).filter { $0.hasSuffix(".index") }.sorted()
        #expect(indexes.count >= 2)
        try FileManager.default.removeItem(atPath: dir.logPath + "/" + indexes[0])
        writeFileBytes(dir.logPath + "/" + indexes[1], [1, 2, 3])
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        for offset in 0..<expected.count { #expect(try reopened.record(at: UInt64(offset)).bytes == expected[offset]) }
        #expect(FileManager.default.fileExists(atPath: dir.logPath + "/" + indexes[0]), "rebuilt index is written back")
    }

    @Test func concurrentAppendsGetDenseUniqueOffsets() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(segmentBytes: 64 << 10)
        options.durability = .fsync
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        let writers = 8
        let perWriter = 40
        let ranges = try await withThrowingTaskGroup(of: [Range<UInt64>].self) { group in
            for w in 0..<writers {
                group.addTask {
                    try await withCheckedThrowingContinuation { continuation in
                        Thread.detachNewThread {
                            continuation.resume(with: Result {
                                try (0..<perWriter).map { i in try log.append([makeRecord(w * 1000 + i), makeRecord(i)]) }
                            })
                        }
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let offsets = ranges.flatMap { Array($0) }.sorted()
        #expect(offsets == Array(0..<UInt64(writers * perWriter * 2)))
        #expect(log.durableNextOffset == UInt64(writers * perWriter * 2))
        #expect(try allRecords(log).count == writers * perWriter * 2)
    }

    @Test func truncateDropsEverythingAfterAnOffsetDurably() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let options = smallOptions(segmentBytes: 4096)
        var expected: [[UInt8]] = []
        do {
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in 0..<100 {
            let batch = (0..<3).map { makeRecord(n * 3 + $0) }
            try log.append(batch, epoch: UInt64(n / 10))
            expected += batch
        }
        let segmentsBefore = log.segmentCount
        try log.truncate(after: 150)  // inside the batch 150..<153
        #expect(log.nextOffset == 151)
        #expect(log.segmentCount < segmentsBefore)
        #expect(try allRecords(log) == Array(expected[0...150]))
        try log.truncate(after: 92)  // the end of a batch
        #expect(try allRecords(log) == Array(expected[0...92]))
        #expect(try log.append(makeRecord(999), epoch: 9) == 93)
        }
        // Reopened without a clean close: the truncation was durable by itself.
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(try allRecords(reopened) == Array(expected[0...92]) + [makeRecord(999)])
    }

    @Test func retentionDeletesWholeOldSegmentsBySizeAndAge() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let now = ManagedClock(start: 1_000_000)
        var options = smallOptions(segmentBytes: 4096)
        options.clock = { now.read() }
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in 0..<200 {
            try log.append(makeRecord(n))
            now.advance(by: 1000)
        }
        let before = log.segmentCount
        let removed = try log.enforceRetention(RetentionPolicy(maxTotalBytes: log.totalBytes - 5000))
        #expect(!removed.isEmpty)
        #expect(log.segmentCount == before - removed.count)
        #expect(log.firstOffset > 0)
        #expect(log.lastOffset == 199)
        #expect(try log.record(at: log.firstOffset).bytes == makeRecord(Int(log.firstOffset)))
        let firstBeforeAge = log.firstOffset
        let aged = try log.enforceRetention(RetentionPolicy(maxAge: .seconds(30)))
        #expect(!aged.isEmpty)
        #expect(log.firstOffset > firstBeforeAge)
        // Record n was appended at 1,000,000 + n s; the cutoff is 1,170,000: segments wholly
        // before record 170 go, the one holding it stays.
        #expect(log.firstOffset <= 170)
        #expect(try log.enforceRetention(RetentionPolicy(maxAge: .seconds(0))).count >= 0)
        #expect(log.segmentCount == 1, "the active segment is never deleted")
        try log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(reopened.firstOffset == log.firstOffset)
        #expect(reopened.nextOffset == 200)
    }

    @Test func tailDeliversExistingThenNewBatches() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        try await log.append([makeRecord(0), makeRecord(1)])
        let reader = Task {
            var seen: [UInt64] = []
            for try await batch in log.tail(from: 1) {
                seen.append(batch.header.firstOffset)
                if batch.header.nextOffset >= 10 { break }
            }
            return seen
        }
        try await Task.sleep(for: .milliseconds(50))
        for n in 2..<10 { try await log.append(makeRecord(n), durability: n % 2 == 0 ? Durability.buffered : .os) }
        #expect(try await reader.value == [0] + Array(2..<10))
        let closing = Task { () -> Int in
            var count = 0
            for try await _ in log.tail(from: 10) { count += 1 }
            return count
        }
        try await Task.sleep(for: .milliseconds(50))
        try await log.close()
        #expect(try await closing.value == 0, "a tail at the end finishes when the log closes")
    }

    @Test func storedBatchesAppendToAnotherLogByteForByte() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let primary = try SegmentLog.open(directory: dir.path + "/a", options: smallOptions())
        let follower = try SegmentLog.open(directory: dir.path + "/b", options: smallOptions())
        for n in 0..<20 { try primary.append([makeRecord(n), makeRecord(n + 1)], epoch: UInt64(n / 5)) }
        for batch in try primary.read(from: 0, maxBytes: .max) { try follower.append(storedBatch: batch) }
        #expect(try follower.read(from: 0, maxBytes: .max) == primary.read(from: 0, maxBytes: .max))
        let last = try primary.read(from: 39)[0]
        #expect(throws: LogError.nonContiguousBatch(expectedOffset: 40, batchOffset: 38)) { try follower.append(storedBatch: last) }
    }
}

/// A settable clock for retention tests.
final class ManagedClock: Sendable {
    private let now: Mutex<Int64>
    init(start: Int64) { now = Mutex(start) }
    func read() -> Int64 { now.withLock { $0 } }
    func advance(by ms: Int64) { now.withLock { $0 += ms } }
}

extension FileManager {
    func fileSize(_ path: String) -> Int {
        ((try? attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
    }
}
