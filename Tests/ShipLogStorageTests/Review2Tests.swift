import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// Regression tests from the second adversarial review (issue 8): defects in the async
/// append API and the record-level consumer, each failing before its fix.
@Suite(.serialized) struct Review2Tests {
    /// A2-1: an async append that has to roll the segment runs `roll` on its task's thread,
    /// and `roll` fdatasyncs the sealed segment (under the log's mutex). So an async append
    /// does hold a cooperative-pool thread across an fdatasync, once per segment.
    @Test func anAsyncAppendThatRollsDoesNotFdatasyncOnItsTaskThread() throws {
        let executor = ThreadPoolExecutor(threads: 2)
        defer { executor.shutdown() }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 4096, compression: .none))
        let big: @Sendable (UInt8) -> [UInt8] = { [UInt8](repeating: $0, count: 1500) }
        try log.append(big(0), durability: .os)
        try log.append(big(1), durability: .os)  // the next 1500 bytes do not fit: a roll
        #expect(segmentFiles(dir.logPath).count == 1)
        let gate = Gate()
        fs.add(.sync, pathSuffix: ".log", .hold(gate))
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            _ = try? await log.append(big(2), durability: .os)
            done.signal()
        }
        #expect(gate.waitForArrival())
        #expect(!gate.arrivedInTask, "the sealing fdatasync of a roll runs on the async appender's task thread")
        gate.release()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(segmentFiles(dir.logPath).count == 2)
        try log.close()
    }

    /// A2-2: a consumer that needs `.buffered` records calls the blocking `flush()` from
    /// `BatchCursor.next` → `locate` (inside `LogTail.next(isolation:)`), i.e. it blocks a
    /// pool thread on a semaphore until its exclusive ticket reaches the head of the write
    /// queue. If an async append is queued ahead of it, that append needs a pool thread to
    /// run: with two consumers on a two-thread pool (the cooperative pool on this machine)
    /// nothing can run and everything hangs.
    @Test func consumersOfBufferedRecordsDoNotDeadlockAsyncAppenders() throws {
        let executor = ThreadPoolExecutor(threads: 2)
        defer { executor.shutdown() }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        try log.append(makeRecord(0), durability: .buffered)  // offset 0, in the process buffer
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        let leader = Worker { try log.append(makeRecord(1), durability: .os) }  // a thread the caller owns
        #expect(gate.waitForArrival())
        let appended = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {  // an async appender queued behind the busy writer
            _ = try? await log.append(makeRecord(2), durability: .buffered)
            appended.signal()
        }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 1 } })
        let consumed = DispatchSemaphore(value: 0)
        for _ in 0..<2 {
            Task(executorPreference: executor) {
                for try await _ in log.records(from: .earliest) { break }
                consumed.signal()
            }
        }
        // Each consumer's flush() is queued behind the async append, blocking a pool thread.
        #expect(eventually(seconds: 5) { log.state.withLock { $0.writeQueue.count == 3 } })
        gate.release()
        _ = leader.join()
        #expect(appended.wait(timeout: .now() + 5) == .success, "the async append never ran: both pool threads block in a consumer's flush()")
        #expect(consumed.wait(timeout: .now() + 1) == .success && consumed.wait(timeout: .now() + 1) == .success,
                "the consumers hang")
    }

    /// A2-3: `records(from:)` decodes a whole batch into `pending` and keeps handing it out
    /// after a truncate cut inside that batch, past records it had not yet delivered: the
    /// consumer receives records that no longer exist (offsets the log will reuse), and only
    /// then `truncated`, although the truncate removed nothing it had delivered (the
    /// documented condition). The expected outcome: 3, 4, then the new record at 5.
    @Test func aRecordConsumerNeverDeliversRecordsATruncateRemovedBeforeItReachedThem() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        try await log.append((0..<10).map { makeRecord($0) }, durability: .os)  // one batch, 0..<10
        var iterator = log.records(from: .offset(0)).makeAsyncIterator()
        for expected in 0..<3 {
            let record = try await iterator.next()
            #expect(record?.offset == UInt64(expected))
        }
        try await log.truncate(after: 4)  // keeps 0...4; delivered so far: 0...2
        let replacement = Array("after the truncate".utf8)
        let at = try await log.append(replacement, durability: .os)
        #expect(at == 5)
        var delivered: [(UInt64, Bool)] = []
        var failure: (any Error)?
        do {
            for _ in 0..<3 {
                guard let record = try await iterator.next() else { break }
                delivered.append((record.offset, record.bytes == replacement))
            }
        } catch { failure = error }
        #expect(failure == nil, "\(String(describing: failure))")
        #expect(delivered.map(\.0) == [3, 4, 5])
        #expect(delivered.last?.1 == true, "offset 5 delivered with the bytes the truncate removed: \(delivered)")
        try await log.close()
    }
}
