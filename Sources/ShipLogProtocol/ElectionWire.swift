/// Little-endian reading and writing for the election's bytes (format.md §13): the messages and
/// the state file. Reading never traps: a short buffer is an error naming the field and position.
struct ElectionWireWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// An optional u64 as a presence byte (0 or 1) then the value (0 when absent): fixed width,
    /// so every message of a kind has one length.
    mutating func optionalU64(_ value: UInt64?) {
        u8(value == nil ? 0 : 1)
        u64(value ?? 0)
    }

    /// `LogEnd`: next offset u64, then the last epoch as an optional u64 (17 bytes).
    mutating func logEnd(_ end: LogEnd) {
        u64(end.nextOffset)
        optionalU64(end.lastEpoch)
    }
}

struct ElectionWireReader {
    private let bytes: UnsafeRawBufferPointer
    private(set) var position = 0
    /// Names the structure in errors ("voteRequest", "state file").
    let structure: String

    init(_ bytes: UnsafeRawBufferPointer, structure: String) {
        self.bytes = bytes
        self.structure = structure
    }

    var remaining: Int { bytes.count - position }

    private mutating func take(_ width: Int, field: String) throws(ElectionCodecError) -> UnsafeRawBufferPointer {
        guard remaining >= width else {
            throw .truncated(structure: structure, field: field, at: position, needed: width, available: remaining)
        }
        defer { position += width }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + width])
    }

    mutating func u8(_ field: String) throws(ElectionCodecError) -> UInt8 {
        try take(1, field: field)[0]
    }

    mutating func u32(_ field: String) throws(ElectionCodecError) -> UInt32 {
        UInt32(littleEndian: try take(4, field: field).loadUnaligned(as: UInt32.self))
    }

    mutating func u64(_ field: String) throws(ElectionCodecError) -> UInt64 {
        UInt64(littleEndian: try take(8, field: field).loadUnaligned(as: UInt64.self))
    }

    mutating func raw(_ width: Int, field: String) throws(ElectionCodecError) -> [UInt8] {
        Array(try take(width, field: field))
    }

    /// A presence byte of 0 or 1; anything else is invalid, and an absent value must be 0, so
    /// that one message has exactly one encoding.
    mutating func optionalU64(_ field: String) throws(ElectionCodecError) -> UInt64? {
        let tagAt = position
        let tag = try u8(field + " presence")
        let value = try u64(field)
        switch tag {
        case 0:
            guard value == 0 else {
                throw .invalidValue(structure: structure, field: field, at: tagAt + 1, value: value, reason: "absent but not 0")
            }
            return nil
        case 1: return value
        default:
            throw .invalidValue(structure: structure, field: field + " presence", at: tagAt, value: UInt64(tag), reason: "must be 0 or 1")
        }
    }

    mutating func logEnd(_ field: String) throws(ElectionCodecError) -> LogEnd {
        let next = try u64(field + ".nextOffset")
        let lastEpoch = try optionalU64(field + ".lastEpoch")
        return LogEnd(nextOffset: next, lastEpoch: lastEpoch)
    }

    /// Flag bits outside `allowed` must be 0 (room for later versions, never silently ignored).
    mutating func flags(_ field: String, allowed: UInt8) throws(ElectionCodecError) -> UInt8 {
        let at = position
        let value = try u8(field)
        guard value & ~allowed == 0 else {
            throw .invalidValue(structure: structure, field: field, at: at, value: UInt64(value), reason: "unknown flag bits")
        }
        return value
    }

    func expectEnd() throws(ElectionCodecError) {
        guard remaining == 0 else { throw .trailingBytes(structure: structure, at: position, count: remaining) }
    }
}

/// What is wrong with election bytes: the structure, the field and the byte position.
public enum ElectionCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case unknownKind(UInt8)
    case truncated(structure: String, field: String, at: Int, needed: Int, available: Int)
    case trailingBytes(structure: String, at: Int, count: Int)
    case invalidValue(structure: String, field: String, at: Int, value: UInt64, reason: String)
    case badMagic(structure: String)
    case unsupportedVersion(structure: String, version: UInt32)
    case checksumMismatch(structure: String, stored: UInt32, computed: UInt32)

    public var description: String {
        switch self {
        case .empty: return "election message: no bytes"
        case .unknownKind(let kind): return "election message: unknown kind \(kind) at byte 0"
        case .truncated(let s, let f, let at, let needed, let available):
            return "\(s): \(f) at byte \(at) needs \(needed) bytes, \(available) left"
        case .trailingBytes(let s, let at, let count): return "\(s): \(count) unexpected bytes from byte \(at)"
        case .invalidValue(let s, let f, let at, let value, let reason):
            return "\(s): \(f) at byte \(at) is \(value): \(reason)"
        case .badMagic(let s): return "\(s): bad magic"
        case .unsupportedVersion(let s, let version): return "\(s): unsupported version \(version)"
        case .checksumMismatch(let s, let stored, let computed):
            return "\(s): CRC32C stored \(stored), computed \(computed)"
        }
    }
}
