import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// Review 7: an adversarial pass over the direct write path of `.os` appends
/// (`SegmentLog+DirectWrite.swift`), its barging lock and the per-thread LZ4 stream.
@Suite(.serialized) struct Review7DirectTests {
    /// A direct write carries the process buffer (`.buffered` appends) in front of its batch.
    /// When that write tears (a short write, then ENOSPC), the `.os` append fails, the
    /// buffered records stay in the log, and a crash afterwards finds exactly what memory says.
    @Test func aTornDirectWriteKeepsTheBufferedRecordsAndResurrectsNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = TornWriteFileSystem(inner: PosixFileSystem())
        var options = smallOptions(segmentBytes: 1 << 20, compression: .none)
        options.preallocateSegments = false
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        let big: (UInt8) -> [UInt8] = { [UInt8](repeating: $0, count: 1000) }
        #expect(try log.append(big(1), durability: .buffered) == 0)
        #expect(try log.append(big(2), durability: .buffered) == 1)
        // The direct write is buffered batch 0, batch 1, then its own: torn inside its own batch.
        let batch = 1000 + 4 + Format.batchHeaderBytes
        fs.tearNextWrite(afterBytes: 2 * batch + 300)
        #expect(throws: LogError.self) { try log.append(big(3), durability: .os) }
        #expect(log.nextOffset == 2)
        // The next direct write carries the buffered batches again, then its own.
        #expect(try log.append([UInt8](repeating: 4, count: 10), durability: .os) == 2)
        #expect(try allRecords(log) == [big(1), big(2), [UInt8](repeating: 4, count: 10)])
        let copy = dir.path + "/copy"
        try FileManager.default.copyItem(atPath: dir.logPath, toPath: copy)
        let reopened = try SegmentLog.open(directory: copy, options: smallOptions())
        #expect(try allRecords(reopened) == [big(1), big(2), [UInt8](repeating: 4, count: 10)])
        try reopened.close()
        try log.close()
    }

    /// A direct write that fails, then the cut that should remove what it may have left also
    /// fails: the log must refuse writes, but no fdatasync failed, so the records written
    /// before (acknowledged `.os` appends, in the kernel) are still there. Memory must keep
    /// them, as a reopen finds them: `nextOffset` must not go back past acknowledged appends.
    @Test func aFailedCutAfterAFailedDirectWriteKeepsTheWrittenRecords() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        #expect(try log.append(makeRecord(0), durability: .os) == 0)
        #expect(try log.append(makeRecord(1), durability: .os) == 1)
        #expect(try log.append(makeRecord(2), durability: .buffered) == 2)
        #expect(log.durableNextOffset == 0)
        fs.add(.write, pathSuffix: ".log", .fail(errno: ENOSPC))
        fs.add(.truncate, pathSuffix: ".log", .fail(errno: EIO))
        #expect(throws: LogError.self) { try log.append(makeRecord(3), durability: .os) }
        fs.clearRules()
        #expect(throws: LogError.self) { try log.append(makeRecord(4), durability: .os) }
        #expect(log.nextOffset == 2, "the acknowledged .os appends vanished from memory")
        #expect(try log.records(in: 0..<2).map { Array($0.bytes) } == [makeRecord(0), makeRecord(1)])
        try? log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(try allRecords(reopened) == [makeRecord(0), makeRecord(1)])
        try reopened.close()
    }

    /// The same at a roll: sealing cuts the segment to its length before its fdatasync. When
    /// the cut fails, no fdatasync has failed, and the direct `.os` appends before it are in
    /// the file: the log refuses writes but keeps them, as a reopen does.
    @Test func aFailedSealingCutKeepsTheWrittenRecords() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 1 << 10, compression: .none))
        var records: [[UInt8]] = []
        while log.totalBytes + 300 < 1 << 10 {
            let record = [UInt8](repeating: UInt8(records.count), count: 200)
            #expect(try log.append(record, durability: .os) == UInt64(records.count))
            records.append(record)
        }
        #expect(log.durableNextOffset == 0 && log.segmentCount == 1)
        fs.add(.truncate, pathSuffix: ".log", .fail(errno: EIO))
        #expect(throws: LogError.self) { try log.append([UInt8](repeating: 99, count: 200), durability: .os) }
        fs.clearRules()
        #expect(log.nextOffset == UInt64(records.count), "the acknowledged .os appends vanished from memory")
        #expect(try allRecords(log) == records)
        log.releaseDirectoryLock()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 1 << 10, compression: .none))
        #expect(try allRecords(reopened) == records)
        try reopened.close()
    }

    /// kill -9 before every disk change of a run of direct `.os` appends with rolls, a
    /// truncate and retention: every acknowledged record not removed by a finished truncate
    /// or retention is there after reopening, byte for byte, and the log goes on.
    @Test func aCrashAtAnyStepOfDirectAppendsKeepsEveryAcknowledgedRecord() throws {
        var step = 1
        while true {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let fs = ScriptedFileSystem()
            var options = smallOptions(segmentBytes: 1 << 10)
            options.fileSystem = fs
            var log: SegmentLog? = try SegmentLog.open(directory: dir.logPath, options: options)
            fs.crash(beforeDiskChange: step)
            var acked: [UInt64: [UInt8]] = [:]
            var inFlight: (offset: UInt64?, cut: UInt64?) = (nil, nil)
            var finished = true
            for i in 0..<40 {
                do {
                    if i == 20 {
                        inFlight = (nil, 12)
                        try log!.truncate(after: 11)
                        acked = acked.filter { $0.key < 12 }
                    } else if i == 30 {
                        inFlight = (nil, nil)
                        _ = try log!.enforceRetention(RetentionPolicy(maxTotalBytes: 2 << 10))
                    } else {
                        let record = makeRecord(i)
                        inFlight = (log!.nextOffset, nil)
                        acked[try log!.append(record, durability: .os)] = record
                    }
                    inFlight = (nil, nil)
                } catch {
                    finished = false
                    break
                }
            }
            finished = finished && !fs.crashed
            log = nil  // the process is gone
            _ = log
            let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 1 << 10))
            var found: [UInt64: [UInt8]] = [:]
            for record in try reopened.records(in: reopened.firstOffset..<reopened.nextOffset) {
                found[record.offset] = Array(record.bytes)
            }
            for (offset, record) in acked where offset >= reopened.firstOffset {
                if let cut = inFlight.cut, offset >= cut, found[offset] == nil { continue }  // a truncate in flight
                #expect(found[offset] == record, "step \(step): acknowledged offset \(offset) lost or changed")
            }
            for (offset, record) in found where acked[offset] == nil {
                let allowed = offset == inFlight.offset || inFlight.cut.map { offset >= $0 } == true
                #expect(allowed, "step \(step): offset \(offset) holds \(record.count) bytes nobody was acknowledged for")
            }
            let next = try reopened.append(makeRecord(4242), durability: .os)
            #expect(next == reopened.nextOffset - 1)
            try reopened.close()
            if finished { break }
            step += 1
            try #require(step < 400, "the script never finished")
        }
    }

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
        #expect(checked > 100)
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
