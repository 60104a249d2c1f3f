import Foundation
import Testing
@testable import ShipLogStorage

/// The write pipeline's interleavings, scripted through a file system whose fdatasync the
/// test holds and releases (findings F1 and F5 of the storage review).
@Suite struct GroupCommitTests {
    /// F1: a truncate while a group-commit fdatasync is in flight must not let the stale sync
    /// point acknowledge a later append that nothing synced.
    @Test func aSyncPointNeverOutlivesATruncate() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 16 << 10))
        for n in 0..<300 { try log.append(makeRecord(n), durability: .os) }
        #expect(log.segmentCount > 2)

        let gate = Gate()
        fs.add(.sync, pathSuffix: ".log", .hold(gate))
        let leader = Worker { try log.append(makeRecord(999), durability: .fsync) }
        #expect(gate.waitForArrival())
        let truncate = Worker { try log.truncate(after: 20) }
        // The truncate waits its turn behind the fdatasync in flight.
        #expect(eventually { log.state.withLock { $0.writeQueue.first?.isExclusive == true } })
        #expect(!truncate.isFinished)
        gate.release()
        #expect(try leader.join()?.get() == 300)
        try truncate.join()?.get()
        #expect(log.nextOffset == 21)
        #expect(log.durableNextOffset <= log.nextOffset)

        // A later fsync append is acknowledged only after an fdatasync of its own segment.
        let before = fs.trace.count
        let range = try log.append((0..<10).map { makeRecord(5000 + $0) }, durability: .fsync)
        #expect(range == 21..<31)
        let calls = Array(fs.trace[before...])
        let write = try #require(calls.lastIndex { $0.operation == .write })
        #expect(calls[write...].contains { $0.operation == .sync && $0.path == calls[write].path })
        #expect(log.durableNextOffset == 31 && log.nextOffset == 31)
        try log.close()
    }

    /// F5: waiters handed nothing must still all return: close during eight fsync appenders
    /// blocked behind a held fdatasync wakes every one of them, durable or `closed`.
    @Test func closeWakesEveryAppenderWaitingForDurability() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        let gate = Gate()
        fs.add(.sync, pathSuffix: ".log", .hold(gate))
        let first = Worker { try log.append(makeRecord(0), durability: .fsync) }
        #expect(gate.waitForArrival())
        let others = (1..<8).map { n in Worker { try log.append(makeRecord(n), durability: .fsync) } }
        #expect(eventually { log.state.withLock { $0.durabilityWaiters.count == 8 } })
        let closer = Worker { try log.close() }
        #expect(eventually { log.state.withLock { $0.writeQueue.first?.isExclusive == true } })
        gate.release()
        try closer.join()?.get()
        var acknowledged: [UInt64] = []
        for worker in [first] + others {
            let result = try #require(worker.join(seconds: 10), "an appender hung after close")
            if let offset = try? result.get() { acknowledged.append(offset) }
        }
        #expect(acknowledged.count == 8, "all eight were written before close, so close makes them durable")
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(reopened.nextOffset == 8)
        try reopened.close()
    }

    /// F5: waiters whose records came after the running fdatasync's sync point are left
    /// over when it ends; one of them must lead the next fdatasync, with no further append
    /// or close to prompt it.
    @Test func waitersLeftOverAfterASyncLeadTheNextOne() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        let gate = Gate()
        fs.add(.sync, pathSuffix: ".log", .hold(gate))
        let first = Worker { try log.append(makeRecord(0), durability: .fsync) }
        #expect(gate.waitForArrival())
        let others = (1..<8).map { n in Worker { try log.append(makeRecord(n), durability: .fsync) } }
        #expect(eventually { log.state.withLock { $0.durabilityWaiters.count == 8 } })
        gate.release()
        #expect(try first.join()?.get() == 0)
        for worker in others { #expect(try worker.join(seconds: 10)?.get() != nil, "a waiter was left asleep") }
        #expect(log.durableNextOffset == 8)
        #expect(log.groupCommitSyncs == 2, "the seven left over share one fdatasync")
        try log.close()
    }

    /// F5, the roll variant: a roll makes the waiters' records durable while another sync is
    /// in flight; every waiter returns and the next fsync append still gets synced.
    @Test func aRollThatCoversWaitersLeavesNoneAsleep() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 4 << 10))
        let gate = Gate()
        fs.add(.sync, pathSuffix: ".log", .hold(gate))
        let first = Worker { try log.append(makeRecord(0), durability: .fsync) }
        #expect(gate.waitForArrival())
        let waiters = (1..<6).map { n in Worker { try log.append(makeRecord(n), durability: .fsync) } }
        #expect(eventually { log.state.withLock { $0.durabilityWaiters.count == 6 } })
        // Enough .os bytes to roll: the roll syncs the sealed segment, covering the waiters.
        let roller = Worker { for n in 6..<200 { try log.append(makeRecord(n), durability: .os) } }
        #expect(eventually { log.segmentCount > 1 })
        for waiter in waiters { #expect(try waiter.join(seconds: 10)?.get() != nil, "a waiter covered by the roll hung") }
        gate.release()
        #expect(try first.join()?.get() == 0)
        try roller.join()?.get()
        let last = try log.append(makeRecord(7777), durability: .fsync)
        #expect(log.durableNextOffset == last + 1)
        try log.close()
    }

    /// Eight fsync appenders and close, many rounds, with no scripting: nobody hangs, and
    /// whatever was acknowledged is there after reopening.
    @Test func closeDuringFsyncAppendersNeverHangs() throws {
        for round in 0..<20 {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
            let workers = (0..<8).map { t in
                Worker { () -> [UInt64] in
                    var offsets: [UInt64] = []
                    for n in 0..<50 {
                        guard let offset = try? log.append(makeRecord(t * 1000 + n), durability: .fsync) else { break }
                        offsets.append(offset)
                    }
                    return offsets
                }
            }
            usleep(UInt32(round % 5) * 500)
            try log.close()
            var acknowledged = 0
            for worker in workers {
                let result = try #require(worker.join(seconds: 20), "round \(round): an appender hung")
                acknowledged += try result.get().count
            }
            let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
            #expect(reopened.nextOffset >= UInt64(acknowledged))
            try reopened.close()
        }
    }
}
