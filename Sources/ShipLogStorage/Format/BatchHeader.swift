/// The 48-byte header in front of every record batch (format.md §3).
///
/// | bytes | field |
/// |-------|-------|
/// | 0..<4 | magic `SLB1` |
/// | 4..<8 | CRC32C of bytes 8..<48 and the stored payload |
/// | 8 | format version |
/// | 9 | codec |
/// | 10..<12 | reserved, zero |
/// | 12..<16 | record count |
/// | 16..<24 | first offset |
/// | 24..<32 | leader epoch |
/// | 32..<40 | timestamp, ms since the Unix epoch |
/// | 40..<44 | uncompressed length of the record section |
/// | 44..<48 | stored length of the payload that follows |
public struct BatchHeader: Sendable, Equatable {
    public var crc: UInt32
    public var codec: CompressionCodec
    public var recordCount: UInt32
    public var firstOffset: UInt64
    public var leaderEpoch: UInt64
    public var timestampMs: Int64
    public var uncompressedBytes: UInt32
    public var storedBytes: UInt32

    public init(
        crc: UInt32 = 0, codec: CompressionCodec, recordCount: UInt32, firstOffset: UInt64,
        leaderEpoch: UInt64, timestampMs: Int64, uncompressedBytes: UInt32, storedBytes: UInt32
    ) {
        self.crc = crc
        self.codec = codec
        self.recordCount = recordCount
        self.firstOffset = firstOffset
        self.leaderEpoch = leaderEpoch
        self.timestampMs = timestampMs
        self.uncompressedBytes = uncompressedBytes
        self.storedBytes = storedBytes
    }

    /// One past the last offset in the batch.
    public var nextOffset: UInt64 { firstOffset + UInt64(recordCount) }
    public var lastOffset: UInt64 { nextOffset - 1 }
    /// Header plus payload: the bytes this batch occupies in a segment.
    public var totalBytes: Int { Format.batchHeaderBytes + Int(storedBytes) }

    /// Writes the header fields (including `crc` as it stands) into 48 bytes.
    public func encode(into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= Format.batchHeaderBytes)
        bytes.setLittleEndian(Format.batchMagic, at: 0)
        bytes.setLittleEndian(crc, at: 4)
        bytes.setLittleEndian(UInt8(Format.version), at: 8)
        bytes.setLittleEndian(codec.rawValue, at: 9)
        bytes.setLittleEndian(UInt16(0), at: 10)
        bytes.setLittleEndian(recordCount, at: 12)
        bytes.setLittleEndian(firstOffset, at: 16)
        bytes.setLittleEndian(leaderEpoch, at: 24)
        bytes.setLittleEndian(timestampMs, at: 32)
        bytes.setLittleEndian(uncompressedBytes, at: 40)
        bytes.setLittleEndian(storedBytes, at: 44)
    }

    /// The CRC32C of header bytes 8..<48 followed by the payload.
    public static func checksum(
        header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer
    ) -> UInt32 {
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: header[8..<Format.batchHeaderBytes]))
        crc.update(payload)
        return crc.value
    }

    /// Why 48 bytes are not a batch header. `zeroes` is separate from `badMagic` because
    /// preallocated space past the end of the log is all zero, and that is a clean end.
    public enum DecodeFailure: Error, Sendable, Equatable {
        case zeroes
        case badMagic(UInt32)
        case unsupportedVersion(UInt8)
        case invalidField(String)
    }

    /// Parses and bounds-checks a header; the CRC is checked later, with the payload.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<BatchHeader, DecodeFailure> {
        precondition(bytes.count >= Format.batchHeaderBytes)
        let magic: UInt32 = bytes.getLittleEndian(at: 0)
        guard magic == Format.batchMagic else {
            if magic == 0 { return .failure(.zeroes) }
            return .failure(.badMagic(magic))
        }
        let version: UInt8 = bytes.getLittleEndian(at: 8)
        guard UInt32(version) == Format.version else { return .failure(.unsupportedVersion(version)) }
        let codecByte: UInt8 = bytes.getLittleEndian(at: 9)
        guard let codec = CompressionCodec(rawValue: codecByte) else {
            return .failure(.invalidField("codec \(codecByte)"))
        }
        let reserved: UInt16 = bytes.getLittleEndian(at: 10)
        guard reserved == 0 else { return .failure(.invalidField("reserved bytes \(reserved)")) }
        let header = BatchHeader(
            crc: bytes.getLittleEndian(at: 4), codec: codec,
            recordCount: bytes.getLittleEndian(at: 12), firstOffset: bytes.getLittleEndian(at: 16),
            leaderEpoch: bytes.getLittleEndian(at: 24), timestampMs: bytes.getLittleEndian(at: 32),
            uncompressedBytes: bytes.getLittleEndian(at: 40), storedBytes: bytes.getLittleEndian(at: 44))
        guard header.recordCount >= 1 else { return .failure(.invalidField("record count 0")) }
        guard Int(header.storedBytes) <= Format.batchBytesMax,
            Int(header.uncompressedBytes) <= Format.batchBytesMax
        else { return .failure(.invalidField("length over \(Format.batchBytesMax) bytes")) }
        guard UInt64(header.recordCount) * UInt64(Format.recordLengthPrefixBytes)
            <= UInt64(header.uncompressedBytes)
        else { return .failure(.invalidField("record count \(header.recordCount) too large for length")) }
        guard header.firstOffset <= UInt64.max - UInt64(header.recordCount) else {
            return .failure(.invalidField("offset overflow"))
        }
        if codec == .none, header.storedBytes != header.uncompressedBytes {
            return .failure(.invalidField("uncompressed batch with differing lengths"))
        }
        return .success(header)
    }
}
