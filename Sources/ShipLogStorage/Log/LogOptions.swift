/// When an append returns, where its bytes are.
public enum Durability: Int, Sendable, Comparable, CaseIterable {
    /// In this process's buffer: lost if the process dies. Flushed to the kernel when the
    /// buffer fills, by a stronger append, a read that needs it, `flush()` or `close()`.
    /// (Named `buffered`, not `none`: with an optional parameter `.none` would mean nil.)
    case buffered = 0
    /// Written to the kernel: survives the process dying, not the machine.
    case os = 1
    /// On disk (fdatasync): survives power loss. Concurrent appends share one fdatasync.
    case fsync = 2

    public static func < (lhs: Durability, rhs: Durability) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What `open` does with bytes that fail validation (RocksDB's WAL recovery modes).
public enum RecoveryMode: Sendable, Equatable {
    /// A torn or corrupt tail of the last segment, with nothing intact after it, is cut away
    /// and reported; corruption followed by intact batches is an error. Only the last
    /// segment is scanned, so open time does not grow with the log.
    case tolerateCorruptTail
    /// Any invalid byte in any segment is an error; nothing is cut. Scans every segment.
    case absoluteConsistency
    /// Keep everything before the first invalid byte in any segment and drop the rest,
    /// later segments included. Scans every segment.
    case pointInTime
}

public struct LogOptions: Sendable {
    /// A segment rolls once the next batch would take it past this size.
    public var segmentBytes: Int = 64 << 20
    /// One sparse index entry per this many bytes of batches.
    public var indexIntervalBytes: Int = 4096
    public var maxRecordBytes: Int = 16 << 20
    /// The largest batch (header plus uncompressed records) an append may build.
    public var maxBatchBytes: Int = 64 << 20
    public var compression: CompressionCodec = .lz4
    /// The default durability of an append; each append may ask for more or less.
    public var durability: Durability = .os
    public var recovery: RecoveryMode = .tolerateCorruptTail
    /// Size of the in-process buffer behind `Durability.buffered`.
    public var processBufferBytes: Int = 1 << 20
    /// Reserve each segment's full size when it is created, so fsync'd appends overwrite
    /// allocated blocks instead of growing the file (format.md §8 explains why zeroes are safe).
    public var preallocateSegments: Bool = true
    /// Every this many bytes written to the active segment, the log asks the kernel to start
    /// writing them to disk without waiting (RocksDB's `bytes_per_sync`, PostgreSQL's
    /// `wal_writer_flush_after`), so the fdatasync that seals a segment when it rolls finds
    /// little left to write instead of the whole segment (64 MiB: about 60 ms on a 1 GB/s
    /// disk, during which no append of this log is written). Durability is unchanged: only
    /// fdatasync makes bytes durable. 0 turns it off.
    public var writebackBytes: Int = 8 << 20
    /// The first offset of a newly created log (a point-in-time restore keeps the source's
    /// offsets). Ignored when the log already has segments.
    public var initialOffset: UInt64 = 0
    /// The most segment files the log keeps open at once, the active segment's included:
    /// the active segment is always open, and sealed segments are opened when read and kept
    /// in a least-recently-used cache of the rest, so descriptors stay bounded however many
    /// segments the log has. A reader in the middle of a segment keeps its file open past
    /// eviction, so concurrent readers may briefly hold a few more. At least 2.
    public var maxOpenSegmentFiles: Int = 64
    /// Create the directory and its identity file when missing or empty.
    public var createIfMissing: Bool = true
    public var fileSystem: any FileSystem = PosixFileSystem()
    /// The clock for batch timestamps and age retention, in ms since the Unix epoch.
    public var clock: @Sendable () -> Int64 = { wallClockMilliseconds() }

    public init() {}

    func validate() throws {
        guard segmentBytes >= Format.segmentHeaderBytes + Format.batchHeaderBytes else {
            throw LogError.invalidOptions("segmentBytes \(segmentBytes) is too small")
        }
        // Index files record it as a u32 (format.md §5).
        guard indexIntervalBytes > 0, indexIntervalBytes <= Int(UInt32.max) else {
            throw LogError.invalidOptions("indexIntervalBytes must be in 1...\(UInt32.max)")
        }
        guard maxBatchBytes > Format.batchHeaderBytes, maxBatchBytes <= Format.batchBytesMax else {
            throw LogError.invalidOptions("maxBatchBytes must be in \(Format.batchHeaderBytes + 1)...\(Format.batchBytesMax)")
        }
        guard maxRecordBytes > 0, maxRecordBytes <= maxBatchBytes else {
            throw LogError.invalidOptions("maxRecordBytes must be in 1...maxBatchBytes")
        }
        guard writebackBytes >= 0 else {
            throw LogError.invalidOptions("writebackBytes must be 0 (off) or more")
        }
        guard maxOpenSegmentFiles >= 2 else {
            throw LogError.invalidOptions("maxOpenSegmentFiles must be at least 2 (the active segment and one sealed one)")
        }
    }
}

/// Retention limits; `enforceRetention` deletes whole sealed segments, oldest first.
public struct RetentionPolicy: Sendable {
    public var maxTotalBytes: Int64?
    public var maxAge: Duration?

    public init(maxTotalBytes: Int64? = nil, maxAge: Duration? = nil) {
        self.maxTotalBytes = maxTotalBytes
        self.maxAge = maxAge
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public func wallClockMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
