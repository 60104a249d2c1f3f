import Foundation
import Testing
@testable import ShipLogStorage

/// The direct path for `.os` appends (`SegmentLog+DirectWrite.swift`): an appender writes
/// its own batch under a barging lock, and goes through the queue whenever anything waits
/// there, so exclusive operations and `.fsync` appends are never overtaken.
@Suite struct DirectWriteTests {
    /// A close queued while a direct write is held runs once that write is published, and an
    /// `.os` append arriving meanwhile is refused as closed: it never slips in after close.
    @Test func aCloseWaitingBehindADirectWriteIsNotOvertaken() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        let writer = Worker { try log.append(makeRecord(0), durability: .os) }
        #expect(gate.waitForArrival())
        #expect(log.state.withLock { $0.writerBusy && $0.writeQueue.isEmpty }, "the direct write did not queue")
        let closer = Worker { try log.close() }
        #expect(eventually { log.state.withLock { $0.writeQueue.first?.isExclusive == true } })
        let late = Worker { try log.append(makeRecord(1), durability: .os) }
        gate.release()
        #expect(try writer.join()?.get() == 0)
        #expect(closer.join(seconds: 5) != nil, "close never returned")
        #expect(throws: LogError.closed) { try late.join()!.get() }
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(reopened.nextOffset == 1)
        #expect(try reopened.records(in: 0..<1).map { Array($0.bytes) } == [makeRecord(0)])
        try reopened.close()
    }

    /// An `.fsync` append queued behind a held direct write keeps its place: an `.os` append
    /// that arrives after it (waiting for the direct lock meanwhile) gets the next offset.
    @Test func anOsAppendNeverOvertakesAQueuedFsyncAppend() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        let writer = Worker { try log.append(makeRecord(0), durability: .os) }
        #expect(gate.waitForArrival())
        let synced = Worker { try log.append(makeRecord(1), durability: .fsync) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 1 } })
        let late = Worker { try log.append(makeRecord(2), durability: .os) }
        gate.release()
        #expect(try writer.join()?.get() == 0)
        #expect(try synced.join()?.get() == 1)
        #expect(try late.join()?.get() == 2)
        try log.close()
    }

    /// Direct `.os` appends from several threads, mixed with `.fsync` and `.buffered` appends
    /// through the queue and with rolls, give dense offsets, each holding its appender's record.
    @Test func directAndQueuedAppendsFromManyThreadsKeepOffsetsDense() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 8 << 10))
        let threads = 6, perThread = 150
        let workers = (0..<threads).map { t in
            Worker { () -> [UInt64: [UInt8]] in
                var mine: [UInt64: [UInt8]] = [:]
                for i in 0..<perThread {
                    let record = makeRecord(t * 1000 + i)
                    let durability: Durability = t == 0 ? .fsync : (t == 1 && i % 3 == 0 ? .buffered : .os)
                    mine[try log.append(record, durability: durability)] = record
                }
                return mine
            }
        }
        var all: [UInt64: [UInt8]] = [:]
        for worker in workers {
            let mine = try #require(try worker.join()?.get())
            all.merge(mine) { _, _ in Issue.record("one offset given twice"); return [] }
        }
        try log.flush()
        #expect(log.nextOffset == UInt64(threads * perThread))
        #expect(log.segmentCount > 3)
        try log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 8 << 10))
        let stored = try reopened.records(in: 0..<UInt64(threads * perThread))
        #expect(stored.count == threads * perThread)
        for record in stored { #expect(all[record.offset] == Array(record.bytes)) }
        try reopened.close()
    }
}
