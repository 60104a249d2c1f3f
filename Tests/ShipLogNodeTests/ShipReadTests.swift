import NIOCore
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// The primary's read path: `ShipReader` reads stored batches straight into a send buffer and
/// keeps its place between reads (raw reads, no CRC check); the frame it gives is exactly what `FrameCodec` encodes.
@Suite struct ShipReadTests {
    /// A log of 120 batches of 1 to 5 records of varied sizes, in small segments (reads cross them).
    static func makeLog(_ directory: TemporaryDirectory) throws -> SegmentLog {
        var options = LogOptions()
        options.segmentBytes = 64 << 10
        let log = try SegmentLog.open(directory: directory.sub("log"), options: options)
        for i in 0..<120 {
            _ = try log.append((0..<(i % 5 + 1)).map { record(i * 10 + $0, size: 50 + (i * 37) % 3000) }, epoch: 1)
        }
        return log
    }

    static func decodedBatches(_ read: ShipRead, epoch: UInt64 = 4, commit: UInt64 = 9) -> Frame.Batches? {
        let (head, batches) = read.frame(epoch: epoch, commitOffset: commit, allocator: ByteBufferAllocator())
        let frame = ByteBuffer(bytes: Array(head.readableBytesView) + Array(batches.readableBytesView))
        guard case .frame(.batches(let b), let consumed) = FrameCodec.decode(Array(frame.readableBytesView), maxFrameBytes: 1 << 26),
              consumed == frame.readableBytes else { return nil }
        return b
    }

    @Test func aReadFromEveryBatchIsTheLogsBatchesAndFramesAsTheEncoderWould() throws {
        let directory = try TemporaryDirectory()
        let log = try Self.makeLog(directory)
        defer { try? log.close() }
        let all = try log.read(from: 0, maxBytes: Int.max)
        #expect(all.count == 120)
        for (i, start) in all.enumerated() {
            for maxBytes in [1, 5000, 40_000, 1 << 20] {
                let read = try ShipReader(log: log, allocator: ByteBufferAllocator())
                    .read(from: start.header.firstOffset, maxBytes: maxBytes, below: log.nextOffset)
                // Whole batches within maxBytes, and at least one however large.
                var expected: [[UInt8]] = []
                var bytes = 0
                for batch in all[i...] {
                    guard expected.isEmpty || bytes + batch.bytes.count <= maxBytes else { break }
                    expected.append(batch.bytes)
                    bytes += batch.bytes.count
                }
                let b = try #require(Self.decodedBatches(read))
                #expect(b.batches == expected)
                #expect(read.bytes == bytes && read.batchCount == expected.count)
                let (head, body) = read.frame(epoch: 4, commitOffset: 9, allocator: ByteBufferAllocator())
                #expect(Array(head.readableBytesView) + Array(body.readableBytesView) == FrameCodec.encode(.batches(.init(epoch: 4, commitOffset: 9, batches: expected))))
            }
        }
    }

    /// One reader carried along a stream whose visible end moves up unevenly (the cursor and a
    /// batch held past the limit carry over): every batch exactly once, in order.
    @Test func oneReaderAlongTheWholeLogShipsEveryBatchOnce() throws {
        let directory = try TemporaryDirectory()
        let log = try Self.makeLog(directory)
        defer { try? log.close() }
        let all = try log.read(from: 0, maxBytes: Int.max)
        let reader = ShipReader(log: log, allocator: ByteBufferAllocator())
        var shipped: [[UInt8]] = []
        var next: UInt64 = 0
        var limit: UInt64 = 0
        for step in 0..<10_000 where next < log.nextOffset {
            limit = min(log.nextOffset, limit + UInt64(step % 7) * 3)
            let read = try reader.read(from: next, maxBytes: [100, 9000, 70_000][step % 3], below: limit)
            #expect(read.nextOffset <= limit)
            if read.batchCount > 0 { shipped += try #require(Self.decodedBatches(read)).batches }
            next = read.nextOffset
        }
        #expect(shipped == all.map(\.bytes))
    }

    @Test func aReadAheadTrimmedToASmallerShipKeepsWholeBatches() throws {
        let directory = try TemporaryDirectory()
        let log = try Self.makeLog(directory)
        defer { try? log.close() }
        let all = try log.read(from: 0, maxBytes: Int.max)
        var read = try ShipReader(log: log, allocator: ByteBufferAllocator()).read(from: 0, maxBytes: 1 << 20, below: log.nextOffset)
        read.trim(toAbout: all[0].bytes.count + 1)
        #expect(try #require(Self.decodedBatches(read)).batches == [all[0].bytes, all[1].bytes])
        read.trim(toAbout: 1)
        #expect(try #require(Self.decodedBatches(read)).batches == [all[0].bytes])
        #expect(read.nextOffset == all[0].header.nextOffset)
    }

    @Test func anOffsetInsideABatchIsRefused() throws {
        let directory = try TemporaryDirectory()
        let log = try Self.makeLog(directory)
        defer { try? log.close() }
        let reader = ShipReader(log: log, allocator: ByteBufferAllocator())
        // Batch 1 holds offsets 1 and 2.
        #expect(throws: LogError.self) { try reader.read(from: 2, maxBytes: 1000, below: log.nextOffset) }
        // The reader recovers: the next read from a boundary works.
        #expect(try reader.read(from: 1, maxBytes: 1, below: log.nextOffset).nextOffset == 3)
        #expect(try reader.read(from: log.nextOffset, maxBytes: 1000, below: log.nextOffset).batchCount == 0)
    }
}
