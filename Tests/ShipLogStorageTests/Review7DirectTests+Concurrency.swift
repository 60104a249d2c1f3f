import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// Review 7, concurrency: direct appenders against close and maintenance, the per-thread LZ4
/// stream, and the barging lock.
extension Review7DirectTests {
    /// Direct appenders racing a close: each append either returns (and its record is there
    /// after reopening, at its offset) or throws `closed`; offsets stay dense.
    @Test func directAppendsRacingCloseAreAllKeptOrRefused() throws {
        for round in 0..<12 {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let options = smallOptions(segmentBytes: 4 << 10)
            let log = try SegmentLog.open(directory: dir.logPath, options: options)
            let started = Atomic<Int>(0)
            let workers = (0..<6).map { t in
                Worker { () -> [UInt64: [UInt8]] in
                    var mine: [UInt64: [UInt8]] = [:]
                    for i in 0..<300 {
                        let record = makeRecord(round * 100_000 + t * 1000 + i)
                        started.add(1, ordering: .relaxed)
                        do {
                            mine[try log.append(record, durability: .os)] = record
                        } catch LogError.closed {
                            break
                        }
                    }
                    return mine
                }
            }
            #expect(eventually { started.load(ordering: .relaxed) > 50 * (round % 6 + 1) })
            try log.close()
            var acked: [UInt64: [UInt8]] = [:]
            for worker in workers {
                let mine = try #require(try worker.join()?.get())
                acked.merge(mine) { _, _ in Issue.record("one offset given twice"); return [] }
            }
            let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
            #expect(reopened.recoveryReport.cleanShutdown)
            #expect(reopened.nextOffset == UInt64(acked.count), "round \(round)")
            for record in try reopened.records(in: 0..<reopened.nextOffset) {
                #expect(acked[record.offset] == Array(record.bytes), "round \(round): offset \(record.offset)")
            }
            try reopened.close()
        }
    }

    /// Direct appenders, an `.fsync` appender, a cursor reader, and truncate, retention,
    /// reset, flush and sync at once, bounded in time. Every record names its appender and
    /// sequence number, so at the end each record found must be at the offset its append
    /// returned, each acknowledged record not possibly removed by a later truncate, reset or
    /// retention must be found, and the reader must never have seen a record elsewhere.
    @Test func directAppendsUnderMaintenanceKeepEveryAcknowledgedRecord() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let options = smallOptions(segmentBytes: 4 << 10)
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        let clock = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let errors = Mutex<[String]>([])
        // (start, end, first offset removed) of every truncate, reset and retention.
        let cuts = Mutex<[(start: Int, end: Int, keepNext: UInt64)]>([])
        let writers = 4
        @Sendable func record(_ t: Int, _ s: Int) -> [UInt8] { Array("\(t):\(s):".utf8) + [UInt8](repeating: UInt8(s % 251), count: s % 90) }
        func parse(_ bytes: [UInt8]) -> (Int, Int)? {
            let parts = String(decoding: bytes.prefix(24), as: UTF8.self).split(separator: ":")
            guard parts.count >= 2, let t = Int(parts[0]), let s = Int(parts[1]) else { return nil }
            return (t, s)
        }
        // Maintenance stops two seconds before the appenders, so the last appends are checked
        // against no cut at all.
        let deadline = Date().addingTimeInterval(6), maintenanceDeadline = Date().addingTimeInterval(4)
        let appenders = (0..<writers).map { t in
            Worker { () -> [(s: Int, offset: UInt64, start: Int)] in
                var acks: [(s: Int, offset: UInt64, start: Int)] = []
                for s in 0..<200_000 where !stop.load(ordering: .relaxed) && Date() < deadline {
                    let start = clock.add(1, ordering: .sequentiallyConsistent).newValue
                    do {
                        let offset = try log.append(record(t, s), durability: t == 0 ? .fsync : .os)
                        acks.append((s, offset, start))
                    } catch {
                        errors.withLock { $0.append("append \(t):\(s): \(error)") }
                    }
                }
                return acks
            }
        }
        let seen = Mutex<[(offset: UInt64, bytes: [UInt8])]>([])
        let reader = Worker {
            var cursor = log.batches(from: 0)
            var idle = 0
            while !stop.load(ordering: .relaxed), idle < 1_000_000 {
                do {
                    guard let batch = try cursor.next() else { idle += 1; usleep(100); continue }
                    var got: [(UInt64, [UInt8])] = []
                    for r in try batch.logRecords() { got.append((r.offset, Array(r.bytes))) }
                    seen.withLock { $0 += got }
                } catch LogError.truncated(_, let newNext) {
                    cursor = log.batches(from: newNext)
                } catch LogError.offsetOutOfRange(_, let first, _) {
                    cursor = log.batches(from: first)
                } catch {
                    errors.withLock { $0.append("reader: \(error)") }
                    cursor = log.batches(from: log.firstOffset)
                }
            }
        }
        let maintainer = Worker {
            var i = 0
            while Date() < maintenanceDeadline {
                i += 1
                usleep(UInt32.random(in: 300...3000))
                do {
                    switch i % 7 {
                    case 0, 1, 2:
                        let (first, next) = log.state.withLock { ($0.firstOffset, $0.nextOffset) }
                        guard next > first + 30 else { continue }
                        let keepNext = next - UInt64.random(in: 1...25)
                        let start = clock.add(1, ordering: .sequentiallyConsistent).newValue
                        try log.truncate(after: keepNext - 1)
                        let end = clock.add(1, ordering: .sequentiallyConsistent).newValue
                        cuts.withLock { $0.append((start, end, keepNext)) }
                    case 3:
                        let start = clock.add(1, ordering: .sequentiallyConsistent).newValue
                        let next = log.nextOffset
                        try log.reset(startingAt: next + 1000)
                        let end = clock.add(1, ordering: .sequentiallyConsistent).newValue
                        cuts.withLock { $0.append((start, end, 0)) }
                    case 4: try log.sync()
                    case 5: try log.flush()
                    default: _ = try log.enforceRetention(RetentionPolicy(maxTotalBytes: 32 << 10))
                    }
                } catch { errors.withLock { $0.append("maintenance \(i): \(error)") } }
            }
        }
        #expect(maintainer.join(seconds: 60) != nil, "maintenance hung")
        var acks: [[(s: Int, offset: UInt64, start: Int)]] = []
        for appender in appenders { acks.append(try #require(try #require(appender.join(seconds: 60), "an appender hung").get())) }
        stop.store(true, ordering: .relaxed)
        #expect(reader.join(seconds: 60) != nil, "the reader hung")
        let (errorCount, someErrors) = errors.withLock { ($0.count, Array($0.prefix(5))) }
        #expect(errorCount == 0, "\(someErrors)")
        try log.close()

        let reopened = try SegmentLog.open(directory: dir.logPath, options: options)
        var found: [UInt64: [UInt8]] = [:]
        for r in try reopened.records(in: reopened.firstOffset..<reopened.nextOffset) { found[r.offset] = Array(r.bytes) }
        let allCuts = cuts.withLock { $0 }
        var ackedAt: [Int: [Int: UInt64]] = [:]
        var checked = 0
        for (t, list) in acks.enumerated() {
            for ack in list {
                ackedAt[t, default: [:]][ack.s] = ack.offset
                guard ack.offset >= reopened.firstOffset else { continue }  // retention or a reset
                // A cut that ended after this append started may have removed it.
                if allCuts.contains(where: { $0.end > ack.start && $0.keepNext <= ack.offset }) { continue }
                checked += 1
                #expect(found[ack.offset] == record(t, ack.s), "acknowledged \(t):\(ack.s) at \(ack.offset) lost")
            }
        }
        #expect(checked > 20, "too few appends after the last cut to check anything")
        for (offset, bytes) in found {
            let id = parse(bytes)
            #expect(id.flatMap { ackedAt[$0.0]?[$0.1] } == offset, "offset \(offset) holds a record acknowledged elsewhere")
        }
        for (offset, bytes) in seen.withLock({ $0 }) {
            let id = parse(bytes)
            #expect(id.flatMap { ackedAt[$0.0]?[$0.1] } == offset, "the reader saw offset \(offset) hold a record acknowledged elsewhere")
        }
        print("review7 stress: \(acks.map(\.count).reduce(0, +)) appends, \(allCuts.count) cuts, \(checked) checked, \(seen.withLock { $0.count }) read")
        try reopened.close()
    }

    /// The per-thread LZ4 stream: each batch must decode on its own, on any thread, whatever
    /// the same thread compressed before it (a dictionary carried over from the previous
    /// batch would make the block refer to bytes the reader never has).
    @Test func everyBatchCompressedOnAThreadDecodesOnItsOwn() throws {
        // Inputs that match each other: a stream that kept its history would use it.
        var inputs: [[[UInt8]]] = []
        for size in [16, 200, 4095, 4096, 5000, 65_536, 70_000, 300_000] {
            let base = (0..<size).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
            inputs.append([base])
            inputs.append([base, base])
            inputs.append([Array(base.reversed())])
        }
        let expected = inputs
        let worker = Worker { () -> [StoredBatch] in
            var batches: [StoredBatch] = []
            for _ in 0..<3 {
                for records in expected { batches.append(StoredBatch(encoding: records, codec: .lz4)) }
            }
            return batches
        }
        let batches = try #require(try worker.join()?.get())
        #expect(batches.contains { $0.header.codec == .lz4 })
        // Decoded here, on another thread, each with a fresh decoder.
        for (i, batch) in batches.enumerated() {
            let decoded = try batch.decode().map { Array($0.bytes) }
            #expect(decoded == expected[i % expected.count], "batch \(i)")
        }
        // A block that does not fit its destination leaves the stream usable for the next.
        let incompressible = (0..<10_000).map { UInt8(truncatingIfNeeded: ($0 &* 7919) ^ ($0 >> 3) &* 31) }
        var tiny = [UInt8](repeating: 0, count: 16)
        let refused = incompressible.withUnsafeBytes { source in
            tiny.withUnsafeMutableBytes { LZ4Block.compress(source, into: $0) }
        }
        #expect(refused == nil)
        let after = StoredBatch(encoding: expected[0], codec: .lz4)
        #expect(try after.decode().map { Array($0.bytes) } == expected[0])
    }

    /// Two logs appending on one thread alternately share that thread's LZ4 stream; each
    /// log's batches read back intact after reopening.
    @Test func twoLogsOnOneThreadKeepTheirBatchesApart() throws {
        let dirs = (TemporaryDirectory(), TemporaryDirectory())
        defer { dirs.0.remove(); dirs.1.remove() }
        let a = try SegmentLog.open(directory: dirs.0.logPath, options: smallOptions())
        let b = try SegmentLog.open(directory: dirs.1.logPath, options: smallOptions())
        var recordsA: [[UInt8]] = [], recordsB: [[UInt8]] = []
        for i in 0..<200 {
            let r = makeRecord(i) + makeRecord(i + 1) + makeRecord(i)
            recordsA.append(r)
            recordsB.append(r.reversed())
            try a.append([r], durability: .os)
            try b.append([Array(r.reversed())], durability: .os)
        }
        try a.close()
        try b.close()
        let ra = try SegmentLog.open(directory: dirs.0.logPath, options: smallOptions())
        let rb = try SegmentLog.open(directory: dirs.1.logPath, options: smallOptions())
        #expect(try allRecords(ra) == recordsA)
        #expect(try allRecords(rb) == recordsB)
        try ra.close()
        try rb.close()
    }

    /// The barging lock excludes: increments made under it by many threads are all counted,
    /// and every waiter gets the lock (none is left asleep) within a bound.
    @Test func theBargingLockExcludesAndWakesEveryWaiter() throws {
        let lock = BargingLock()
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        counter.initialize(to: 0)
        defer { counter.deallocate() }
        nonisolated(unsafe) let shared = counter
        let threads = 8, iterations = 20_000
        let workers = (0..<threads).map { _ in
            Worker {
                for _ in 0..<iterations { lock.withLock { shared.pointee += 1 } }
            }
        }
        for worker in workers { #expect(worker.join(seconds: 60) != nil, "a waiter never got the lock") }
        #expect(counter.pointee == threads * iterations)
    }
}
