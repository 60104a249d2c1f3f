import CLZ4

/// LZ4 block compression through liblz4 (the block format, not the frame format:
/// the batch header already carries both lengths and a checksum).
public enum LZ4Block {
    /// The largest output `compress` can produce for `sourceBytes` of input.
    public static func compressBound(_ sourceBytes: Int) -> Int {
        Int(LZ4_compressBound(Int32(sourceBytes)))
    }

    /// Compresses `source` into `destination`; returns the compressed length, or nil
    /// when the output would not fit (the caller then stores the bytes raw).
    public static func compress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Int? {
        guard source.count > 0 else { return 0 }
        let written = LZ4_compress_default(
            source.baseAddress!.assumingMemoryBound(to: CChar.self),
            destination.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(destination.count))
        return written > 0 ? Int(written) : nil
    }

    /// Decompresses exactly `destination.count` bytes; returns false if `source` is not
    /// a valid LZ4 block of that decompressed length (liblz4 never reads or writes out of bounds).
    public static func decompress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Bool {
        if destination.count == 0 { return source.count == 0 }
        guard source.count > 0 else { return false }
        let produced = LZ4_decompress_safe(
            source.baseAddress!.assumingMemoryBound(to: CChar.self),
            destination.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(destination.count))
        return produced == destination.count
    }
}
