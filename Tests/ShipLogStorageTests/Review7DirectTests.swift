import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// Review 7: an adversarial pass over the direct write path of `.os` appends
/// (`SegmentLog+DirectWrite.swift`), its barging lock and the per-thread LZ4 stream.
/// Two defects, each failing before its fix: a failed cut after a failed write, and a failed
/// sealing cut at a roll, rolled memory back to the durable end although no fdatasync had
/// failed, so acknowledged `.os` appends vanished from the log while a reopen found them.
/// The other tests held on first run and stay as regression tests.
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
}
