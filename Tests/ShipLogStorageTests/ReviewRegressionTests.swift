import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// Regression tests from the adversarial review of the writer queue and truncate (defects
/// R1–R7, each failing before its fix). Each states the defect it guards against; where the
/// defect would hang a thread, the test releases it by hand afterwards so that the test
/// process can go on and report the failure.
@Suite(.serialized) struct AdversarialReviewTests {
    /// Kicks the pipeline by hand: what the missing wake-up should have done.
    static func rescue(_ log: SegmentLog) {
        log.locked { state, wakeups in state.kick(&wakeups) }
    }

    /// R1: a leader whose whole group is `.buffered` and fits the process buffer publishes
    /// it and returns without waking the next request in the queue. When that request is an
    /// exclusive operation (close, flush, truncate, sync, retention, or a reader's flush),
    /// it sleeps forever, and so does everything queued behind it.
    @Test func aBufferedGroupWakesTheCloseBehindIt() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        let leader = Worker { try log.append(makeRecord(0), durability: .os) }
        #expect(gate.waitForArrival())
        let buffered = Worker { try log.append(makeRecord(1), durability: .buffered) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 1 } })
        let closer = Worker { try log.close() }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 2 } })
        gate.release()
        #expect(try leader.join()?.get() == 0)
        #expect(try buffered.join()?.get() == 1)
        let closed = closer.join(seconds: 3)
        #expect(closed != nil, "close() never returns: the buffered leader did not wake it")
        if closed == nil {
            let stuck = log.state.withLock { ($0.writeQueue.count, $0.writeQueue.first?.isExclusive, $0.writerBusy, $0.syncBusy) }
            #expect(stuck.0 == 1 && stuck.1 == true && !stuck.2 && !stuck.3, "queue head is an idle exclusive")
            Self.rescue(log)
            #expect(closer.join(seconds: 5) != nil, "a hand kick releases it: a lost wake-up")
        }
    }

    /// R1, without any exclusive operation: two `.buffered` appends queued behind a leader,
    /// the second of which must roll. The first leads, buffers itself, stops before the
    /// second ("the next leader rolls") and returns without waking it.
    @Test func aBufferedGroupThatStopsAtARollWakesTheNextAppender() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 4096, compression: .none))
        let big: @Sendable (UInt8) -> [UInt8] = { [UInt8](repeating: $0, count: 1500) }
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        let leader = Worker { try log.append(big(0), durability: .os) }
        #expect(gate.waitForArrival())
        let first = Worker { try log.append(big(1), durability: .buffered) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 1 } })
        let second = Worker { try log.append(big(2), durability: .buffered) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 2 } })
        gate.release()
        #expect(try leader.join()?.get() == 0)
        #expect(try first.join()?.get() == 1)
        let done = second.join(seconds: 3)
        #expect(done != nil, "the second buffered append never returns")
        if done == nil {
            Self.rescue(log)
            #expect(try second.join(seconds: 5)?.get() == 2)
        }
        try log.close()
    }

    /// R2: `sync()` is `exclusive { flush; target = flushedNextOffset }` then
    /// `waitDurable(through: target)`. A truncate that runs between the two lowers the
    /// log's end below `target`; the waiter then leads fdatasync after fdatasync forever
    /// (it is never sleeping, so it is never "kicked", and `flushedNextOffset < target`).
    /// This runs sync()'s two halves with a truncate in between (the interleaving the
    /// stress `sync-vs-truncate` finds through the public API).
    @Test func aSyncOvertakenByATruncateReturns() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        for n in 0..<50 { try log.append(makeRecord(n), durability: .os) }
        // sync(), first half:
        let target = try log.exclusive { state, _ -> UInt64 in
            try log.checkWritable(state)
            try log.flushPending(&state)
            return state.flushedNextOffset
        }
        try log.truncate(after: 9)  // another thread's truncate gets the queue first
        let syncsBefore = log.groupCommitSyncs
        // sync(), second half:
        let waiter = Worker { try log.waitDurable(through: target) }
        let returned = waiter.join(seconds: 2)
        let syncs = log.groupCommitSyncs - syncsBefore
        #expect(returned != nil, "sync() never returns; it made \(syncs) fdatasync calls in 2 s")
        #expect(syncs <= 1)
        if returned == nil {
            // Appending past the stale target is what finally lets it go.
            for n in 0..<45 { try log.append(makeRecord(n), durability: .os) }
            #expect(waiter.join(seconds: 5) != nil)
        }
        try log.close()
    }

    /// R2, then close: the spinning sync() is not released by close() either; it goes on
    /// calling fdatasync on the closed log (whose directory lock is already released).
    @Test func aSyncWaitingAtCloseReturns() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        for n in 0..<50 { try log.append(makeRecord(n), durability: .os) }
        let target = try log.exclusive { state, _ -> UInt64 in
            try log.flushPending(&state)
            return state.flushedNextOffset
        }
        try log.truncate(after: 9)
        let waiter = Worker { try log.waitDurable(through: target) }
        try log.close()
        let afterClose = log.groupCommitSyncs
        let returned = waiter.join(seconds: 2)
        let syncsAfterClose = log.groupCommitSyncs - afterClose
        #expect(returned != nil, "sync() still spinning 2 s after close(): \(syncsAfterClose) fdatasync calls since")
        if returned == nil {  // stop the spinner, for the rest of the test run
            log.locked { state, wakeups in
                state.failure = "test cleanup"
                state.finishDurableWaiters(&wakeups)
            }
            #expect(waiter.join(seconds: 5) != nil)
        }
    }

    /// R3: a reader that located a sealed segment whose descriptor is not cached, and that
    /// a truncate then removes, reopens the file by path and gets ENOENT: `LogError.io`
    /// instead of `LogError.truncated`. (`records(in:)` only retries `truncated`, so it
    /// fails as well.)
    @Test func aReaderOfARemovedUncachedSegmentGetsTruncatedNotENOENT() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(segmentBytes: 8 << 10)
        options.maxOpenSegmentFiles = 2
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: options)
            for n in 0..<400 { try log.append(makeRecord(n), durability: .os) }
            try log.close()
        }
        let fs = ScriptedFileSystem()
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)  // sealed segments: index not loaded
        let segments = log.state.withLock { $0.segments.map { ($0.baseOffset, $0.nextOffset) } }
        #expect(segments.count >= 4)
        let (base, next) = segments[2]
        // The reader stops just after locating segment 2 (opening its index file).
        let gate = Gate()
        fs.add(.open, pathSuffix: Format.indexName(baseOffset: base), .hold(gate))
        let reader = Worker { () -> String in
            var cursor = log.batches(from: (base + next) / 2)
            do { _ = try cursor.next(); return "read" } catch { return kind(error) }
        }
        #expect(gate.waitForArrival())
        try log.truncate(after: segments[1].0 + 2)  // removes segments 2... while the reader is between locate and open
        gate.release()
        let outcome = try #require(reader.join()).get()
        #expect(outcome.hasPrefix("truncated"), "the reader got: \(outcome)")
        try log.close()
    }

    /// R3, retention: a `record(at:)` of a record that retention deletes under it gets ENOENT
    /// rather than `offsetOutOfRange`.
    @Test func aReaderOfASegmentRetentionDeletesGetsOffsetOutOfRange() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(segmentBytes: 8 << 10)
        options.maxOpenSegmentFiles = 2
        do {
            let log = try SegmentLog.open(directory: dir.logPath, options: options)
            for n in 0..<400 { try log.append(makeRecord(n), durability: .os) }
            try log.close()
        }
        let fs = ScriptedFileSystem()
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        let gate = Gate()
        fs.add(.open, pathSuffix: Format.indexName(baseOffset: 0), .hold(gate))
        let reader = Worker { () -> String in
            do { _ = try log.record(at: 5); return "read" } catch { return kind(error) }
        }
        #expect(gate.waitForArrival())
        let removed = try log.enforceRetention(RetentionPolicy(maxTotalBytes: log.totalBytes - 1))
        #expect(removed.count == 1)
        gate.release()
        let outcome = try #require(reader.join()).get()
        #expect(outcome.hasPrefix("offsetOutOfRange"), "the reader got: \(outcome)")
        try log.close()
    }

    /// R4: public input that traps.
    @Test func recordAtTheLargestOffsetDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let dir = TemporaryDirectory()
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
            _ = try? log.record(at: UInt64.max)  // offset + 1 overflows
            try log.close()
            dir.remove()
        }
    }

    @Test func retentionWithAVeryLongMaxAgeDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let dir = TemporaryDirectory()
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
            // seconds * 1000 overflows Int64
            _ = try? log.enforceRetention(RetentionPolicy(maxAge: .seconds(Int64.max / 100)))
            try log.close()
            dir.remove()
        }
    }

    /// R5: a group write that fails part-way (a short write, then ENOSPC: a full disk without
    /// preallocation) leaves intact batches of the failed members past the log's end. A later,
    /// shorter append is acknowledged over the start of them; after a crash, recovery finds
    /// garbage followed by intact batches and refuses to open the log (tolerateCorruptTail),
    /// so the acknowledged `.fsync` records are unreachable.
    @Test func aTornGroupWriteThenAShorterAppendLeavesALogThatOpens() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let scripted = ScriptedFileSystem()
        let fs = TornWriteFileSystem(inner: scripted)
        var options = smallOptions(segmentBytes: 1 << 20, compression: .none)
        options.preallocateSegments = false
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try log.append([UInt8](repeating: 1, count: 100), durability: .fsync)
        // A leader held in its write, three appenders queued behind it: they form one group.
        let gate = Gate()
        scripted.add(.write, pathSuffix: ".log", .hold(gate))
        // An .fsync leader goes through the queue, so the .os appenders behind it queue too and
        // form a group (behind an .os append's direct write they would wait for its lock instead).
        let leader = Worker { try log.append([UInt8](repeating: 2, count: 100), durability: .fsync) }
        #expect(gate.waitForArrival())
        let members = (0..<3).map { n in
            Worker { try log.append([UInt8](repeating: UInt8(10 + n), count: 2000), durability: .os) }
        }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 3 } })
        // The group's write stops 500 bytes into its third batch: a short write, then ENOSPC.
        let batch = 2000 + 4 + Format.batchHeaderBytes
        fs.tearNextWrite(afterBytes: 2 * batch + 500)
        gate.release()
        #expect(try leader.join()?.get() == 1)
        for member in members { #expect(throws: (any Error).self) { try member.join()!.get() } }
        // The disk has room again; a short append is acknowledged durable.
        #expect(try log.append([UInt8](repeating: 30, count: 10), durability: .fsync) == 2)
        #expect(log.nextOffset == 3)
        // kill -9 now: open a copy of the directory as the next process would find it.
        let copy = dir.path + "/copy"
        try FileManager.default.copyItem(atPath: dir.logPath, toPath: copy)
        do {
            let reopened = try SegmentLog.open(directory: copy, options: smallOptions())
            #expect(reopened.nextOffset == 3, "a refused append came back")
            try reopened.close()
        } catch {
            Issue.record("the log cannot be opened after a crash: \(error)")
        }
        try log.close()
    }
}

extension AdversarialReviewTests {
    /// R5, the other outcome: when the next append happens to be as long as the first failed
    /// member, the failed member behind it is intact at the right offset, and comes back
    /// after a crash although its append threw.
    @Test func aTornGroupWriteNeverResurrectsAFailedAppend() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let scripted = ScriptedFileSystem()
        let fs = TornWriteFileSystem(inner: scripted)
        var options = smallOptions(segmentBytes: 1 << 20, compression: .none)
        options.preallocateSegments = false
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try log.append([UInt8](repeating: 1, count: 100), durability: .fsync)
        let gate = Gate()
        scripted.add(.write, pathSuffix: ".log", .hold(gate))
        // An .fsync leader goes through the queue, so the .os appenders behind it queue too and
        // form a group (behind an .os append's direct write they would wait for its lock instead).
        let leader = Worker { try log.append([UInt8](repeating: 2, count: 100), durability: .fsync) }
        #expect(gate.waitForArrival())
        let members = (0..<3).map { n in
            Worker { try log.append([UInt8](repeating: UInt8(10 + n), count: 2000), durability: .os) }
        }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 3 } })
        let batch = 2000 + 4 + Format.batchHeaderBytes
        fs.tearNextWrite(afterBytes: 2 * batch + 500)
        gate.release()
        #expect(try leader.join()?.get() == 1)
        for member in members { #expect(throws: (any Error).self) { try member.join()!.get() } }
        #expect(try log.append([UInt8](repeating: 30, count: 2000), durability: .fsync) == 2)
        let copy = dir.path + "/copy"
        try FileManager.default.copyItem(atPath: dir.logPath, toPath: copy)
        let reopened = try SegmentLog.open(directory: copy, options: smallOptions())
        #expect(reopened.nextOffset == 3, "offset 3 holds \(reopened.nextOffset > 3 ? "the failed append's record, byte \((try? reopened.record(at: 3))?.bytes.first ?? 0)" : "nothing")")
        try reopened.close()
        try log.close()
    }
}

/// The error's case name, for messages.
func kind(_ error: any Error) -> String {
    if let error = error as? LogError {
        return "\(Mirror(reflecting: error).children.first?.label ?? "\(error)"): \(error)"
    }
    return "\(error)"
}

/// Wraps the real file system; `tearNextWrite` makes the next write of a segment write only
/// its first bytes and then fail with ENOSPC, as a short pwrite on a full disk does.
final class TornWriteFileSystem: FileSystem, @unchecked Sendable {
    let real: any FileSystem
    init(inner: any FileSystem) { real = inner }
    let tear = Mutex<Int?>(nil)

    func tearNextWrite(afterBytes n: Int) { tear.withLock { $0 = n } }

    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        TornFile(real: try real.openFile(path, create: create), owner: self)
    }
    func openFileForReading(_ path: String) throws -> any StorageFile { try real.openFileForReading(path) }
    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func rename(_ source: String, to destination: String) throws { try real.rename(source, to: destination) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }

    final class TornFile: StorageFile, @unchecked Sendable {
        let real: any StorageFile
        let owner: TornWriteFileSystem
        init(real: any StorageFile, owner: TornWriteFileSystem) {
            self.real = real
            self.owner = owner
        }
        var path: String { real.path }
        func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
            let tear = path.hasSuffix(Format.segmentSuffix) ? owner.tear.withLock { t in defer { t = nil }; return t } : nil
            if let tear, tear < bytes.count {
                try real.write(UnsafeRawBufferPointer(rebasing: bytes[0..<tear]), at: position)
                throw LogError.io(operation: "write (torn, injected)", path: path, errno: ENOSPC)
            }
            try real.write(bytes, at: position)
        }
        func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
            try real.read(into: buffer, at: position)
        }
        func sync() throws { try real.sync() }
        func truncate(to bytes: Int64) throws { try real.truncate(to: bytes) }
        func preallocate(to bytes: Int64) throws { try real.preallocate(to: bytes) }
        func size() throws -> Int64 { try real.size() }
        func dataRanges(from position: Int64) throws -> [Range<Int64>] { try real.dataRanges(from: position) }
    }
}

/// More findings: epoch after truncate, a trap through a reader option.
@Suite(.serialized) struct AdversarialReviewTests2 {
    /// R6: truncate leaves `lastEpoch` at the epoch of the removed batches. A follower that
    /// drops a deposed leader's epoch-7 suffix and then takes the new leader's entries from
    /// an older epoch (Raft: a term-6 entry replacing uncommitted term-7 ones) is refused
    /// with `epochRegression`, although the log on disk would accept it, and does after a
    /// reopen (recovery takes the epoch from the last kept batch).
    @Test func truncateTakesTheKeptBatchesEpoch() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        for n in 0..<5 { try log.append(makeRecord(n), epoch: 5, durability: .os) }
        for n in 5..<10 { try log.append(makeRecord(n), epoch: 7, durability: .os) }
        try log.truncate(after: 4)
        #expect(log.lastEpoch == 5, "lastEpoch after the epoch-7 batches were removed")
        let before = Result { try log.append(makeRecord(100), epoch: 6, durability: .os) }
        #expect((try? before.get()) == 5, "refused before a reopen: \(before)")
        // The same files after a crash: recovery reads the epoch from the last batch.
        let crashImage = dir.path + "/crash"
        try FileManager.default.copyItem(atPath: dir.logPath, toPath: crashImage)
        let recovered = try SegmentLog.open(directory: crashImage, options: smallOptions())
        #expect(recovered.lastEpoch == 6)
        try recovered.close()
        // After a clean close the marker carries the stale epoch on.
        try log.close()
        log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        #expect(log.lastEpoch == 6, "clean reopen")
        try log.close()
    }

    /// R4, a reader option: a negative buffer size traps in the scanner.
    @Test func aNegativeCursorBufferDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let dir = TemporaryDirectory()
            let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
            try log.append(makeRecord(0), durability: .os)
            var cursor = log.batches(from: 0, bufferBytes: -1)
            _ = try? cursor.next()
            try log.close()
            dir.remove()
        }
    }
}

extension AdversarialReviewTests2 {
    /// R7: a cursor that has seen more than `truncationsKept` (64) truncations go by, none of
    /// them below what it read, is told `truncated(newNextOffset: 0)`: "records from 0 on are
    /// gone, resync from 0". Throwing is the documented conservative choice; the offset is
    /// not: 0 may be below `firstOffset` (resyncing there throws offsetOutOfRange), and a
    /// tail that follows it re-delivers the whole log. The lowest cut of the forgotten
    /// truncations (or the cursor's own offset) is known and would do.
    @Test func aCursorOlderThanTheKeptTruncationsIsNotSentToZero() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions())
        for n in 0..<100 { try log.append(makeRecord(n), durability: .os) }
        var cursor = log.batches(from: 0)
        for _ in 0..<10 { _ = try cursor.next() }
        let at = cursor.nextOffset
        for n in 0..<70 {
            try log.append(makeRecord(1000 + n), durability: .os)
            try log.truncate(after: log.nextOffset - 2)  // always far above the cursor
        }
        do {
            _ = try cursor.next()
        } catch LogError.truncated(let reader, let newNext) {
            #expect(newNext >= at, "cursor at \(reader) told to resync from \(newNext)")
        }
    }
}

/// What held up: scripted interleavings that behave.
@Suite(.serialized) struct AdversarialHeldUpTests {
    /// An fdatasync that fails while another leader's group write is in flight: the log rolls
    /// back to its durable point and fails the group too, without tripping "the log's end
    /// moved under a busy writer"; nothing is acknowledged that is not on disk.
    @Test func anFsyncFailureDuringAGroupWrite() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let scripted = ScriptedFileSystem()
        let fs = HookFileSystem(inner: scripted)
        var options = smallOptions()
        options.fileSystem = fs
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        try log.append(makeRecord(0), durability: .fsync)
        let syncGate = Gate()
        fs.onSync.withLock { $0 = { path in
            guard path.hasSuffix(".log") else { return }
            syncGate.arriveAndWait()
            throw LogError.io(operation: "fsync (injected)", path: path, errno: EIO)
        } }
        let syncer = Worker { try log.append(makeRecord(1), durability: .fsync) }
        #expect(syncGate.waitForArrival())
        fs.onSync.withLock { $0 = nil }
        let writeGate = Gate()
        scripted.add(.write, pathSuffix: ".log", .hold(writeGate))
        let writer = Worker { try log.append(makeRecord(2), durability: .os) }
        #expect(writeGate.waitForArrival())
        let queued = Worker { try log.append(makeRecord(3), durability: .fsync) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 1 } })
        syncGate.release()
        #expect(throws: LogError.self) { try syncer.join()!.get() }
        writeGate.release()
        #expect(throws: LogError.self) { try writer.join()!.get() }
        #expect(throws: LogError.self) { try queued.join()!.get() }
        #expect(log.nextOffset == 1 && log.durableNextOffset == 1)
        #expect(throws: LogError.self) { try log.append(makeRecord(4), durability: .os) }
        try log.close()
    }

    /// A roll that fails for the second member of what would have been one group: the first
    /// is written, the roller alone fails, the next appender rolls and goes on.
    @Test func aRollFailingMidGroup() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions(segmentBytes: 4096, compression: .none))
        let big: @Sendable (UInt8) -> [UInt8] = { [UInt8](repeating: $0, count: 1500) }
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        // An .fsync leader goes through the queue, so the .os appenders behind it queue too and
        // form a group (behind an .os append's direct write they would wait for its lock instead).
        let leader = Worker { try log.append(big(0), durability: .fsync) }
        #expect(gate.waitForArrival())
        let a = Worker { try log.append(big(1), durability: .fsync) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 1 } })
        let b = Worker { try log.append(big(2), durability: .fsync) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 2 } })
        let c = Worker { try log.append(big(3), durability: .os) }
        #expect(eventually { log.state.withLock { $0.writeQueue.count == 3 } })
        fs.add(.write, pathSuffix: ".log.tmp", .fail(errno: ENOSPC))  // the new segment's creation
        gate.release()
        #expect(try leader.join()?.get() == 0)
        #expect(try a.join()?.get() == 1)
        #expect(throws: LogError.self) { try b.join()!.get() }
        #expect(try c.join()?.get() == 2)
        #expect(log.segmentCount == 2)
        try log.close()
        let reopened = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096, compression: .none))
        #expect(try reopened.records(in: 0..<3).map { Array($0.bytes) } == [big(0), big(1), big(3)])
        try reopened.close()
    }

    /// Appends refused for their epoch or offset in the middle of a group leave the others
    /// written at dense offsets.
    @Test func refusalsMidGroup() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, fs) = try openScriptedLog(dir, smallOptions())
        let gate = Gate()
        fs.add(.write, pathSuffix: ".log", .hold(gate))
        // An .fsync leader goes through the queue, so the .os appenders behind it queue too and
        // form a group (behind an .os append's direct write they would wait for its lock instead).
        let leader = Worker { try log.append(makeRecord(0), epoch: 2, durability: .fsync) }
        #expect(gate.waitForArrival())
        var stray = StoredBatch(encoding: [makeRecord(9)], codec: .lz4)
        stray.seal(firstOffset: 1, leaderEpoch: 5, timestampMs: 0)  // offset 1 will be taken first
        let strayBatch = stray
        let bodies: [@Sendable () throws -> Range<UInt64>] = [
            { try log.append([makeRecord(1)], epoch: 5, durability: .fsync) },
            { try log.append([makeRecord(2)], epoch: 3, durability: .fsync) },
            { try log.append(storedBatch: strayBatch, durability: .os) },
            { try log.append([makeRecord(3)], epoch: 6, durability: .buffered) },
            { try log.append([makeRecord(4)], epoch: 6, durability: .fsync) },
        ]
        var workers: [Worker<Range<UInt64>>] = []
        for (i, body) in bodies.enumerated() {
            workers.append(Worker(body))
            #expect(eventually { log.state.withLock { $0.writeQueue.count == i + 1 } })
        }
        gate.release()
        #expect(try leader.join()?.get() == 0)
        let results = workers.map { $0.join().map { r in (try? r.get())?.lowerBound } }
        #expect(results.map { $0 ?? 999 } == [1, nil, nil, 2, 3])
        #expect(log.lastEpoch == 6)
        try log.close()
    }
}

/// Wraps a file system; `onSync` runs before every data sync and may block or throw.
final class HookFileSystem: FileSystem, @unchecked Sendable {
    let real: any FileSystem
    let onSync = Mutex<(@Sendable (String) throws -> Void)?>(nil)
    init(inner: any FileSystem) { real = inner }
    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        HookFile(real: try real.openFile(path, create: create), owner: self)
    }
    func openFileForReading(_ path: String) throws -> any StorageFile { try real.openFileForReading(path) }
    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func rename(_ source: String, to destination: String) throws { try real.rename(source, to: destination) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }

    final class HookFile: StorageFile, @unchecked Sendable {
        let real: any StorageFile
        let owner: HookFileSystem
        init(real: any StorageFile, owner: HookFileSystem) {
            self.real = real
            self.owner = owner
        }
        var path: String { real.path }
        func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws { try real.write(bytes, at: position) }
        func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
            try real.read(into: buffer, at: position)
        }
        func sync() throws {
            if let hook = owner.onSync.withLock({ $0 }) { try hook(path) }
            try real.sync()
        }
        func truncate(to bytes: Int64) throws { try real.truncate(to: bytes) }
        func preallocate(to bytes: Int64) throws { try real.preallocate(to: bytes) }
        func size() throws -> Int64 { try real.size() }
        func dataRanges(from position: Int64) throws -> [Range<Int64>] { try real.dataRanges(from: position) }
    }
}

