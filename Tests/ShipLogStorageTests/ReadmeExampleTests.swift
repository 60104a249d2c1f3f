import Foundation
import ShipLog
import Synchronization
import Testing

/// The README's examples, as written there (the directory aside), so that they keep
/// compiling and doing what the README says.
@Suite struct ReadmeExampleTests {
    struct Order: Codable, Equatable {
        var id: Int
        var total: Double
    }

    @Test func theUsageExampleRuns() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = LogOptions()
        options.durability = .fsync
        let log = try SegmentLog.open(directory: dir.logPath, options: options)

        let offset = try await log.append("hello")
        try await log.append(json: Order(id: 7, total: 12.5))
        let offsets = try await log.append([Array("a".utf8), Array("b".utf8)], durability: .os)
        #expect(offsets == 2..<4)

        let record = try log.record(at: offset)
        #expect(record.string == "hello")
        #expect(try log.record(at: offset + 1).decode(Order.self) == Order(id: 7, total: 12.5))
        let range = try log.records(in: 0..<3)
        #expect(range.map(\.offset) == [0, 1, 2])
        var cursor = log.batches(from: 0)
        var batches = 0
        while let batch = try cursor.next() {
            _ = batch.bytes
            batches += 1
        }
        #expect(batches == 3)
        try await log.truncate(after: 1)
        try await log.enforceRetention(RetentionPolicy(maxTotalBytes: 10 << 30, maxAge: .seconds(86_400)))
        #expect(log.nextOffset == 2)
        try await log.close()
    }

    /// The consumer example: resuming after a saved offset inside a batch.
    @Test func theConsumerExampleResumesAfterItsSavedOffset() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: LogOptions())
        try await log.append((0..<10).map { Array("r\($0)".utf8) })
        let handled = Mutex<[String]>([])
        let saved = Mutex<UInt64?>(nil)
        func handle(_ bytes: [UInt8]) throws { handled.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
        func save(offset: UInt64) throws { saved.withLock { $0 = offset } }

        func consume(_ log: SegmentLog, savedOffset: UInt64?) async throws {
            let start: LogPosition = savedOffset.map { .offset($0 + 1) } ?? .earliest
            do {
                for try await record in log.records(from: start) {
                    try handle(record.bytes)
                    try save(offset: record.offset)
                }
            } catch LogError.offsetOutOfRange(let requested, let first, _) where requested < first {
                Issue.record("not expected here")
            } catch LogError.truncated(_, _) {
                Issue.record("not expected here")
            }
        }
        // On an executor of its own: other tests block the shared pool's two threads for long.
        let executor = ThreadPoolExecutor(threads: 1)
        defer { executor.shutdown() }
        let consumer = Task(executorPreference: executor) { try await consume(log, savedOffset: 4) }
        for _ in 0..<6000 where saved.withLock({ $0 }) != 9 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(saved.withLock { $0 } == 9)
        try await log.close()
        try await consumer.value
        #expect(handled.withLock { $0 } == (5..<10).map { "r\($0)" })
    }
}
