import ShipLogStorage

/// Decodes a `batches` frame from its bytes as they arrive, batch by batch, with the checks of
/// `FrameCodec.decode` (format.md §11.3): each header valid, each batch inside the frame,
/// offsets contiguous, epochs never decreasing and none above the frame's, nothing after the
/// last batch. For a shell receiving catch-up's megabyte frames: each batch's bytes are copied
/// once, from the receive buffers into the batch's own array, instead of the whole frame being
/// gathered into one buffer first and then copied out batch by batch. It never takes a byte past
/// the frame's end, so the next frame's bytes are left where they are.
public struct BatchesFrameAssembler: Sendable {
    /// The payload's length (the frame's length field minus the type byte).
    let payloadBytes: Int
    let epoch: UInt64
    let commitOffset: UInt64
    let count: Int
    /// Payload bytes taken so far (the 20-byte prefix included).
    private(set) var taken: Int
    private var batches: [[UInt8]] = []
    /// The batch being filled, once its header is known, and its header's facts.
    private var current: [UInt8] = []
    private var currentBytes = 0
    private var header: [UInt8] = []
    private var expectedOffset: UInt64? = nil
    private var lastEpoch: UInt64 = 0

    /// From the frame's first `FrameCodec.batchesHeadBytes` bytes: its length (already checked
    /// against the frame limit), type (`batches`) and prefix. Refuses a batch count the frame
    /// cannot hold, before allocating for it.
    init(length: Int, head: UnsafeRawBufferPointer) throws(FrameError) {
        precondition(head.count >= FrameCodec.batchesHeadBytes && head[4] == FrameType.batches.rawValue, "not a batches head")
        payloadBytes = length - 1
        var reader = ByteReader(UnsafeRawBufferPointer(rebasing: head[FrameCodec.headerBytes..<FrameCodec.batchesHeadBytes]), type: .batches)
        epoch = try reader.integer("epoch")
        commitOffset = try reader.integer("commit offset")
        let countAt = reader.position
        let count: UInt32 = try reader.integer("batch count")
        taken = 20
        let remaining = payloadBytes - taken
        guard remaining >= 0, UInt64(count) * UInt64(Format.batchHeaderBytes) <= UInt64(remaining) else {
            throw FrameError(reason: .malformedFrame, message: "batches frame, batch count at payload byte \(countAt): "
                + "\(count) batches cannot fit in \(max(remaining, 0)) bytes")
        }
        self.count = Int(count)
        batches.reserveCapacity(self.count)
    }

    /// All of the frame has been taken and checked.
    public var isComplete: Bool { taken == payloadBytes && batches.count == count }

    /// The decoded frame, once complete.
    public var frame: Frame.Batches {
        precondition(isComplete, "a batches frame taken \(taken) of \(payloadBytes) bytes")
        return Frame.Batches(epoch: epoch, commitOffset: commitOffset, batches: batches)
    }

    private func error(_ field: String, _ problem: String, reason: CloseReason = .malformedFrame) -> FrameError {
        FrameError(reason: reason, message: "batches frame, \(field) at payload byte \(taken): \(problem)")
    }

    /// Takes the frame's next bytes from the front of `bytes`, never past the frame's end;
    /// returns how many it took. Throws as `FrameCodec.decode` would for the whole frame.
    public mutating func take(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Int {
        var at = 0
        while at < bytes.count, !isComplete {
            let remaining = payloadBytes - taken
            if batches.count == count {
                throw error("end", "\(remaining) trailing bytes")
            }
            let field = "batch \(batches.count)"
            if currentBytes == 0 {
                // The header, perhaps split across reads.
                guard remaining >= Format.batchHeaderBytes - header.count else {
                    throw error(field, "header needs 48 bytes, \(remaining + header.count) left")
                }
                let n = min(Format.batchHeaderBytes - header.count, bytes.count - at)
                header.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[at..<at + n]))
                at += n
                taken += n
                guard header.count == Format.batchHeaderBytes else { continue }
                try startBatch(field, remainingAfterHeader: payloadBytes - taken)
            } else {
                let n = min(currentBytes - current.count, bytes.count - at)
                current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[at..<at + n]))
                at += n
                taken += n
            }
            if currentBytes > 0, current.count == currentBytes {
                batches.append(current)
                current = []
                currentBytes = 0
            }
        }
        // Every byte of the frame taken and a batch still missing (a count above the batches
        // sent): refused now, as the whole decode refuses it, not when the next frame's bytes
        // come (a peer that sends nothing more would leave it waiting). A batch never ends
        // past the frame (`startBatch`), so none is half taken here.
        if taken == payloadBytes, batches.count < count {
            throw error("batch \(batches.count)", "header needs 48 bytes, 0 left")
        }
        // Bytes after the last batch are refused on the next take (they are not here yet).
        return at
    }

    /// The header is whole: checks it as `FrameDecoding.batches` does and starts the batch's array.
    private mutating func startBatch(_ field: String, remainingAfterHeader: Int) throws(FrameError) {
        let decoded: BatchHeader
        switch header.withUnsafeBytes({ BatchHeader.decode($0) }) {
        case .success(let h): decoded = h
        case .failure(let failure):
            throw FrameError(reason: .malformedFrame, message: "batches frame, \(field) at payload byte \(taken - header.count): bad header: \(failure)")
        }
        let left = remainingAfterHeader + Format.batchHeaderBytes
        guard decoded.totalBytes <= left else { throw error(field, "is \(decoded.totalBytes) bytes, \(left) left") }
        if let expectedOffset, decoded.firstOffset != expectedOffset {
            throw error(field, "first offset \(decoded.firstOffset), expected \(expectedOffset)", reason: .outOfOrder)
        }
        guard decoded.leaderEpoch <= epoch, decoded.leaderEpoch >= lastEpoch else {
            throw error(field, "epoch \(decoded.leaderEpoch) outside \(lastEpoch)...\(epoch)", reason: .staleEpoch)
        }
        expectedOffset = decoded.nextOffset
        lastEpoch = decoded.leaderEpoch
        current = []
        current.reserveCapacity(decoded.totalBytes)
        current.append(contentsOf: header)
        currentBytes = decoded.totalBytes
        header.removeAll(keepingCapacity: true)
    }
}

extension FrameCodec {
    /// When `bytes` start with the head of a `batches` frame that has not all arrived yet: an
    /// assembler for the rest, and the head's length (`batchesHeadBytes`), to be consumed. nil
    /// when they do not (decode with `decode` as usual, which also reports a frame over
    /// `maxFrameBytes` from its length alone).
    public static func startBatches(_ bytes: UnsafeRawBufferPointer, maxFrameBytes: Int) throws(FrameError)
        -> (assembler: BatchesFrameAssembler, consumed: Int)? {
        guard bytes.count >= batchesHeadBytes, bytes[4] == FrameType.batches.rawValue else { return nil }
        var length: UInt64 = 0
        for i in 0..<4 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length + 4 <= UInt64(max(maxFrameBytes, 0)), bytes.count < Int(length) + 4 else { return nil }
        return (try BatchesFrameAssembler(length: Int(length), head: bytes), batchesHeadBytes)
    }
}
