/// Little-endian field access on raw buffers. Every on-disk integer in format.md is
/// little-endian; these helpers are the only place that byte order is spelled out.
extension UnsafeMutableRawBufferPointer {
    @inline(__always)
    func setLittleEndian<T: FixedWidthInteger>(_ value: T, at byteOffset: Int) {
        precondition(byteOffset >= 0 && byteOffset + MemoryLayout<T>.size <= count)
        storeBytes(of: value.littleEndian, toByteOffset: byteOffset, as: T.self)
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func getLittleEndian<T: FixedWidthInteger>(at byteOffset: Int, as: T.Type = T.self) -> T {
        precondition(byteOffset >= 0 && byteOffset + MemoryLayout<T>.size <= count)
        return T(littleEndian: loadUnaligned(fromByteOffset: byteOffset, as: T.self))
    }
}
