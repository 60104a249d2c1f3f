import Foundation
@testable import ShipLogStorage
import Testing

/// review11: a batch header on the primary's disk whose length runs past the end of its
/// segment (a damaged length field, or a segment file cut short under the log) must be
/// reported as corruption by `RawBatchReader`, as `BatchCursor` reports it. Returning no
/// batches instead makes the primary's ship look empty: the machine then waits for the next
/// append and ships the same nothing again, so the follower is stuck below the damage
/// without an error anywhere.
@Suite struct Review11RawReaderTests {
    /// The segment file holding `batch` and the position of its first byte there.
    static func place(of batch: [UInt8], in directory: String) throws -> (path: String, position: Int)? {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](data)
            let needle = Array(batch.prefix(Format.batchHeaderBytes))
            guard bytes.count >= needle.count else { continue }
            for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
                if Array(bytes[start..<start + needle.count]) == needle { return (path, start) }
            }
        }
        return nil
    }

    static func overwrite(_ path: String, at position: Int, _ bytes: [UInt8]) throws {
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(position))
        handle.write(Data(bytes))
    }

    @Test func aHeaderWhoseLengthRunsPastItsSegmentIsCorruption() throws {
        try RawBatchReaderTests.withLog { directory, log, all throws in
            let victim = all[2]
            let (path, position) = try #require(try Self.place(of: victim.bytes, in: directory.logPath))
            // storedBytes (and uncompressedBytes, equal for an uncompressed batch) say 100,000:
            // a valid header, and a batch far past the 8 KiB segment's end.
            let claimed = UInt32(100_000)
            let le = (0..<4).map { UInt8(truncatingIfNeeded: claimed >> (8 * UInt32($0))) }
            if victim.header.codec == .none { try Self.overwrite(path, at: position + 40, le) }
            try Self.overwrite(path, at: position + 44, le)

            var cursor = log.batches(from: victim.header.firstOffset)
            #expect(throws: LogError.self, "BatchCursor reports the damage") { _ = try cursor.next() }

            var reader = RawBatchReader(log: log, from: victim.header.firstOffset)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var outcome: Result<RawBatchRead, any Error> = .success(.batches([]))
            for _ in 0..<4 {
                outcome = Result { try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) } }
                guard case .success(.batches(let ends)) = outcome, ends.isEmpty else { break }
            }
            #expect(throws: LogError.self, "RawBatchReader reports it too, instead of an empty read below the log end") {
                _ = try outcome.get()
            }
        }
    }

    /// A segment file cut short under the log (below the end the log published) is damage too:
    /// the whole batches before the cut are read, then the reader throws instead of returning
    /// nothing for ever.
    @Test func aSegmentFileEndingBeforeTheLogsEndIsCorruption() throws {
        try RawBatchReaderTests.withLog { directory, log, all throws in
            let (path, position) = try #require(try Self.place(of: all[2].bytes, in: directory.logPath))
            #expect(truncate(path, off_t(position + 10)) == 0)

            var reader = RawBatchReader(log: log, from: 0)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var read: [StoredBatchEnd] = []
            var outcome: Result<RawBatchRead, any Error> = .success(.batches([]))
            for _ in 0..<4 {
                outcome = Result { try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) } }
                guard case .success(.batches(let ends)) = outcome else { break }
                read += ends
            }
            #expect(read.map(\.nextOffset) == [all[0].header.nextOffset, all[1].header.nextOffset])
            #expect(throws: LogError.self) { _ = try outcome.get() }
        }
    }

    /// A damaged length that still fits in the segment but exceeds the log's `maxBatchBytes` is
    /// corruption at that header: not a `needsBytes` asking the primary to allocate and read that
    /// much (a small buffer), nor a batch taken whole with the bytes after it (a large one).
    @Test func aHeaderLongerThanMaxBatchBytesIsCorruptionAtItsPosition() throws {
        var options = smallOptions(segmentBytes: 1 << 20)
        options.maxBatchBytes = 1024
        options.maxRecordBytes = 512
        try RawBatchReaderTests.withLog(options: options) { directory, log, all throws in
            let victim = all[2]
            let (path, position) = try #require(try Self.place(of: victim.bytes, in: directory.logPath))
            // 20,000 bytes: far over maxBatchBytes, well inside the one segment's published bytes.
            let claimed = UInt32(20_000)
            #expect(all[3...].reduce(0) { $0 + $1.bytes.count } > Int(claimed))
            let le = (0..<4).map { UInt8(truncatingIfNeeded: claimed >> (8 * UInt32($0))) }
            if victim.header.codec == .none { try Self.overwrite(path, at: position + 40, le) }
            try Self.overwrite(path, at: position + 44, le)

            for bufferBytes in [4096, 1 << 20] {
                var reader = RawBatchReader(log: log, from: victim.header.firstOffset)
                var buffer = [UInt8](repeating: 0, count: bufferBytes)
                do {
                    let result = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) }
                    Issue.record("a \(bufferBytes)-byte read returned \(result) instead of throwing")
                } catch LogError.corruption(let file, let at, let offset, let reason) {
                    #expect(file == path)
                    #expect(at == Int64(position))
                    #expect(offset == victim.header.firstOffset)
                    #expect(reason.contains("maxBatchBytes"))
                }
            }
            // From the start, the two whole batches before it are read first, then the same error.
            var reader = RawBatchReader(log: log, from: 0)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            let first = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) }
            #expect(first == .batches([StoredBatchEnd(nextOffset: all[0].header.nextOffset, bytes: all[0].bytes.count),
                                       StoredBatchEnd(nextOffset: all[1].header.nextOffset,
                                                      bytes: all[0].bytes.count + all[1].bytes.count)]))
            #expect(throws: LogError.self) { _ = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, below: log.nextOffset) } }
        }
    }
}
