/// The epoch checkpoint file `EPOCHS` (format.md §12): the log's `EpochHistory` kept on disk
/// beside the segments, like Kafka's `leader-epoch-checkpoint`.
///
/// 20 + 16 × n bytes: magic `SHIPEPO\0`; version u32; entry count n u32; n entries of
/// (epoch u64, start offset u64), increasing in epoch and non-decreasing in start offset;
/// CRC32C u32 of every byte before it.
public enum EpochCheckpoint {
    /// Bytes before the entries: magic, version, count.
    static let headerBytes = 16
    static let entryBytes = 16
    static let checksumBytes = 4

    public static func encoded(_ history: EpochHistory) -> [UInt8] {
        let entries = history.entries
        precondition(entries.count <= Format.epochCheckpointEntriesMax, "too many epochs for one checkpoint")
        let body = headerBytes + entries.count * entryBytes
        var bytes = [UInt8](repeating: 0, count: body + checksumBytes)
        bytes.withUnsafeMutableBytes { out in
            out.copyBytes(from: Format.epochCheckpointMagic)
            out.setLittleEndian(Format.epochCheckpointVersion, at: 8)
            out.setLittleEndian(UInt32(entries.count), at: 12)
            for (i, entry) in entries.enumerated() {
                out.setLittleEndian(entry.epoch, at: headerBytes + i * entryBytes)
                out.setLittleEndian(entry.startOffset, at: headerBytes + i * entryBytes + 8)
            }
            out.setLittleEndian(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<body])), at: body)
        }
        return bytes
    }

    /// Why bytes are not a checkpoint this code can use. Like an index file (§5), the
    /// checkpoint can be rebuilt from the batches, so every failure here means "rebuild",
    /// an unknown version included.
    public enum DecodeFailure: Error, Sendable, Equatable, CustomStringConvertible {
        case tooShort(Int)
        case badMagic
        case unsupportedVersion(UInt32)
        case wrongLength(expected: Int, actual: Int)
        case checksumMismatch
        case unordered(index: Int)

        public var description: String {
            switch self {
            case .tooShort(let n): return "\(n) bytes, shorter than an empty checkpoint"
            case .badMagic: return "bad magic"
            case .unsupportedVersion(let v): return "format version \(v) is not supported"
            case .wrongLength(let expected, let actual): return "\(actual) bytes where its entry count needs \(expected)"
            case .checksumMismatch: return "CRC32C mismatch"
            case .unordered(let i): return "entry \(i) does not grow in epoch and start offset"
            }
        }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<EpochHistory, DecodeFailure> {
        guard bytes.count >= headerBytes + checksumBytes else { return .failure(.tooShort(bytes.count)) }
        guard bytes.prefix(8).elementsEqual(Format.epochCheckpointMagic) else { return .failure(.badMagic) }
        let version: UInt32 = bytes.getLittleEndian(at: 8)
        guard version == Format.epochCheckpointVersion else { return .failure(.unsupportedVersion(version)) }
        let count = Int(bytes.getLittleEndian(at: 12, as: UInt32.self))
        // Bounded before multiplying, so a damaged count cannot overflow or mislead.
        let expected = count <= Format.epochCheckpointEntriesMax ? headerBytes + count * entryBytes + checksumBytes : -1
        guard bytes.count == expected else { return .failure(.wrongLength(expected: expected, actual: bytes.count)) }
        let body = expected - checksumBytes
        guard bytes.getLittleEndian(at: body, as: UInt32.self) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<body]))
        else { return .failure(.checksumMismatch) }
        var entries: [EpochHistory.Entry] = []
        entries.reserveCapacity(count)
        for i in 0..<count {
            let entry = EpochHistory.Entry(epoch: bytes.getLittleEndian(at: headerBytes + i * entryBytes),
                                           startOffset: bytes.getLittleEndian(at: headerBytes + i * entryBytes + 8))
            if let last = entries.last, !(last.epoch < entry.epoch && last.startOffset <= entry.startOffset) {
                return .failure(.unordered(index: i))
            }
            entries.append(entry)
        }
        return .success(EpochHistory(entries: entries))
    }
}
