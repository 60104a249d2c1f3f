import ShipLogStorage

/// The result of looking at the front of a receive buffer.
public enum FrameDecodeResult: Equatable, Sendable {
    /// One whole frame, `consumed` bytes long (header included).
    case frame(Frame, consumed: Int)
    /// The buffer holds the start of a frame; read more.
    case needMoreBytes
    /// The bytes are not a valid frame: close the connection with `reason`.
    case invalid(FrameError)
}

/// Why bytes are not a frame: the close reason to send, and a message naming the frame type,
/// the field and its byte position inside the payload.
public struct FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: CloseReason
    public var message: String
    public init(reason: CloseReason, message: String) {
        self.reason = reason
        self.message = message
    }
    public var description: String { "\(reason): \(message)" }
}

/// Frame type codes (format.md §11.1).
public enum FrameType: UInt8, Sendable, CaseIterable {
    case hello = 1, challenge = 2, proof = 3
    case follow = 16, followReply = 17, batches = 18, ack = 19, heartbeat = 20
    case election = 24
    case statusRequest = 32, statusReply = 33, goodbye = 34, switchoverRequest = 35
}

/// The only encoder and decoder of frames (format.md §11): u32 LE length of type + payload,
/// u8 type, payload. The shell never builds or parses frame bytes itself.
public enum FrameCodec {
    /// Length (4) and type (1).
    public static let headerBytes = 5
    /// Nonces and MACs are exactly this long.
    public static let nonceBytes = 32
    public static let macBytes = 32

    public static func encode(_ frame: Frame) -> [UInt8] {
        var bytes: [UInt8] = []
        encode(frame, into: &bytes)
        return bytes
    }

    /// Appends the frame to `bytes`.
    public static func encode(_ frame: Frame, into bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
        var w = ByteWriter(bytes: bytes)
        bytes = []
        w.u8(frame.type.rawValue)
        switch frame {
        case .hello(let h):
            w.u16(h.protocolVersion); w.u64(h.nodeID.rawValue); w.shortBytes(h.nonce)
        case .challenge(let c):
            w.u64(c.nodeID.rawValue); w.shortBytes(c.nonce); w.shortBytes(c.mac)
        case .proof(let p):
            w.shortBytes(p.mac)
        case .follow(let f):
            w.u64(f.logEnd.nextOffset)
            w.u8(f.logEnd.lastEpoch == nil ? 0 : f.logEnd.lastEpochStart == nil ? 1 : 2)
            w.u64(f.logEnd.lastEpoch ?? 0)
            w.u64(f.logEnd.lastEpochStart ?? 0)
            w.u64(f.knownEpoch)
        case .followReply(let r):
            w.u8(r.kind.rawValue); w.u64(r.offset); w.u64(r.epoch)
        case .batches(let b):
            w.u64(b.epoch); w.u64(b.commitOffset); w.u32(UInt32(b.batches.count))
            for batch in b.batches { w.bytes.append(contentsOf: batch) }
        case .ack(let a):
            w.u64(a.progress.received); w.u64(a.progress.written); w.u64(a.progress.durable)
        case .heartbeat(let h):
            w.u64(h.epoch); w.u64(h.commitOffset); w.u64(h.primaryNextOffset)
        case .election(let message):
            w.bytes.append(contentsOf: message)
        case .statusRequest:
            break
        case .statusReply(let s):
            w.bytes.append(contentsOf: s.json)
        case .switchoverRequest(let target):
            w.u64(target.rawValue)
        case .goodbye(let g):
            w.u16(g.reason.rawValue); w.bytes.append(contentsOf: Array(g.message.utf8))
        }
        bytes = w.bytes
        let length = bytes.count - start - 4
        precondition(length <= Int(UInt32.max), "frame of \(length) bytes")
        for i in 0..<4 { bytes[start + i] = UInt8(truncatingIfNeeded: UInt32(length) >> (8 * UInt32(i))) }
    }

    /// The bytes in front of a `batches` frame's stored batches: length, type and the 20-byte
    /// prefix (format.md §11: u64 epoch, u64 commit offset, u32 batch count).
    public static let batchesHeadBytes = headerBytes + 20

    /// Writes the first `batchesHeadBytes` of a `batches` frame whose stored batches, `batchCount`
    /// of them and `batchBytes` long in all, follow it verbatim: the head followed by the batches
    /// is exactly `encode(.batches(...))`. For a shell that reads stored batches straight into
    /// its send buffer (the batches are stored bytes, never re-encoded) instead of building a
    /// `Frame` and copying them again.
    public static func encodeBatchesHead(epoch: UInt64, commitOffset: UInt64, batchCount: Int, batchBytes: Int,
                                         into head: UnsafeMutableRawBufferPointer) {
        precondition(head.count >= batchesHeadBytes, "a batches head needs \(batchesHeadBytes) bytes, got \(head.count)")
        precondition(batchCount >= 0 && batchCount <= Int(UInt32.max) && batchBytes >= 0, "batch count \(batchCount), bytes \(batchBytes)")
        let length = 1 + 20 + batchBytes
        precondition(length <= Int(UInt32.max), "frame of \(length) bytes")
        func put<T: FixedWidthInteger>(_ value: T, at position: Int) {
            for i in 0..<MemoryLayout<T>.size { head[position + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        put(UInt32(length), at: 0)
        head[4] = FrameType.batches.rawValue
        put(epoch, at: 5)
        put(commitOffset, at: 13)
        put(UInt32(batchCount), at: 21)
    }

    /// Looks at the front of `bytes`. A length above `maxFrameBytes` (header included) is
    /// invalid as soon as the 4 length bytes are there, before any of the body arrives.
    public static func decode(_ bytes: UnsafeRawBufferPointer, maxFrameBytes: Int) -> FrameDecodeResult {
        guard bytes.count >= 4 else { return .needMoreBytes }
        var length: UInt64 = 0
        for i in 0..<4 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length + 4 <= UInt64(max(maxFrameBytes, 0)) else {
            return .invalid(FrameError(reason: .frameTooLarge,
                                       message: "frame length \(length) + 4 exceeds the maximum \(maxFrameBytes)"))
        }
        guard length >= 1 else {
            return .invalid(FrameError(reason: .malformedFrame, message: "frame length 0 has no type byte"))
        }
        let total = 4 + Int(length)
        guard bytes.count >= total else { return .needMoreBytes }
        let typeByte = bytes[4]
        guard let type = FrameType(rawValue: typeByte) else {
            return .invalid(FrameError(reason: .malformedFrame, message: "unknown frame type \(typeByte) at byte 4"))
        }
        var reader = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[headerBytes..<total]), type: type)
        do {
            let frame = try FrameDecoding.payload(type, &reader)
            try reader.expectEnd()
            return .frame(frame, consumed: total)
        } catch {
            return .invalid(error)
        }
    }

    /// Convenience for tests and tools: decodes from an array.
    public static func decode(_ bytes: [UInt8], maxFrameBytes: Int) -> FrameDecodeResult {
        bytes.withUnsafeBytes { decode($0, maxFrameBytes: maxFrameBytes) }
    }
}

extension Frame {
    /// The type code this frame is encoded with.
    public var type: FrameType {
        switch self {
        case .hello: .hello
        case .challenge: .challenge
        case .proof: .proof
        case .follow: .follow
        case .followReply: .followReply
        case .batches: .batches
        case .ack: .ack
        case .heartbeat: .heartbeat
        case .election: .election
        case .statusRequest: .statusRequest
        case .statusReply: .statusReply
        case .switchoverRequest: .switchoverRequest
        case .goodbye: .goodbye
        }
    }
}

/// Little-endian appends.
struct ByteWriter {
    var bytes: [UInt8]
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt16(i)))) } }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    /// u8 length, then the bytes (nonces and MACs).
    mutating func shortBytes(_ v: [UInt8]) {
        precondition(v.count <= 255, "short byte string of \(v.count) bytes")
        u8(UInt8(v.count)); bytes.append(contentsOf: v)
    }
}
