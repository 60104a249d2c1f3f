import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// Regression tests from the fifteenth adversarial review (early write-back of the active
/// segment, `LogOptions.writebackBytes`), each failing before its fix.
@Suite(.serialized) struct Review15WritebackTests {
    static let every = WritebackTests.every
    static let record = WritebackTests.record

    static func options(_ fs: any FileSystem) -> LogOptions { WritebackTests.options(fs) }

    /// A log 57 KiB into its segment (the next append passes `every`) whose write-backs wait
    /// at the returned gate.
    static func logBeforeAWriteback(_ dir: TemporaryDirectory, _ fs: FaultInjectingFileSystem) throws -> (SegmentLog, Gate) {
        let log = try SegmentLog.open(directory: dir.logPath, options: options(fs))
        for _ in 0..<7 { _ = try log.append([record], epoch: 1, durability: .os) }
        let gate = Gate()
        fs.writebackGate.withLock { $0 = gate }
        return (log, gate)
    }

    /// `count` stored batches of one 8 KiB record each, epoch 1, from a primary's log.
    static func primaryBatches(_ dir: TemporaryDirectory, count: Int) throws -> [StoredBatch] {
        let primary = try SegmentLog.open(directory: dir.path + "/primary", options: smallOptions(segmentBytes: 1 << 20, compression: .none))
        for _ in 0..<count { _ = try primary.append([record], epoch: 1) }
        let batches = try primary.read(from: 0, maxBytes: .max)
        try primary.close()
        return batches
    }

    /// R15-1: `appendWithoutWaiting` is the event loop's append; its contract (and the
    /// follower's `appendOnLoop`) is one pwrite into the page cache and nothing that waits.
    /// The write group it leads started the write-back on the calling thread, and
    /// sync_file_range(SYNC_FILE_RANGE_WRITE) can block (a full request queue, page locks,
    /// the journal). Here the write-back is held: the on-loop append must still return.
    @Test func appendWithoutWaitingDoesNotStartTheWritebackOnItsThread() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = try Self.primaryBatches(dir, count: 12)
        let fs = FaultInjectingFileSystem()
        let log = try SegmentLog.open(directory: dir.logPath, options: Self.options(fs))
        try log.append(storedBatch: batches[0], durability: .os)  // rewrites the epoch checkpoint: the queue
        let gate = Gate()
        fs.writebackGate.withLock { $0 = gate }
        // About 90 KiB from byte 0 of the segment: past `every`, so a write-back is due.
        let onLoop = Worker { try log.appendWithoutWaiting(storedBatches: Array(batches[1...])) }
        #expect(gate.waitForArrival(), "the write-back was never started")
        let returned = onLoop.join(seconds: 5)
        gate.release()
        #expect(returned != nil, "appendWithoutWaiting waited for the write-back it started")
        if returned == nil { _ = onLoop.join() }
        #expect(try onLoop.join()?.get() == 1..<12)
        log.drainWriteback()  // the handed-off write-back has run
        fs.writebackGate.withLock { $0 = nil }
        try log.close()
    }

    /// R15-2: an async append leads write groups on its task; the write-back it started there
    /// held a cooperative-pool thread on the disk's queue, which the async path promises not
    /// to do ("no task thread waits on the disk").
    @Test func anAsyncAppendDoesNotStartTheWritebackOnItsTaskThread() throws {
        let executor = ThreadPoolExecutor(threads: 2)
        defer { executor.shutdown() }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        let (log, gate) = try Self.logBeforeAWriteback(dir, fs)
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            _ = try? await log.append([Self.record], epoch: 1, durability: .os)  // past `every`
            done.signal()
        }
        #expect(gate.waitForArrival(), "the write-back was never started")
        #expect(!gate.arrivedInTask, "the write-back ran on the async appender's task thread")
        gate.release()
        #expect(done.wait(timeout: .now() + 10) == .success)
        log.drainWriteback()
        fs.writebackGate.withLock { $0 = nil }
        try log.close()
    }

    /// R15-4: a direct `.os` append started the write-back inside `directWriteLock`, so while
    /// sync_file_range waited to submit its megabytes every other `.os` appender waited too
    /// (the lock is what direct appenders queue on). Held here: the next append must go on.
    @Test func oneAppendersWritebackDoesNotHoldUpTheNext() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        let (log, gate) = try Self.logBeforeAWriteback(dir, fs)
        let first = Worker { try log.append([Self.record], epoch: 1, durability: .os) }  // past `every`
        #expect(gate.waitForArrival(), "the write-back was never started")
        let next = Worker { try log.append([Self.record], epoch: 1, durability: .os) }
        let nextReturned = next.join(seconds: 5)
        gate.release()
        #expect(nextReturned != nil, "an append waited for another appender's write-back")
        #expect(try first.join()?.get() == 7..<8)
        #expect(try next.join()?.get() == 8..<9)
        fs.writebackGate.withLock { $0 = nil }
        try log.close()
    }

    /// R15-3: a truncation that removes the whole active segment leaves `writebackStarted`
    /// naming that segment's base offset. The next roll creates a segment with the same
    /// base offset, and its write-back then began where the removed file's had stopped:
    /// the bytes before it were left for the sealing fdatasync, the stall this avoids.
    @Test func aSegmentRecreatedAtARemovedBaseIsWrittenBackFromItsStart() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        let log = try SegmentLog.open(directory: dir.logPath, options: Self.options(fs))
        for _ in 0..<150 { _ = try log.append([Self.record], epoch: 1, durability: .os) }  // 2 segments
        #expect(segmentFiles(dir.logPath).count == 2)
        let base = log.state.withLock { $0.active.baseOffset }
        let path = dir.logPath + "/" + segmentFiles(dir.logPath)[1]
        log.drainWriteback()  // write-backs start on the log's queue
        let started = fs.writebacks.withLock { $0.filter { $0.path == path }.map(\.range.upperBound).max() } ?? 0
        #expect(started >= Int64(Self.every), "the second segment's write-back was started")

        try log.truncate(after: base - 1)  // the second segment goes, whole
        #expect(segmentFiles(dir.logPath).count == 1)
        let before = fs.writebacks.withLock { $0.count }
        for _ in 0..<40 { _ = try log.append([Self.record], epoch: 1, durability: .os) }  // a roll, then ~330 KiB
        #expect(log.state.withLock { $0.active.baseOffset } == base)
        log.drainWriteback()
        let ranges = fs.writebacks.withLock { Array($0.dropFirst(before)) }.filter { $0.path == path }.map(\.range)
        let first = try #require(ranges.first, "the new segment's write-back was never started")
        #expect(first.lowerBound == 0, "the new segment's write-back starts at \(first.lowerBound), the removed one's")
        try log.close()
    }
}
