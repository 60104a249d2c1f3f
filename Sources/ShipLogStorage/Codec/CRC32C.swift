import CISAL

/// CRC32C (Castagnoli), computed by Intel ISA-L's `crc32_iscsi`.
///
/// ISA-L neither pre- nor post-inverts; the standard CRC32C is `~crc32_iscsi(buf, len, ~0)`.
/// Keeping the running value un-inverted lets a checksum continue across buffers.
public struct CRC32C: Sendable {
    private var running: UInt32 = 0xFFFF_FFFF

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(bytes.count <= Int(Int32.max), "CRC input exceeds ISA-L's int length")
        running = crc32_iscsi(
            UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self)),
            Int32(bytes.count), running)
    }

    public var value: UInt32 { ~running }

    /// The CRC32C of one buffer.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
