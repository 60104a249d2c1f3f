import ShipLogStorage

/// Bounds-checked little-endian reads over one frame's payload; every failure names the frame
/// type, the field and its byte position in the payload.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    let type: FrameType
    var position = 0

    init(_ buffer: UnsafeRawBufferPointer, type: FrameType) {
        self.buffer = buffer
        self.type = type
    }

    var remaining: Int { buffer.count - position }

    func error(_ field: String, _ problem: String, at: Int? = nil, reason: CloseReason = .malformedFrame) -> FrameError {
        FrameError(reason: reason, message: "\(type) frame, \(field) at payload byte \(at ?? position): \(problem)")
    }

    mutating func integer<T: FixedWidthInteger>(_ field: String, _: T.Type = T.self) throws(FrameError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw error(field, "needs \(size) bytes, \(remaining) left") }
        var value: T = 0
        for i in 0..<size { value |= T(truncatingIfNeeded: buffer[position + i]) << (8 * i) }
        position += size
        return value
    }

    mutating func bytes(_ field: String, count: Int) throws(FrameError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw error(field, "needs \(count) bytes, \(remaining) left") }
        let out = Array(UnsafeRawBufferPointer(rebasing: buffer[position..<position + count]))
        position += count
        return out
    }

    /// u8 length that must equal `exactly`, then the bytes.
    mutating func fixedShortBytes(_ field: String, exactly: Int) throws(FrameError) -> [UInt8] {
        let at = position
        let length: UInt8 = try integer(field + " length")
        guard Int(length) == exactly else { throw error(field, "length \(length), must be \(exactly)", at: at) }
        return try bytes(field, count: exactly)
    }

    mutating func rest() -> [UInt8] {
        let out = Array(UnsafeRawBufferPointer(rebasing: buffer[position...]))
        position = buffer.count
        return out
    }

    func expectEnd() throws(FrameError) {
        guard remaining == 0 else { throw error("end", "\(remaining) trailing bytes") }
    }
}

enum FrameDecoding {
    static func payload(_ type: FrameType, _ r: inout ByteReader) throws(FrameError) -> Frame {
        switch type {
        case .hello:
            let version: UInt16 = try r.integer("protocol version")
            let node: UInt64 = try r.integer("node id")
            let nonce = try r.fixedShortBytes("nonce", exactly: FrameCodec.nonceBytes)
            return .hello(.init(protocolVersion: version, nodeID: NodeID(node), nonce: nonce))
        case .challenge:
            let node: UInt64 = try r.integer("node id")
            let nonce = try r.fixedShortBytes("nonce", exactly: FrameCodec.nonceBytes)
            let mac = try r.fixedShortBytes("mac", exactly: FrameCodec.macBytes)
            return .challenge(.init(nodeID: NodeID(node), nonce: nonce, mac: mac))
        case .proof:
            return .proof(.init(mac: try r.fixedShortBytes("mac", exactly: FrameCodec.macBytes)))
        case .follow:
            let next: UInt64 = try r.integer("next offset")
            let flagAt = r.position
            let hasEpoch: UInt8 = try r.integer("has last epoch")
            guard hasEpoch <= 2 else { throw r.error("has last epoch", "value \(hasEpoch), must be 0, 1 or 2", at: flagAt) }
            let epochAt = r.position
            let lastEpoch: UInt64 = try r.integer("last epoch")
            guard hasEpoch >= 1 || lastEpoch == 0 else { throw r.error("last epoch", "must be 0 when absent", at: epochAt) }
            let startAt = r.position
            let start: UInt64 = try r.integer("last epoch start")
            guard hasEpoch == 2 || start == 0 else { throw r.error("last epoch start", "must be 0 when absent", at: startAt) }
            guard hasEpoch < 2 || start < next else {
                throw r.error("last epoch start", "\(start) is not below the next offset \(next)", at: startAt)
            }
            let known: UInt64 = try r.integer("known epoch")
            let end = LogEnd(nextOffset: next, lastEpoch: hasEpoch >= 1 ? lastEpoch : nil, lastEpochStart: hasEpoch == 2 ? start : nil)
            return .follow(.init(logEnd: end, knownEpoch: known))
        case .followReply:
            let kindByte: UInt8 = try r.integer("kind")
            guard let kind = Frame.FollowReply.Kind(rawValue: kindByte) else {
                throw r.error("kind", "unknown code \(kindByte)", at: r.position - 1)
            }
            let offset: UInt64 = try r.integer("offset")
            let epoch: UInt64 = try r.integer("epoch")
            return .followReply(.init(kind: kind, offset: offset, epoch: epoch))
        case .batches:
            return .batches(try batches(&r))
        case .ack:
            let received: UInt64 = try r.integer("received")
            let written: UInt64 = try r.integer("written")
            let durable: UInt64 = try r.integer("durable")
            guard durable <= written, written <= received else {
                throw r.error("progress", "durable \(durable) <= written \(written) <= received \(received) does not hold", at: 0)
            }
            return .ack(.init(progress: FollowerProgress(received: received, written: written, durable: durable)))
        case .heartbeat:
            let epoch: UInt64 = try r.integer("epoch")
            let commit: UInt64 = try r.integer("commit offset")
            let next: UInt64 = try r.integer("primary next offset")
            return .heartbeat(.init(epoch: epoch, commitOffset: commit, primaryNextOffset: next))
        case .election:
            let message = r.rest()
            guard !message.isEmpty, message.count <= ElectionMessageCodec.messageBytesMax else {
                throw r.error("election message", "\(message.count) bytes, must be 1...\(ElectionMessageCodec.messageBytesMax)", at: 0)
            }
            return .election(message)
        case .statusRequest:
            return .statusRequest
        case .statusReply:
            return .statusReply(.init(json: r.rest()))
        case .switchoverRequest:
            return .switchoverRequest(target: NodeID(try r.integer("target", UInt64.self)))
        case .goodbye:
            let code: UInt16 = try r.integer("reason")
            guard let reason = CloseReason(rawValue: code) else { throw r.error("reason", "unknown code \(code)", at: 0) }
            let at = r.position
            let bytes = r.rest()
            guard let message = String(validating: bytes, as: UTF8.self) else {
                throw r.error("message", "not valid UTF-8", at: at)
            }
            return .goodbye(.init(reason: reason, message: message))
        }
    }

    /// Whole stored batches back to back; each header checked (not the CRC: the log checks
    /// it on append), offsets contiguous, epochs never decreasing and none above the frame's.
    static func batches(_ r: inout ByteReader) throws(FrameError) -> Frame.Batches {
        let epoch: UInt64 = try r.integer("epoch")
        let commit: UInt64 = try r.integer("commit offset")
        let countAt = r.position
        let count: UInt32 = try r.integer("batch count")
        // Each batch is at least a header: a count the bytes cannot hold is rejected before allocating.
        guard UInt64(count) * UInt64(Format.batchHeaderBytes) <= UInt64(r.remaining) else {
            throw r.error("batch count", "\(count) batches cannot fit in \(r.remaining) bytes", at: countAt)
        }
        var batches: [[UInt8]] = []
        batches.reserveCapacity(Int(count))
        var expectedOffset: UInt64? = nil
        var lastEpoch: UInt64 = 0
        for i in 0..<Int(count) {
            let at = r.position
            let field = "batch \(i)"
            guard r.remaining >= Format.batchHeaderBytes else { throw r.error(field, "header needs 48 bytes, \(r.remaining) left") }
            let header: BatchHeader
            switch BatchHeader.decode(UnsafeRawBufferPointer(rebasing: r.buffer[at..<at + Format.batchHeaderBytes])) {
            case .success(let h): header = h
            case .failure(let failure): throw r.error(field, "bad header: \(failure)")
            }
            guard header.totalBytes <= r.remaining else {
                throw r.error(field, "is \(header.totalBytes) bytes, \(r.remaining) left")
            }
            if let expectedOffset, header.firstOffset != expectedOffset {
                throw r.error(field, "first offset \(header.firstOffset), expected \(expectedOffset)", reason: .outOfOrder)
            }
            guard header.leaderEpoch <= epoch, header.leaderEpoch >= lastEpoch else {
                throw r.error(field, "epoch \(header.leaderEpoch) outside \(lastEpoch)...\(epoch)", reason: .staleEpoch)
            }
            expectedOffset = header.nextOffset
            lastEpoch = header.leaderEpoch
            batches.append(try r.bytes(field, count: header.totalBytes))
        }
        return Frame.Batches(epoch: epoch, commitOffset: commit, batches: batches)
    }
}
