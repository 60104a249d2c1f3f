/// The few file operations the log needs, behind a protocol so that tests can inject
/// failures (a failed fsync, a full disk) the way hashicorp/raft-wal's VFS does.
/// Every method throws `LogError.io` with the path and errno.
public protocol StorageFile: AnyObject, Sendable {
    var path: String { get }
    /// Writes all of `bytes` at `position`, or throws.
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws
    /// Writes all of `parts`, back to back, at `position`, or throws (default: `write` of a copy).
    func write(gathering parts: [[UInt8]], at position: Int64) throws
    /// Reads up to `buffer.count` bytes at `position`; fewer only at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int
    /// Makes written data durable (fdatasync; F_FULLFSYNC on Apple platforms).
    func sync() throws
    /// Asks the kernel to start writing `range` to disk and returns without waiting
    /// (sync_file_range with SYNC_FILE_RANGE_WRITE on Linux). Durability still comes only from
    /// `sync()`, which reports any error of this write-back. Default: nothing.
    func startWriteback(_ range: Range<Int64>)
    func truncate(to bytes: Int64) throws
    /// Reserves space up to `bytes` so later writes neither grow the file nor hit ENOSPC.
    func preallocate(to bytes: Int64) throws
    func size() throws -> Int64
    /// The byte ranges from `position` to the end of the file that may hold data, in order.
    /// Everything outside them reads as zeroes: holes, and space preallocated but never
    /// written, which file systems that know (SEEK_DATA) leave out.
    func dataRanges(from position: Int64) throws -> [Range<Int64>]
}

extension StorageFile {
    /// Writes `parts` back to back from `position`, or throws: one write of several buffers
    /// (a write group's batches) without first copying them into one. This default copies
    /// them into one buffer and calls `write`; `PosixFile` uses pwritev instead.
    public func write(gathering parts: [[UInt8]], at position: Int64) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { bytes.append(contentsOf: part) }
        try bytes.withUnsafeBytes { try write($0, at: position) }
    }

    /// For files that cannot start a write-back early: the `sync()` that follows writes all.
    public func startWriteback(_ range: Range<Int64>) {}

    /// For files that know nothing of holes: all of the rest may hold data.
    public func dataRanges(from position: Int64) throws -> [Range<Int64>] {
        let size = try size()
        return position < size ? [position..<size] : []
    }
}

public protocol FileSystem: Sendable {
    /// Opens for reading and writing, creating the file when `create`.
    func openFile(_ path: String, create: Bool) throws -> any StorageFile
    /// Opens for reading only: what the recovery tool's read-only scans use, so that they
    /// work on read-only mounts, snapshots and files the user may only read.
    func openFileForReading(_ path: String) throws -> any StorageFile
    /// The names in a directory, unsorted.
    func contentsOfDirectory(_ path: String) throws -> [String]
    /// nil if nothing is there; true for a directory.
    func isDirectory(_ path: String) -> Bool?
    /// The size of a file, nil if it cannot be read.
    func fileSize(_ path: String) -> Int64?
    func createDirectory(_ path: String) throws
    func removeFile(_ path: String) throws
    func rename(_ source: String, to destination: String) throws
    /// fsyncs a directory, making created, renamed and removed entries durable.
    func syncDirectory(_ path: String) throws
    /// Takes an exclusive, non-blocking lock on `path`; released by `unlock` or process exit.
    func lockFile(_ path: String) throws -> any FileLock
    /// Whether another open file holds the lock `lockFile` takes on `path`, asked without
    /// blocking or keeping anything: nil when it cannot be told (the file cannot be opened).
    func lockIsHeld(_ path: String) -> Bool?
}

public protocol FileLock: Sendable {
    func unlock()
}

extension FileSystem {
    /// For file systems that know of no other process (test doubles).
    public func lockIsHeld(_ path: String) -> Bool? { nil }

    /// For file systems that do not tell the two apart (test doubles): read-write.
    public func openFileForReading(_ path: String) throws -> any StorageFile {
        try openFile(path, create: false)
    }
}
