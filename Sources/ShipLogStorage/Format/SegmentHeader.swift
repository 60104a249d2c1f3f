/// The 32-byte header at the start of every segment file (format.md §2).
///
/// | bytes | field |
/// |-------|-------|
/// | 0..<8 | magic `SHIPLOG\0` |
/// | 8..<12 | format version |
/// | 12..<16 | header length, 32 |
/// | 16..<24 | base offset: the first offset this segment holds |
/// | 24..<28 | reserved, zero |
/// | 28..<32 | CRC32C of bytes 0..<28 |
public struct SegmentHeader: Sendable, Equatable {
    public var baseOffset: UInt64

    public init(baseOffset: UInt64) { self.baseOffset = baseOffset }

    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Format.segmentHeaderBytes)
        bytes.withUnsafeMutableBytes { out in
            out.copyBytes(from: Format.segmentMagic)
            out.setLittleEndian(Format.version, at: 8)
            out.setLittleEndian(UInt32(Format.segmentHeaderBytes), at: 12)
            out.setLittleEndian(baseOffset, at: 16)
            out.setLittleEndian(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<28])), at: 28)
        }
        return bytes
    }

    /// Decodes and checks a header read from `file`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, file: String) throws -> SegmentHeader {
        guard bytes.count >= Format.segmentHeaderBytes else {
            throw LogError.corruption(
                file: file, position: 0, offset: nil,
                reason: "segment header is \(bytes.count) bytes, expected \(Format.segmentHeaderBytes)")
        }
        guard bytes.prefix(8).elementsEqual(Format.segmentMagic) else {
            throw LogError.corruption(file: file, position: 0, offset: nil, reason: "not a ShipLog segment (bad magic)")
        }
        let stored: UInt32 = bytes.getLittleEndian(at: 28)
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) else {
            throw LogError.corruption(file: file, position: 0, offset: nil, reason: "segment header checksum mismatch")
        }
        let version: UInt32 = bytes.getLittleEndian(at: 8)
        guard version == Format.version else { throw LogError.unsupportedFormatVersion(file: file, version: version) }
        let headerLength: UInt32 = bytes.getLittleEndian(at: 12)
        guard headerLength == UInt32(Format.segmentHeaderBytes) else {
            throw LogError.corruption(file: file, position: 12, offset: nil, reason: "header length \(headerLength)")
        }
        return SegmentHeader(baseOffset: bytes.getLittleEndian(at: 16))
    }
}
