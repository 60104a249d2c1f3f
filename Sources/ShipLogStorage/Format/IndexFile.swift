/// One sparse index entry: the batch holding `offset` starts at byte `position`.
public struct IndexEntry: Sendable, Equatable {
    public var offset: UInt64
    public var position: Int64
}

/// The sparse index file written beside a segment (format.md §5). It is a cache: when it
/// is missing, damaged or describes a different length of segment, it is rebuilt by scanning.
///
/// Header (56 bytes): magic `SHIPIDX\0`; version u32; entry count u32; base offset u64;
/// segment bytes u64 (the segment length it describes); next offset u64; newest batch
/// timestamp ms i64; index interval bytes u32 (version 2; reserved, 0, in version 1);
/// CRC32C u32 of bytes 0..<52 and all entries.
/// Entries (16 bytes each): offset u64, position u64.
public struct IndexFile: Sendable, Equatable {
    public var baseOffset: UInt64
    public var segmentBytes: Int64
    public var nextOffset: UInt64
    public var newestTimestampMs: Int64
    /// The interval the writer kept between entries, so that a rebuild makes the same index;
    /// nil in a version-1 file, which did not record it.
    public var intervalBytes: Int?
    public var entries: [IndexEntry]

    public init(baseOffset: UInt64, segmentBytes: Int64, nextOffset: UInt64, newestTimestampMs: Int64,
                intervalBytes: Int?, entries: [IndexEntry]) {
        self.baseOffset = baseOffset
        self.segmentBytes = segmentBytes
        self.nextOffset = nextOffset
        self.newestTimestampMs = newestTimestampMs
        self.intervalBytes = intervalBytes
        self.entries = entries
    }

    /// Encodes as the current version (2), which needs the interval.
    public func encoded() -> [UInt8] {
        guard let intervalBytes, intervalBytes > 0, intervalBytes <= Int(UInt32.max) else {
            preconditionFailure("an index file records the interval it was built with, 1...UInt32.max")
        }
        let total = Format.indexHeaderBytes + entries.count * Format.indexEntryBytes
        var bytes = [UInt8](repeating: 0, count: total)
        bytes.withUnsafeMutableBytes { out in
            out.copyBytes(from: Format.indexMagic)
            out.setLittleEndian(Format.indexVersion, at: 8)
            out.setLittleEndian(UInt32(entries.count), at: 12)
            out.setLittleEndian(baseOffset, at: 16)
            out.setLittleEndian(segmentBytes, at: 24)
            out.setLittleEndian(nextOffset, at: 32)
            out.setLittleEndian(newestTimestampMs, at: 40)
            out.setLittleEndian(UInt32(intervalBytes), at: 48)
            for (i, entry) in entries.enumerated() {
                let at = Format.indexHeaderBytes + i * Format.indexEntryBytes
                out.setLittleEndian(entry.offset, at: at)
                out.setLittleEndian(entry.position, at: at + 8)
            }
            out.setLittleEndian(Self.checksum(UnsafeRawBufferPointer(out)), at: 52)
        }
        return bytes
    }

    private static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<52]))
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[Format.indexHeaderBytes...]))
        return crc.value
    }

    /// nil when the bytes are not a complete, intact index file of version 1 or 2 (format.md
    /// §7: a reader of version 2 keeps reading version 1).
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> IndexFile? {
        guard bytes.count >= Format.indexHeaderBytes, bytes.prefix(8).elementsEqual(Format.indexMagic) else { return nil }
        let version = bytes.getLittleEndian(at: 8, as: UInt32.self)
        let interval = bytes.getLittleEndian(at: 48, as: UInt32.self)
        // Version 1's reserved field must be zero; version 2's interval must not be.
        guard (version == 1 && interval == 0) || (version == Format.indexVersion && interval > 0) else { return nil }
        let count = Int(bytes.getLittleEndian(at: 12, as: UInt32.self))
        guard bytes.count == Format.indexHeaderBytes + count * Format.indexEntryBytes,
            bytes.getLittleEndian(at: 52, as: UInt32.self) == checksum(bytes)
        else { return nil }
        var entries: [IndexEntry] = []
        entries.reserveCapacity(count)
        for i in 0..<count {
            let at = Format.indexHeaderBytes + i * Format.indexEntryBytes
            entries.append(IndexEntry(offset: bytes.getLittleEndian(at: at), position: bytes.getLittleEndian(at: at + 8)))
        }
        return IndexFile(
            baseOffset: bytes.getLittleEndian(at: 16), segmentBytes: bytes.getLittleEndian(at: 24),
            nextOffset: bytes.getLittleEndian(at: 32), newestTimestampMs: bytes.getLittleEndian(at: 40),
            intervalBytes: version == 1 ? nil : Int(interval), entries: entries)
    }
}
