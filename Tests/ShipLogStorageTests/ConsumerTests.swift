import Foundation
import ShipLog
import Testing
@testable import ShipLogStorage

/// The record-level consumer and the conveniences around it (issue 8, section 2).
@Suite struct ConsumerTests {
    /// Appends batches of ten records: record n is makeRecord(n).
    private func tenBatches(_ log: SegmentLog, from: Int = 0, count: Int = 10) throws {
        for b in 0..<count { try log.append((0..<10).map { makeRecord(from + b * 10 + $0) }, durability: .os) }
    }

    private func take(_ n: Int, from records: LogRecords) async throws -> [LogRecord] {
        var taken: [LogRecord] = []
        for try await record in records {
            taken.append(record)
            if taken.count == n { break }
        }
        return taken
    }

    @Test func aConsumerResumingMidBatchGetsExactlyTheRecordsFromItsOffset() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        try tenBatches(log)
        let reading = Task { try await take(100, from: log.records(from: .offset(25))) }
        try tenBatches(log, from: 100, count: 3)
        let records = try await reading.value
        #expect(records.map(\.offset) == Array(25..<125))
        #expect(records.map(\.bytes) == (25..<125).map { makeRecord($0) })
        #expect(records.allSatisfy { $0.timestampMs > 0 && $0.epoch == 0 })
        try await log.close()
    }

    @Test func earliestAndLatestAndOffsetsOutsideTheLog() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions()
        options.initialOffset = 6000
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try tenBatches(log)
        await #expect(throws: LogError.offsetOutOfRange(requested: 0, firstOffset: 6000, nextOffset: 6100)) {
            _ = try await take(1, from: log.records(from: .offset(0)))
        }
        await #expect(throws: LogError.offsetOutOfRange(requested: 7000, firstOffset: 6000, nextOffset: 6100)) {
            _ = try await take(1, from: log.records(from: .offset(7000)))
        }
        #expect(try await take(1, from: log.records(from: .earliest)).first?.offset == 6000)
        let latest = log.records(from: .latest)
        try await log.append(makeRecord(1), durability: .os)
        #expect(try await take(1, from: latest).map(\.offset) == [6100])
        try await log.close()
    }

    @Test func aConsumerWhosePositionIsRetainedAwayOrTruncatedEndsWithATypedError() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 2 << 10))
        try tenBatches(log, count: 40)
        // Truncated: records it already decoded may still come, then the typed error.
        let outcome = await withDeadline { () -> [UInt64] in
            var iterator = log.records(from: .offset(395)).makeAsyncIterator()
            var offsets = [try await iterator.next()?.offset ?? 0]
            try await log.truncate(after: 390)
            while let record = try await iterator.next() { offsets.append(record.offset) }
            return offsets
        }
        #expect(throws: LogError.truncated(readerOffset: 396, newNextOffset: 391)) { try outcome.get() }

        // Retained away: a reader still in the first segment ends with offsetOutOfRange once it
        // needs a segment retention deleted.
        let behindOutcome = await withDeadline { () -> Int in
            var behind = log.records(from: .earliest).makeAsyncIterator()
            guard try await behind.next()?.offset == 0 else { return -1 }
            try await log.enforceRetention(RetentionPolicy(maxTotalBytes: 1))
            var count = 0
            while try await behind.next() != nil { count += 1 }
            return count
        }
        let first = log.firstOffset
        #expect(log.segmentCount == 1 && first > 200)
        #expect {
            try behindOutcome.get()
        } throws: { error in
            guard case LogError.offsetOutOfRange(_, let firstOffset, _) = error else { return false }
            return firstOffset == first
        }
        try await log.close()
    }

    struct Event: Codable, Equatable {
        var user: String
        var amount: Int
    }

    @Test func stringsDataAndCodableValuesRoundTrip() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(log.recoveryReport.created && !log.recoveryReport.cleanShutdown)
        let a = try await log.append("héllo")
        let b = try await log.append(Data([0xff, 0x00]), durability: .fsync)
        let c = try await log.append(json: Event(user: "ana", amount: 3))
        #expect(try log.record(at: a).string == "héllo")
        #expect(try log.record(at: b).data == Data([0xff, 0x00]))
        #expect(try log.record(at: b).string == nil)
        #expect(try log.record(at: c).decode(Event.self) == Event(user: "ana", amount: 3))
        try await log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(!reopened.recoveryReport.created && reopened.recoveryReport.cleanShutdown)
        try await reopened.close()
    }

    @Test func errorsDescribeThemselvesThroughLocalizedDescription() {
        let error: any Error = LogError.offsetOutOfRange(requested: 3, firstOffset: 5, nextOffset: 9)
        #expect(error.localizedDescription == "offset 3 is outside the log [5, 9)")
    }
}

/// Runs `body`, giving up after `seconds` so that a consumer that would wait forever fails
/// the test instead of hanging it.
func withDeadline<T: Sendable>(seconds: Double = 10, _ body: @escaping @Sendable () async throws -> T) async -> Result<T, any Error> {
    await withTaskGroup(of: Result<T, any Error>?.self) { group in
        group.addTask { await Result { try await body() } }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await group.next()!
        group.cancelAll()
        return first ?? .failure(DeadlineExceeded())
    }
}

struct DeadlineExceeded: Error {}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
