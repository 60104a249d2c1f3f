import NIOCore
import ShipLogProtocol
import ShipLogStorage

/// What one `ship` sends: stored batches back to back, byte for byte as stored. The batches are
/// copied once, from the log's read into this buffer, and the buffer goes to the socket as it
/// is, behind a separate 25-byte head (`frame`): no `Frame` is built and nothing is encoded or
/// copied again on the event loop. (Writing the head into this buffer on the loop would copy
/// it: the future that carried the read still holds a reference.)
struct ShipRead: Sendable {
    /// The stored batches.
    private var buffer: ByteBuffer
    /// The offset the first batch starts at.
    let from: UInt64
    /// After each batch: the offset after it and the stored bytes up to its end.
    private(set) var ends: [BatchEnd] = []
    struct BatchEnd: Sendable, Equatable { var nextOffset: UInt64; var bytes: Int }

    init(from: UInt64, allocator: ByteBufferAllocator, capacity: Int) {
        self.from = from
        buffer = allocator.buffer(capacity: capacity)
    }

    var nextOffset: UInt64 { ends.last?.nextOffset ?? from }
    /// Stored bytes of the batches.
    var bytes: Int { ends.last?.bytes ?? 0 }
    var batchCount: Int { ends.count }

    /// Adds a whole stored batch holding offsets `nextOffset`..<`batchNextOffset`.
    mutating func append(_ batch: [UInt8], batchNextOffset: UInt64) {
        precondition(batchNextOffset > nextOffset, "batch ending at \(batchNextOffset) after \(nextOffset)")
        buffer.writeBytes(batch)
        ends.append(BatchEnd(nextOffset: batchNextOffset, bytes: bytes + batch.count))
    }

    /// Keeps the batches a ship of `maxBytes` would have read (up to and including the first
    /// that reaches `maxBytes`, at least one): a read made ahead may hold more than the
    /// machine's next `ship` allows once the follower's in-flight bytes near their cap.
    mutating func trim(toAbout maxBytes: Int) {
        guard let keep = ends.firstIndex(where: { $0.bytes >= maxBytes }), keep + 1 < ends.count else { return }
        ends.removeSubrange((keep + 1)...)
        buffer.moveWriterIndex(to: bytes)
    }

    /// The `batches` frame in two parts, head then batches: together exactly what
    /// `FrameCodec.encode(.batches(...))` writes.
    func frame(epoch: UInt64, commitOffset: UInt64, allocator: ByteBufferAllocator) -> (head: ByteBuffer, batches: ByteBuffer) {
        var head = allocator.buffer(capacity: FrameCodec.batchesHeadBytes)
        let (count, bytes) = (batchCount, bytes)
        head.writeWithUnsafeMutableBytes(minimumWritableBytes: FrameCodec.batchesHeadBytes) { space in
            FrameCodec.encodeBatchesHead(epoch: epoch, commitOffset: commitOffset, batchCount: count, batchBytes: bytes,
                                         into: UnsafeMutableRawBufferPointer(rebasing: space[..<FrameCodec.batchesHeadBytes]))
            return FrameCodec.batchesHeadBytes
        }
        return (head, buffer)
    }
}

/// Offset `offset` was asked for but a batch starts below it and holds it.
struct NotABatchBoundary: Error, CustomStringConvertible {
    var offset: UInt64; var batchStart: UInt64
    var description: String { "offset \(offset) is not a batch boundary (the batch holding it starts at \(batchStart))" }
}

/// Reads one follower's stream for shipping, on a thread pool thread. It keeps its cursor
/// from one read to the next, so consecutive ships read each segment front to back in large
/// reads instead of locating their start and refilling a fresh buffer every time.
/// Used by one pool job at a time (the driver starts a read only after the last one ended,
/// or gives up this reader for a new one).
final class ShipReader: @unchecked Sendable {
    /// The cursor's read size: a ship of 1 MiB takes one or two reads.
    static let readBufferBytes = 1 << 20
    let log: SegmentLog
    let allocator: ByteBufferAllocator
    private var cursor: BatchCursor?
    /// A batch the cursor returned that the last read did not take (past its size or limit).
    private var held: StoredBatch?

    init(log: SegmentLog, allocator: ByteBufferAllocator) {
        self.log = log
        self.allocator = allocator
    }

    /// Whole batches from `from` (a batch boundary), about `maxBytes` (the last one may overshoot,
    /// at least one when there is one), none reaching `limit` or past.
    func read(from: UInt64, maxBytes: Int, below limit: UInt64) throws -> ShipRead {
        var read = ShipRead(from: from, allocator: allocator, capacity: min(maxBytes, Self.readBufferBytes) + (64 << 10))
        guard from < limit else { return read }
        if cursor == nil || (held?.header.firstOffset ?? cursor!.nextOffset) != from {
            cursor = log.batches(from: from, bufferBytes: Self.readBufferBytes)
            held = nil
        }
        do {
            while read.bytes < maxBytes {
                let batch: StoredBatch
                if let next = held {
                    batch = next
                    held = nil
                } else if let next = try cursor!.next() {
                    batch = next
                } else {
                    break
                }
                if read.batchCount == 0, batch.header.firstOffset != from {
                    throw NotABatchBoundary(offset: from, batchStart: batch.header.firstOffset)
                }
                guard batch.header.firstOffset == read.nextOffset, batch.header.nextOffset <= limit else {
                    held = batch
                    break
                }
                read.append(batch.bytes, batchNextOffset: batch.header.nextOffset)
            }
        } catch {
            cursor = nil
            held = nil
            throw error
        }
        return read
    }
}
