/// The clean-shutdown marker (format.md §6), written last by `close()` and removed first
/// by `open`, so that a crash at any moment in between counts as unclean.
///
/// 56 bytes: magic `SHIPCLN\0`; version u32; reserved u32; active segment base offset u64;
/// active segment length u64; next offset u64; last leader epoch u64; reserved u32;
/// CRC32C u32 of bytes 0..<52.
public struct CleanShutdownMarker: Sendable, Equatable {
    public var activeBaseOffset: UInt64
    public var activeSegmentBytes: Int64
    public var nextOffset: UInt64
    public var lastEpoch: UInt64

    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Format.cleanMarkerBytes)
        bytes.withUnsafeMutableBytes { out in
            out.copyBytes(from: Format.cleanMarkerMagic)
            out.setLittleEndian(Format.version, at: 8)
            out.setLittleEndian(activeBaseOffset, at: 16)
            out.setLittleEndian(activeSegmentBytes, at: 24)
            out.setLittleEndian(nextOffset, at: 32)
            out.setLittleEndian(lastEpoch, at: 40)
            out.setLittleEndian(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<52])), at: 52)
        }
        return bytes
    }

    /// nil for anything but an intact marker of this version: the open then recovers.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> CleanShutdownMarker? {
        guard bytes.count == Format.cleanMarkerBytes, bytes.prefix(8).elementsEqual(Format.cleanMarkerMagic),
            bytes.getLittleEndian(at: 8, as: UInt32.self) == Format.version,
            bytes.getLittleEndian(at: 52, as: UInt32.self)
                == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<52]))
        else { return nil }
        return CleanShutdownMarker(
            activeBaseOffset: bytes.getLittleEndian(at: 16), activeSegmentBytes: bytes.getLittleEndian(at: 24),
            nextOffset: bytes.getLittleEndian(at: 32), lastEpoch: bytes.getLittleEndian(at: 40))
    }
}

/// The identity file `SHIPLOG` (format.md §1) that marks a directory as a ShipLog log.
/// 16 bytes: magic `SHIPDIR\0`; version u32; CRC32C u32 of bytes 0..<12.
public enum DirectoryIdentity {
    public static func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Format.directoryFileBytes)
        bytes.withUnsafeMutableBytes { out in
            out.copyBytes(from: Format.directoryMagic)
            out.setLittleEndian(Format.version, at: 8)
            out.setLittleEndian(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0..<12])), at: 12)
        }
        return bytes
    }

    /// Checks the identity file's bytes; throws what is wrong with them.
    public static func check(_ bytes: UnsafeRawBufferPointer, file: String, directory: String) throws {
        guard bytes.count == Format.directoryFileBytes, bytes.prefix(8).elementsEqual(Format.directoryMagic),
            bytes.getLittleEndian(at: 12, as: UInt32.self)
                == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<12]))
        else {
            throw LogError.notAShipLogDirectory(path: directory, reason: "\(Format.directoryFileName) is damaged or foreign")
        }
        let version: UInt32 = bytes.getLittleEndian(at: 8)
        guard version == Format.version else { throw LogError.unsupportedFormatVersion(file: file, version: version) }
    }
}
