import Foundation
@testable import ShipLogStorage
import Testing

/// `RawBatchReader`: whole stored batches as raw bytes, byte for byte what `BatchCursor` returns,
/// across segments; a buffer too small for the next batch says how much it needs; a truncation
/// below the reader is reported, never mixed in. And `write(gathering:)` writes what one buffer would.
@Suite struct RawBatchReaderTests {
    /// Runs `body` on a log of 200 batches of 1–4 records (8 KiB segments by default) in a
    /// temporary directory, with every batch as stored; closes and removes them after.
    static func withLog(options: LogOptions = smallOptions(segmentBytes: 8 << 10),
                        _ body: (TemporaryDirectory, SegmentLog, [StoredBatch]) throws -> Void) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let log = try SegmentLog.open(directory: directory.logPath, options: options)
        defer { try? log.close() }
        for i in 0..<200 { _ = try log.append((0..<(i % 4 + 1)).map { makeRecord(i * 10 + $0) }, epoch: 1) }
        try body(directory, log, try log.read(from: 0, maxBytes: Int.max))
    }

    /// Reads everything with buffers of `bufferBytes`, growing one when asked to.
    static func readAll(_ log: SegmentLog, from: UInt64, bufferBytes: Int) throws -> [[UInt8]] {
        var reader = RawBatchReader(log: log, from: from)
        var batches: [[UInt8]] = []
        var size = bufferBytes
        for _ in 0..<10_000 {
            var buffer = [UInt8](repeating: 0, count: size)
            let result = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) }
            switch result {
            case .needsBytes(let bytes):
                #expect(bytes > size)
                size = bytes
            case .batches(let ends):
                if ends.isEmpty { return batches }
                var start = 0
                for end in ends {
                    batches.append(Array(buffer[start..<end.bytes]))
                    start = end.bytes
                }
                #expect(reader.nextOffset == ends.last!.nextOffset)
                size = bufferBytes
            }
        }
        Issue.record("no end after 10,000 reads")
        return batches
    }

    @Test func everyBatchOnceInOrderWhateverTheBufferSize() throws {
        try Self.withLog { _, log, all throws in
            #expect(all.count == 200)
            for size in [1, 60, 700, 4096, 1 << 20] {
                #expect(try Self.readAll(log, from: 0, bufferBytes: size) == all.map(\.bytes))
            }
            let from = all[57].header.firstOffset
            #expect(try Self.readAll(log, from: from, bufferBytes: 3000) == all[57...].map(\.bytes))
        }
    }

    @Test func nothingAtOrPastTheLimit() throws {
        try Self.withLog { _, log, all throws in
            var reader = RawBatchReader(log: log, from: 0)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            // The limit falls inside batch 3: batches 0...2 only.
            let limit = all[3].header.firstOffset + 1
            let result = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: limit) }
            #expect(result == .batches((0..<3).map { StoredBatchEnd(nextOffset: all[$0].header.nextOffset,
                                                                      bytes: all[...$0].reduce(0) { $0 + $1.bytes.count }) }))
            #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: limit) } == .batches([]))
        }
    }

    /// A read cut inside a batch tells that batch's length (a shipper with less room left skips
    /// the pread that would return nothing); a read that took whole batches up to the log's end,
    /// or one stopped by the limit, does not.
    @Test func aReadCutInsideABatchTellsItsLength() throws {
        try Self.withLog { _, log, all throws in
            var reader = RawBatchReader(log: log, from: 0)
            var buffer = [UInt8](repeating: 0, count: all[0].bytes.count + all[1].bytes.count / 2)
            let first = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) }
            #expect(first == .batches([StoredBatchEnd(nextOffset: all[0].header.nextOffset, bytes: all[0].bytes.count)]))
            #expect(reader.nextBatchBytes == all[1].bytes.count)

            var whole = [UInt8](repeating: 0, count: all[1].bytes.count)
            _ = try whole.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) }
            #expect(reader.nextBatchBytes == nil, "the read ended exactly at a batch's end")
            #expect(reader.nextOffset == all[1].header.nextOffset)

            var large = [UInt8](repeating: 0, count: 1 << 20)
            _ = try large.withUnsafeMutableBytes { try reader.read(into: $0, below: all[2].header.nextOffset) }
            #expect(reader.nextBatchBytes == nil, "stopped by the limit, not by the buffer")
        }
    }

    @Test func anOffsetInsideABatchOrATruncationBelowTheReaderThrows() throws {
        try Self.withLog { _, log, all throws in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var inside = RawBatchReader(log: log, from: all[1].header.firstOffset + 1)  // batch 1 holds 2 records
            #expect(throws: LogError.self) { try buffer.withUnsafeMutableBytes { try inside.read(into: $0, below: log.nextOffset) } }
            var reader = RawBatchReader(log: log, from: 0)
            _ = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) }
            let passed = reader.nextOffset
            try log.truncate(after: passed - 2)
            #expect(throws: LogError.truncated(readerOffset: passed, newNextOffset: passed - 1)) {
                try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) }
            }
        }
    }

    @Test func aGatheredWriteIsTheConcatenation() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        let file = try PosixFileSystem().openFile(directory.path + "/gather", create: true)
        // More parts than one pwritev takes, some empty, at a position past the start.
        let parts = (0..<300).map { i in [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: (i * 7919) % 5000) }
        try file.write(gathering: parts, at: 100)
        let expected = parts.flatMap { $0 }
        var read = [UInt8](repeating: 0, count: expected.count + 10)
        let count = try read.withUnsafeMutableBytes { try file.read(into: $0, at: 100) }
        #expect(count == expected.count)
        #expect(Array(read[..<count]) == expected)
    }
}
