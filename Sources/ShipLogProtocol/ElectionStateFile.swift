import ShipLogStorage

/// What a node must remember across crashes to keep the election safe (Raft's currentTerm and
/// votedFor): the newest epoch it has seen and whom it voted for in that epoch. `Election`
/// asks for it to be written with `.persist` before it acts on a change.
public struct ElectionDurableState: Equatable, Sendable {
    public var epoch: UInt64
    /// The candidate this node voted for in `epoch`; nil when it has not voted in it.
    public var votedFor: NodeID?
    public init(epoch: UInt64, votedFor: NodeID?) {
        self.epoch = epoch
        self.votedFor = votedFor
    }
    /// A node that never took part in an election.
    public static let initial = ElectionDurableState(epoch: 0, votedFor: nil)
}

/// The election state file (format.md §13.2), 36 bytes: magic `SHIPVOTE`, version u32, epoch
/// u64, voted-for as an optional u64 (presence byte then value), 3 reserved zero bytes, CRC32C
/// u32 of bytes 0..<32. The shell writes it as format.md §1 writes every small file: a `.tmp`
/// name, write, fsync, rename, fsync of the directory; so a crash leaves the old or the new file.
public enum ElectionStateFile {
    public static let fileName = "ELECTION"
    public static let byteCount = 36
    public static let version: UInt32 = 1
    static let magic: [UInt8] = Array("SHIPVOTE".utf8)
    static let checksummedBytes = 32

    public static func encode(_ state: ElectionDurableState) -> [UInt8] {
        var out = ElectionWireWriter(capacity: byteCount)
        for byte in magic { out.u8(byte) }
        out.u32(version)
        out.u64(state.epoch)
        out.optionalU64(state.votedFor?.rawValue)
        for _ in 0..<3 { out.u8(0) }
        let crc = CRC32C.checksum(out.bytes)
        out.u32(crc)
        precondition(out.bytes.count == byteCount)
        return out.bytes
    }

    /// The state in an intact file; a typed error for anything else. The shell must not treat a
    /// damaged file as "never voted": that could let the node vote twice in one epoch. It stops
    /// and says so (an operator can remove the file only when they know the node never voted).
    public static func decode(_ bytes: [UInt8]) throws(ElectionCodecError) -> ElectionDurableState {
        let structure = "election state file"
        guard bytes.count == byteCount else {
            if bytes.count < byteCount {
                throw .truncated(structure: structure, field: "file", at: 0, needed: byteCount, available: bytes.count)
            }
            throw .trailingBytes(structure: structure, at: byteCount, count: bytes.count - byteCount)
        }
        let result: Result<ElectionDurableState, ElectionCodecError> = bytes.withUnsafeBytes { buffer in
            do throws(ElectionCodecError) {
                var reader = ElectionWireReader(buffer, structure: structure)
                guard try reader.raw(magic.count, field: "magic") == magic else { throw .badMagic(structure: structure) }
                // The CRC before the fields: a torn or bit-flipped file is reported as such, not
                // as whatever its damaged fields happen to say.
                let stored = UnsafeRawBufferPointer(rebasing: buffer[checksummedBytes..<byteCount])
                    .loadUnaligned(as: UInt32.self).littleEndian
                let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<checksummedBytes]))
                guard stored == computed else {
                    throw .checksumMismatch(structure: structure, stored: stored, computed: computed)
                }
                let version = try reader.u32("version")
                guard version == Self.version else { throw .unsupportedVersion(structure: structure, version: version) }
                let epoch = try reader.u64("epoch")
                let votedFor = try reader.optionalU64("votedFor").map(NodeID.init)
                for index in 0..<3 {
                    let at = reader.position
                    let byte = try reader.u8("reserved")
                    guard byte == 0 else {
                        throw .invalidValue(structure: structure, field: "reserved[\(index)]", at: at, value: UInt64(byte), reason: "must be 0")
                    }
                }
                return .success(ElectionDurableState(epoch: epoch, votedFor: votedFor))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
