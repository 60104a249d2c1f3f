import CLinuxPipe
import Foundation
import Testing
@testable import ShipLogStorage
@testable import ShipLogTool

/// `replay --exec`'s stream: order across worker threads, both ways to the pipe, the safety of
/// handing pages to a pipe by reference, and failures.
@Suite struct RecordStreamTests {
    /// Batches at consecutive offsets from 0, with records of varied sizes: some empty, some
    /// over a chunk's worth of JSON (3 MB escaped) and one batch whose section exceeds a chunk.
    static func makeBatches(count: Int) -> (batches: [StoredBatch], records: [[UInt8]]) {
        var generator = SystemRandomNumberGenerator()
        let text = (0..<4096).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
        var batches: [StoredBatch] = []
        var records: [[UInt8]] = []
        for index in 0..<count {
            var batchRecords: [[UInt8]] = []
            for _ in 0..<Int.random(in: 1...40, using: &generator) {
                let length = [0, 1, 7, 16, 17, 200, 3000].randomElement(using: &generator)!
                let start = Int.random(in: 0...(text.count - length), using: &generator)
                batchRecords.append(Array(text[start..<(start + length)]) + (length > 3 ? [0x22, 0x0A] : []))
            }
            if index == count / 2 { batchRecords.append([UInt8](repeating: 0x22, count: 500_000)) }
            if index == count / 3 { batchRecords.append([UInt8](repeating: 0xFF, count: OutputChunk.bytes + 10)) }
            var batch = StoredBatch(encoding: batchRecords, codec: index % 2 == 0 ? .lz4 : .none)
            batch.seal(firstOffset: UInt64(records.count), leaderEpoch: UInt64(index / 10), timestampMs: Int64(index))
            batches.append(batch)
            records += batchRecords
        }
        return (batches, records)
    }

    /// Streams `batches` into `fd` while another thread reads `readFD` to its end.
    static func stream(_ batches: [StoredBatch], encoding: RecordStream.Encoding, wanted: ClosedRange<UInt64> = 0...UInt64.max,
                       workers: Int, writeFD: Int32, readFD: Int32?) -> (output: [UInt8], error: (any Error)?) {
        let reader = readFD.map { fd in
            let collector = Collector()
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            Thread.detachNewThread {
                collector.bytes = [UInt8](handle.readDataToEndOfFile())
                collector.done.signal()
            }
            return collector
        }
        let stream = RecordStream(fd: writeFD, destination: "the program", encoding: encoding, workers: workers)
        var error: (any Error)?
        do {
            for batch in batches { try stream.submit(batch, wanted: wanted) }
        } catch let failure {
            error = failure
        }
        do { try stream.finish() } catch let failure { error = error ?? failure }
        close(writeFD)
        guard let reader else { return ([], error) }
        reader.done.wait()
        return (reader.bytes, error)
    }

    /// Bytes a thread collects; `done` is signalled once they are all there.
    final class Collector: @unchecked Sendable {
        var bytes: [UInt8] = []
        let done = DispatchSemaphore(value: 0)
    }

    /// Equal record lists; on a difference, records where, rather than printing megabytes.
    static func same(_ got: [[UInt8]], _ expected: [[UInt8]]) -> Bool {
        if got == expected { return true }
        let first = (0..<min(got.count, expected.count)).first { got[$0] != expected[$0] } ?? min(got.count, expected.count)
        Issue.record("got \(got.count) records, expected \(expected.count); first difference at record \(first)")
        return false
    }

    static func describe(_ error: (any Error)?) -> String { error.map { "\($0)" } ?? "no error" }

    static func pipeFDs() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    static func frames(_ bytes: [UInt8]) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var at = 0
        while at + 4 <= bytes.count {
            let length = bytes[at..<(at + 4)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            guard length <= bytes.count - at - 4 else {
                Issue.record("frame at byte \(at) claims \(length) bytes; only \(bytes.count - at - 4) follow")
                return records
            }
            records.append(Array(bytes[(at + 4)..<(at + 4 + length)]))
            at += 4 + length
        }
        #expect(at == bytes.count, "output ends on a frame boundary")
        return records
    }

    static func jsonPayloads(_ bytes: [UInt8], firstOffset: UInt64) throws -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        var offset = firstOffset
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            let object = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
            #expect((object["offset"] as? NSNumber)?.uint64Value == offset)
            offset += 1
            if let text = object["payload"] as? String {
                payloads.append(Array(text.utf8))
            } else {
                payloads.append([UInt8](Data(base64Encoded: object["payload_base64"] as! String)!))
            }
        }
        return payloads
    }

    @Test(arguments: [1, 3])
    func framesAndLinesKeepTheirOrderThroughAPipe(workers: Int) throws {
        let (batches, records) = Self.makeBatches(count: 160)
        let framesPipe = Self.pipeFDs()
        let framed = Self.stream(batches, encoding: .frames, workers: workers, writeFD: framesPipe.write, readFD: framesPipe.read)
        #expect(framed.error == nil, "\(Self.describe(framed.error))")
        let matches = Self.same(Self.frames(framed.output), records)
        #expect(matches)
        let linesPipe = Self.pipeFDs()
        let lines = Self.stream(batches, encoding: .jsonLines, workers: workers, writeFD: linesPipe.write, readFD: linesPipe.read)
        #expect(lines.error == nil, "\(Self.describe(lines.error))")
        let linesMatch = Self.same(try Self.jsonPayloads(lines.output, firstOffset: 0), records)
        #expect(linesMatch)
    }

    @Test func aRangeCutsBatchesThatStraddleIt() throws {
        let (batches, records) = Self.makeBatches(count: 60)
        let wanted = UInt64(records.count / 4)...UInt64(records.count / 2)
        let framesPipe = Self.pipeFDs()
        let framed = Self.stream(batches, encoding: .frames, wanted: wanted, workers: 2, writeFD: framesPipe.write, readFD: framesPipe.read)
        let matches = Self.same(Self.frames(framed.output), Array(records[Int(wanted.lowerBound)...Int(wanted.upperBound)]))
        #expect(matches)
        let linesPipe = Self.pipeFDs()
        let lines = Self.stream(batches, encoding: .jsonLines, wanted: wanted, workers: 2, writeFD: linesPipe.write, readFD: linesPipe.read)
        let linesMatch = Self.same(try Self.jsonPayloads(lines.output, firstOffset: wanted.lowerBound), Array(records[Int(wanted.lowerBound)...Int(wanted.upperBound)]))
        #expect(linesMatch)
    }

    /// A regular file is not a pipe: the stream falls back to write(2) and reuses its chunks.
    @Test func aFileIsWrittenWithPlainWrites() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let path = dir.path + "/frames"
        let (batches, records) = Self.makeBatches(count: 120)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        #expect(!PipeSink(fd: fd, destination: "a file").splicing)
        let result = Self.stream(batches, encoding: .frames, workers: 2, writeFD: fd, readFD: nil)
        #expect(result.error == nil, "\(Self.describe(result.error))")
        let matches = Self.same(Self.frames(fileBytes(path)), records)
        #expect(matches)
    }

    /// The hazard of vmsplice: pages handed to the pipe may be spliced on, by reference, to
    /// another pipe and read much later. If the stream ever wrote those pages again, the late
    /// reader would see the new bytes. Here the reader moves every page on to eight holding
    /// pipes in turn and reads them only when all are full, so 8 MiB, four chunks' worth, are
    /// in flight by reference while the stream writes 20 MB more.
    @Test func pagesSplicedOnwardAreNeverOverwritten() throws {
        let (batches, records) = Self.makeBatches(count: 1200)
        let input = Self.pipeFDs()
        let holding = (0..<8).map { _ in Self.pipeFDs() }
        for pipe in holding { _ = fcntl(pipe.write, shiplog_F_SETPIPE_SZ, Int32(1 << 20)) }
        let relayed = Collector()
        Thread.detachNewThread {
            var collected: [UInt8] = []
            var held = [Int](repeating: 0, count: holding.count)
            var current = 0
            func drain() {
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                for index in held.indices {
                    while held[index] > 0 {
                        let n = read(holding[index].read, &buffer, min(buffer.count, held[index]))
                        if n <= 0 { Issue.record("holding pipe read failed"); return }
                        collected += buffer[..<n]
                        held[index] -= n
                    }
                }
                current = 0
            }
            while true {
                var ready = pollfd(fd: input.read, events: Int16(POLLIN), revents: 0)
                _ = poll(&ready, 1, -1)
                // Non-blocking, so a full holding pipe says EAGAIN instead of waiting.
                let moved = splice(input.read, nil, holding[current].write, nil, 1 << 20, 2 /* SPLICE_F_NONBLOCK */)
                if moved > 0 {
                    held[current] += moved
                } else if moved == 0 {
                    break
                } else if errno == EAGAIN {
                    current += 1
                    if current == holding.count { drain() }
                } else {
                    Issue.record("splice failed: \(String(cString: strerror(errno)))")
                    break
                }
            }
            drain()
            relayed.bytes = collected
            relayed.done.signal()
        }
        let result = Self.stream(batches, encoding: .frames, workers: 1, writeFD: input.write, readFD: nil)
        #expect(result.error == nil, "\(Self.describe(result.error))")
        relayed.done.wait()
        let matches = Self.same(Self.frames(relayed.bytes), records)
        #expect(matches)
        close(input.read)
        for pipe in holding { close(pipe.read); close(pipe.write) }
    }

    /// A batch whose checksum is right but whose framing is not (as a bug in a writer could
    /// make): everything before it is delivered, then the stream fails naming the offset.
    @Test func damageStopsTheStreamAfterTheRecordsBeforeIt() throws {
        let made = Self.makeBatches(count: 40)
        var batches = made.batches
        let records = made.records
        // A batch from the second half whose header can claim one record more and still pass
        // the header's own checks (each record takes at least its 4-byte length).
        let index = (20..<batches.count).first {
            batches[$0].header.uncompressedBytes >= 4 * (batches[$0].header.recordCount + 1)
        }!
        let bad = batches[index]
        var bytes = bad.bytes
        bytes.withUnsafeMutableBytes { raw in
            raw.setLittleEndian(bad.header.recordCount + 1, at: 12)
            let crc = BatchHeader.checksum(header: UnsafeRawBufferPointer(raw),
                                           payload: UnsafeRawBufferPointer(rebasing: raw[Format.batchHeaderBytes...]))
            raw.setLittleEndian(crc, at: 4)
        }
        batches[index] = try StoredBatch(bytes: bytes)
        let pipe = Self.pipeFDs()
        let result = Self.stream(batches, encoding: .jsonLines, workers: 3, writeFD: pipe.write, readFD: pipe.read)
        let delivered = try Self.jsonPayloads(result.output, firstOffset: 0)
        let matches = Self.same(delivered, Array(records[..<Int(bad.header.firstOffset)]))
        #expect(matches)
        #expect(Self.describe(result.error).contains("record framing"))
    }

    /// The program stops reading: the stream fails with the write error, and does not hang.
    @Test func aReaderThatGoesAwayFailsTheStream() throws {
        let (batches, _) = Self.makeBatches(count: 200)
        let pipe = Self.pipeFDs()
        close(pipe.read)
        signal(SIGPIPE, SIG_IGN)
        let result = Self.stream(batches, encoding: .jsonLines, workers: 2, writeFD: pipe.write, readFD: nil)
        #expect(Self.describe(result.error).contains("writing to the program failed"))
    }
}
