import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// The async appends: same pipeline, but waiting suspends a task instead of blocking one of
/// the cooperative pool's threads (two on this machine).
@Suite struct AsyncAppendTests {
    @Test func asyncAppendsFromManyTasksAreDenseAndDurable() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        let offsets = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for t in 0..<8 {
                group.addTask {
                    var mine: [UInt64] = []
                    for n in 0..<50 {
                        let durability: Durability = [.fsync, .os, .buffered][(t + n) % 3]
                        mine.append(try await log.append(makeRecord(t * 1000 + n), durability: durability))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(offsets.sorted() == Array(0..<400))
        try await log.sync()
        #expect(log.durableNextOffset == 400)
        try await log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(try allRecords(reopened).count == 400)
        try await reopened.close()
    }

    /// With the fdatasync held, eight tasks waiting for durability hold no pool thread:
    /// another task still runs, and all eight return once the sync is released. The tasks
    /// run on a two-thread executor of the test's own, like the cooperative pool on two
    /// cores, so other tests blocking the global pool cannot starve them.
    @Test func tasksWaitingForDurabilityHoldNoThread() throws {
        let executor = ThreadPoolExecutor(threads: 2)
        defer { executor.shutdown() }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        let gate = Gate()
        fs.add(.sync, pathSuffix: ".log", .hold(gate))
        let done = DispatchSemaphore(value: 0)
        for n in 0..<8 {
            Task(executorPreference: executor) {
                _ = try await log.append(makeRecord(n), durability: .fsync)
                done.signal()
            }
        }
        #expect(gate.waitForArrival())
        #expect(!gate.arrivedInTask, "the fdatasync must not run on a task's thread")
        #expect(eventually { log.state.withLock { $0.durabilityWaiters.count == 8 } })
        let other = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            await Task.yield()
            other.signal()
        }
        #expect(other.wait(timeout: .now() + 10) == .success, "no pool thread was free while the sync was held")
        gate.release()
        for _ in 0..<8 { #expect(done.wait(timeout: .now() + 10) == .success) }
        #expect(log.durableNextOffset == 8)
        try log.close()
    }

    actor Consumer {
        var seen: [UInt64] = []
        func consume(_ log: SegmentLog, until end: UInt64) async throws {
            for try await batch in log.tail(from: 0) {
                seen.append(batch.header.firstOffset)
                if batch.header.nextOffset >= end { break }
            }
        }
    }

    /// A tail iterated on an actor (next(isolation:)) delivers everything in order.
    @Test func aTailIteratedOnAnActorDeliversInOrder() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        let consumer = Consumer()
        let reading = Task { try await consumer.consume(log, until: 100) }
        for n in 0..<100 { try await log.append(makeRecord(n), durability: .os) }
        try await reading.value
        #expect(await consumer.seen == Array(0..<100))
        try await log.close()
    }
}

/// A task executor with a fixed number of threads, for tests that must know how many
/// threads their tasks have.
final class ThreadPoolExecutor: TaskExecutor, @unchecked Sendable {
    private let jobs = Mutex<(queue: [UnownedJob], stopped: Bool)>(([], false))
    private let available = DispatchSemaphore(value: 0)
    private let threadCount: Int

    init(threads: Int) {
        threadCount = threads
        for _ in 0..<threads {
            Thread { [self] in
                while true {
                    available.wait()
                    let job: UnownedJob? = jobs.withLock { $0.queue.isEmpty ? nil : $0.queue.removeFirst() }
                    guard let job else { return }  // stopped
                    job.runSynchronously(on: asUnownedTaskExecutor())
                }
            }.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.queue.append(unowned) }
        available.signal()
    }

    /// Ends the threads once the jobs queued so far have run.
    func shutdown() {
        for _ in 0..<threadCount { available.signal() }
    }
}
