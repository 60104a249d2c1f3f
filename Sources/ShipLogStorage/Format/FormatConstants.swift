/// Constants of the on-disk format. Each cites the section of format.md that defines it;
/// change the two together.
public enum Format {
    /// format.md §2: the segment file header.
    public static let segmentMagic: [UInt8] = Array("SHIPLOG\0".utf8)
    public static let segmentHeaderBytes = 32
    /// format.md §3: the record batch header. The magic is never zero, so zero-filled
    /// (preallocated) space can never parse as a batch.
    public static let batchMagic: UInt32 = 0x3142_4C53  // bytes "SLB1"
    public static let batchHeaderBytes = 48
    /// format.md §4: each record in a batch's record section is a u32 length then its bytes.
    public static let recordLengthPrefixBytes = 4
    /// format.md §5: the sparse index file.
    public static let indexMagic: [UInt8] = Array("SHIPIDX\0".utf8)
    public static let indexHeaderBytes = 56
    public static let indexEntryBytes = 16
    /// format.md §6: the clean-shutdown marker.
    public static let cleanMarkerMagic: [UInt8] = Array("SHIPCLN\0".utf8)
    public static let cleanMarkerBytes = 56
    /// format.md §1: the directory identity file.
    public static let directoryMagic: [UInt8] = Array("SHIPDIR\0".utf8)
    public static let directoryFileBytes = 16
    /// format.md §12: the epoch checkpoint, at its own version 1. The entry count is
    /// bounded so a damaged count can never make a reader allocate more.
    public static let epochCheckpointMagic: [UInt8] = Array("SHIPEPO\0".utf8)
    public static let epochCheckpointVersion: UInt32 = 1
    public static let epochCheckpointEntriesMax = 1 << 20

    /// format.md §7: the version this code reads and writes in every file header but the
    /// index file's.
    public static let version: UInt32 = 1
    /// format.md §5: index files are at version 2, which records the index interval;
    /// version 1 files, which did not, are still read.
    public static let indexVersion: UInt32 = 2

    /// format.md §3: no batch's stored or uncompressed length may exceed this, so a
    /// corrupt length can never make a reader allocate more.
    public static let batchBytesMax = 256 << 20

    /// format.md §1: file names.
    public static let segmentSuffix = ".log"
    public static let indexSuffix = ".index"
    public static let temporarySuffix = ".tmp"
    public static let cleanMarkerName = "CLEAN"
    public static let epochCheckpointName = "EPOCHS"
    public static let directoryFileName = "SHIPLOG"
    public static let lockFileName = "LOCK"
    public static let offsetDigits = 20

    public static func segmentName(baseOffset: UInt64) -> String {
        paddedOffset(baseOffset) + segmentSuffix
    }

    public static func indexName(baseOffset: UInt64) -> String {
        paddedOffset(baseOffset) + indexSuffix
    }

    static func paddedOffset(_ offset: UInt64) -> String {
        let digits = String(offset)
        return String(repeating: "0", count: offsetDigits - digits.count) + digits
    }

    /// Names that look like a segment's (digits, then `.log`) but are not "<20 digits>.log"
    /// holding a u64, such as `99999999999999999999.log`: the log cannot place them, so it
    /// ignores them, and whatever records they hold are not part of it.
    public static func isMisnamedSegment(_ name: String) -> Bool {
        guard name.hasSuffix(segmentSuffix), baseOffset(ofSegmentName: name) == nil else { return false }
        let stem = name.dropLast(segmentSuffix.count)
        return !stem.isEmpty && stem.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Parses "<20 digits>.log" back to its base offset; nil for any other name.
    public static func baseOffset(ofSegmentName name: String) -> UInt64? {
        baseOffset(of: name, suffix: segmentSuffix)
    }

    /// Parses "<20 digits>.index" back to its segment's base offset; nil for any other name.
    public static func baseOffset(ofIndexName name: String) -> UInt64? {
        baseOffset(of: name, suffix: indexSuffix)
    }

    private static func baseOffset(of name: String, suffix: String) -> UInt64? {
        guard name.hasSuffix(suffix) else { return nil }
        let stem = name.dropLast(suffix.count)
        guard stem.count == offsetDigits, stem.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return nil
        }
        return UInt64(stem)
    }
}

/// How a batch's payload is stored (format.md §3, byte 9).
public enum CompressionCodec: UInt8, Sendable, CaseIterable {
    case none = 0
    case lz4 = 1
}
