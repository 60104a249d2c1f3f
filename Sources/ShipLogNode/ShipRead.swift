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

    /// Reads whole stored batches straight into the send buffer's free space (at most `room`
    /// bytes) with `read`, which reports where each ends from the start of the space it was
    /// given; nothing is copied again. What `read` wrote past the last whole batch is dropped.
    mutating func fill(room: Int, _ read: (UnsafeMutableRawBufferPointer) throws -> RawBatchRead) rethrows -> RawBatchRead {
        precondition(room > 0, "a read of \(room) bytes")
        let before = bytes
        var result = RawBatchRead.batches([])
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { space in
            result = try read(UnsafeMutableRawBufferPointer(rebasing: space[..<room]))
            guard case .batches(let found) = result else { return 0 }
            return found.last?.bytes ?? 0
        }
        if case .batches(let found) = result {
            for end in found {
                precondition(end.nextOffset > nextOffset, "batch ending at \(end.nextOffset) after \(nextOffset)")
                ends.append(BatchEnd(nextOffset: end.nextOffset, bytes: before + end.bytes))
            }
        }
        return result
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

/// Reads one follower's stream for shipping, on a thread pool thread. It keeps its place from
/// one read to the next, so consecutive ships read each segment front to back, and reads the
/// stored bytes straight into the send buffer (`RawBatchReader`): one pread per segment a ship
/// touches, no copy per batch and no CRC check here. That is safe because the follower checks
/// every batch's CRC before it writes it or acknowledges it (`FollowerReplicator`), and a
/// corrupt batch closes its connection; the primary's own reads for clients still check.
/// Used by one pool job at a time (the driver starts a read only after the last one ended,
/// or gives up this reader for a new one).
final class ShipReader: @unchecked Sendable {
    let log: SegmentLog
    let allocator: ByteBufferAllocator
    private var reader: RawBatchReader?
    /// Reads per ship, at most: one per segment it spans, and two when the first batch is
    /// larger than asked for (ships are ~1 MiB, segments far larger).
    static let readsPerShipMax = 16

    init(log: SegmentLog, allocator: ByteBufferAllocator) {
        self.log = log
        self.allocator = allocator
    }

    /// Whole batches from `from` (a batch boundary), up to `maxBytes` (at least one when there
    /// is one, however large), none reaching `limit` or past.
    func read(from: UInt64, maxBytes: Int, below limit: UInt64) throws -> ShipRead {
        var read = ShipRead(from: from, allocator: allocator, capacity: maxBytes)
        guard from < limit else { return read }
        if reader == nil || reader!.nextOffset != from { reader = RawBatchReader(log: log, from: from) }
        do {
            var room = maxBytes
            for _ in 0..<Self.readsPerShipMax where room > 0 {
                switch try read.fill(room: room, { try reader!.read(into: $0, below: limit) }) {
                case .batches(let ends) where ends.isEmpty:
                    return read
                case .batches:
                    room = maxBytes - read.bytes
                    // The next batch was seen and is longer than the room left: a read now
                    // would pread up to `room` bytes only to return none of them.
                    if let next = reader!.nextBatchBytes, next > room { return read }
                case .needsBytes(let bytes):
                    // Only a ship's first batch may exceed what it asked for.
                    guard read.batchCount == 0 else { return read }
                    room = bytes
                }
            }
        } catch {
            reader = nil
            throw error
        }
        return read
    }
}
