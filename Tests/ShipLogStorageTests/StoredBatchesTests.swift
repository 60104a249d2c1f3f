import Foundation
import Testing
@testable import ShipLogStorage

/// `SegmentLog+StoredBatches.swift`: a replication frame's batches appended with one write,
/// the append that never waits (for an event loop), and the append that hands back its bytes.
@Suite struct StoredBatchesTests {
    /// A primary's log with `count` batches of two records, epochs rising every five batches.
    private func primaryBatches(_ dir: TemporaryDirectory, count: Int = 20, risingEpochs: Bool = true) throws -> [StoredBatch] {
        let primary = try SegmentLog.open(directory: dir.path + "/primary", options: smallOptions(segmentBytes: 1 << 20))
        for n in 0..<count {
            try primary.append([makeRecord(2 * n), makeRecord(2 * n + 1)], epoch: risingEpochs ? UInt64(1 + n / 5) : 1)
        }
        let batches = try primary.read(from: 0, maxBytes: .max)
        try primary.close()
        return batches
    }

    private func writes(_ fs: ScriptedFileSystem) -> Int {
        fs.trace.filter { $0.operation == .write && $0.path.hasSuffix(".log") }.count
    }

    /// The batches of a frame land byte for byte, with one pwrite when they fit the segment.
    @Test func manyBatchesGoOutInOneWrite() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = try primaryBatches(dir, count: 4)  // one epoch: no checkpoint rewrite between them
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 1 << 20))
        // The first batch rewrites the epoch checkpoint through the queue; the rest go together.
        try log.append(storedBatch: batches[0], durability: .os)
        let before = writes(fs)
        #expect(try log.append(storedBatches: Array(batches[1...]), durability: .os) == 2..<8)
        #expect(writes(fs) - before == 1)
        #expect(try log.read(from: 0, maxBytes: .max) == batches)
        try log.close()
    }

    /// A roll (and epoch changes) in the middle of the batches: each goes through the queue
    /// for the batch that needs it, the rest continue; the result equals the primary's log,
    /// after a reopen too, in epochs as well as bytes.
    @Test func aRollInTheMiddleOfTheBatches() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = try primaryBatches(dir, count: 60)
        let options = smallOptions(segmentBytes: 1 << 10)
        let follower = try SegmentLog.open(directory: dir.path + "/follower", options: options)
        #expect(try follower.append(storedBatches: Array(batches[..<30]), durability: .os) == 0..<60)
        #expect(try follower.append(storedBatches: Array(batches[30...]), durability: .fsync) == 60..<120)
        #expect(follower.durableNextOffset == 120)
        #expect(follower.segmentCount > 4)
        #expect(try follower.read(from: 0, maxBytes: .max) == batches)
        try follower.close()
        let reopened = try SegmentLog.open(directory: dir.path + "/follower", options: options)
        #expect(try reopened.read(from: 0, maxBytes: .max) == batches)
        #expect(reopened.epochHistory.entries.map(\.epoch) == Array(1...12))
        try reopened.close()
    }

    /// A gap is refused before anything is written; a batch that does not continue the one
    /// before it leaves those before it appended, as separate appends would.
    @Test func gapsAreRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = try primaryBatches(dir, count: 6)
        let log = try SegmentLog.open(directory: dir.path + "/follower", options: smallOptions(segmentBytes: 1 << 20))
        #expect(throws: LogError.nonContiguousBatch(expectedOffset: 0, batchOffset: 2)) {
            try log.append(storedBatches: Array(batches[1...]), durability: .os)
        }
        #expect(throws: LogError.nonContiguousBatch(expectedOffset: 0, batchOffset: 2)) {
            try log.appendWithoutWaiting(storedBatches: Array(batches[1...]))
        }
        #expect(log.nextOffset == 0)
        #expect(throws: LogError.nonContiguousBatch(expectedOffset: 4, batchOffset: 6)) {
            try log.append(storedBatches: [batches[0], batches[1], batches[3]], durability: .os)
        }
        #expect(log.nextOffset == 4)
        #expect(throws: LogError.emptyBatch) { try log.append(storedBatches: [], durability: .os) }
        try log.close()
    }

    /// A failed write fails the append, leaves nothing of it in the log (the file is cut
    /// back), and the log goes on: the same batches append afterwards and survive a reopen.
    @Test func aFailedWriteLeavesNothingBehind() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = try primaryBatches(dir, count: 5)
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 1 << 20))
        try log.append(storedBatch: batches[0], durability: .os)
        fs.add(.write, pathSuffix: ".log", .fail(errno: EIO))
        #expect(throws: LogError.self) { try log.appendWithoutWaiting(storedBatches: Array(batches[1...])) }
        #expect(log.nextOffset == 2)
        fs.add(.write, pathSuffix: ".log", .fail(errno: ENOSPC))
        #expect(throws: LogError.self) { try log.append(storedBatches: Array(batches[1...]), durability: .os) }
        #expect(log.nextOffset == 2)
        #expect(try log.appendWithoutWaiting(storedBatches: Array(batches[1...])) == 2..<10)
        try log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 1 << 20))
        #expect(try reopened.read(from: 0, maxBytes: .max) == batches)
        try reopened.close()
    }

    /// The append for an event loop writes nothing and returns nil whenever it would wait: a
    /// roll needed, a write in progress (held here), or the log's mutex taken.
    @Test func appendWithoutWaitingNeverWaits() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = try primaryBatches(dir, count: 40, risingEpochs: false)
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 4 << 10))
        // A new log's first epoch must reach the epoch checkpoint first: not without waiting.
        #expect(try log.appendWithoutWaiting(storedBatches: [batches[0]]) == nil)
        try log.append(storedBatches: [batches[0]], durability: .os)
        var next = 1
        // Appends until one needs a roll: that one returns nil and writes nothing.
        while next < batches.count, let range = try log.appendWithoutWaiting(storedBatches: [batches[next]]) {
            #expect(range == batches[next].header.firstOffset..<batches[next].header.nextOffset)
            next += 1
        }
        #expect(next > 0 && next < batches.count, "a roll was needed within the batches")
        let end = log.nextOffset
        #expect(try log.appendWithoutWaiting(storedBatches: [batches[next]]) == nil)
        #expect(log.nextOffset == end)
        // The blocking form rolls; afterwards the loop path writes again.
        try log.append(storedBatches: [batches[next]], durability: .os)
        next += 1
        #expect(log.segmentCount == 2)
        // A write held in progress: nil, at once.
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        let held = batches[next]
        let writer = Worker { try log.append(storedBatches: [held], durability: .os) }
        #expect(gate.waitForArrival())
        #expect(try log.appendWithoutWaiting(storedBatches: [batches[next + 1]]) == nil)
        gate.release()
        _ = try #require(writer.join()).get()
        next += 1
        // The mutex taken by someone else: nil, at once.
        let whileLocked = log.state.withLock { _ in Result { try log.appendWithoutWaiting(storedBatches: [batches[next]]) } }
        #expect(try whileLocked.get() == nil)
        #expect(try log.appendWithoutWaiting(storedBatches: [batches[next]]) != nil)
        #expect(try log.read(from: 0, maxBytes: .max) == Array(batches[...next]))
        try log.close()
    }

    /// The bytes handed back are the batch as stored, sealed with its offsets and epoch.
    @Test func appendKeepingBytesHandsBackTheStoredBatch() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        try await log.append([makeRecord(0)], epoch: 3)
        let (offsets, stored) = try await log.appendKeepingBytes([makeRecord(1), makeRecord(2)], epoch: 3, durability: .os)
        #expect(offsets == 1..<3)
        #expect(try log.read(from: 1)[0].bytes == stored)
        try await log.close()
    }
}
