#if canImport(Glibc)
import CLinuxFile
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real file system, through POSIX calls.
public struct PosixFileSystem: FileSystem {
    /// How long a held lock is retried before `directoryLocked`: 20 × 5 ms.
    let lockAttempts = 20
    let lockRetryMicroseconds: UInt32 = 5_000

    public init() {}

    public func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw LogError.io(operation: "open", path: path, errno: errno) }
        return PosixFile(fd: fd, path: path)
    }

    public func openFileForReading(_ path: String) throws -> any StorageFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LogError.io(operation: "open", path: path, errno: errno) }
        return PosixFile(fd: fd, path: path)
    }

    public func contentsOfDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw LogError.io(operation: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func isDirectory(_ path: String) -> Bool? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    public func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    /// Creates the directory and any missing parents.
    public func createDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            guard mkdir(prefix, 0o755) == 0 || errno == EEXIST else {
                throw LogError.io(operation: "mkdir", path: prefix, errno: errno)
            }
        }
    }

    public func removeFile(_ path: String) throws {
        guard unlink(path) == 0 else { throw LogError.io(operation: "unlink", path: path, errno: errno) }
    }

    public func rename(_ source: String, to destination: String) throws {
        guard systemRename(source, destination) == 0 else {
            throw LogError.io(operation: "rename to \(destination)", path: source, errno: errno)
        }
    }

    public func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw LogError.io(operation: "open directory", path: path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw LogError.io(operation: "fsync directory", path: path, errno: errno) }
    }

    public func lockFile(_ path: String) throws -> any FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LogError.io(operation: "open lock file", path: path, errno: errno) }
        // flock locks belong to the open file description: a second open of the same
        // directory, in this process or another, is refused. A process being spawned holds a
        // copy of every descriptor between fork and exec, so a lock just released can look
        // held for a moment: retry briefly before reporting it.
        for attempt in 0..<lockAttempts {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return PosixFileLock(fd: fd) }
            let code = errno
            guard code == EWOULDBLOCK else {
                close(fd)
                throw LogError.io(operation: "flock", path: path, errno: code)
            }
            if attempt < lockAttempts - 1 { usleep(lockRetryMicroseconds) }
        }
        close(fd)
        throw LogError.directoryLocked(path: path)
    }

    /// Probes with a shared, non-blocking flock on a read-only descriptor, released at once
    /// by closing it: this works on read-only mounts and files the user may only read, and
    /// two probes never exclude each other. A writer opening the log in the microseconds the
    /// probe holds it is not refused: `lockFile` retries for 100 ms.
    public func lockIsHeld(_ path: String) -> Bool? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT ? false : nil }  // no lock file: nobody ever locked it
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 { return false }
        return errno == EWOULDBLOCK ? true : nil
    }
}

struct PosixFileLock: FileLock {
    let fd: Int32
    func unlock() { close(fd) }
}

// lseek whences; glibc declares them only under _GNU_SOURCE, which Swift's Glibc is not built with.
#if os(Linux)
private let seekData: Int32 = 3
private let seekHole: Int32 = 4
#else
private let seekData = SEEK_DATA
private let seekHole = SEEK_HOLE
#endif

/// One open file. `pread`/`pwrite` take explicit positions, so concurrent readers and the
/// single writer never share a file offset.
final class PosixFile: StorageFile {
    let fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.io(operation: "write at byte \(position + Int64(done))", path: path, errno: errno)
            }
            done += n
        }
    }

    /// pwritev of up to `gatherPartsMax` parts at a time: a write group's batches go to the
    /// file without being copied into one buffer first (catch-up writes ~1 MiB groups).
    func write(gathering parts: [[UInt8]], at position: Int64) throws {
        var position = position
        var start = 0
        while start < parts.count {
            let chunk = parts[start..<min(parts.count, start + Self.gatherPartsMax)]
            var iovecs: [iovec] = []
            iovecs.reserveCapacity(chunk.count)
            let bytes = try Self.pinned(chunk, &iovecs) { iovecs in try writeAll(&iovecs, at: position) }
            position += Int64(bytes)
            start += chunk.count
        }
    }

    /// At most this many buffers per pwritev (far below IOV_MAX, and the nesting depth of `pinned`).
    static let gatherPartsMax = 64

    /// Calls `body` with an iovec for each part, each array's bytes pinned for the call.
    private static func pinned(_ parts: ArraySlice<[UInt8]>, _ iovecs: inout [iovec],
                               _ body: (inout [iovec]) throws -> Int) rethrows -> Int {
        guard let first = parts.first else { return try body(&iovecs) }
        return try first.withUnsafeBytes { bytes in
            if bytes.count > 0 { iovecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), iov_len: bytes.count)) }
            return try pinned(parts.dropFirst(), &iovecs, body)
        }
    }

    /// pwritev until every iovec is written (a short write resumes where it stopped); the bytes written.
    private func writeAll(_ iovecs: inout [iovec], at position: Int64) throws -> Int {
        var done = 0
        var first = 0
        while first < iovecs.count {
            let n = iovecs[first...].withUnsafeBufferPointer { pwritev(fd, $0.baseAddress!, Int32($0.count), off_t(position) + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.io(operation: "write at byte \(position + Int64(done))", path: path, errno: errno)
            }
            done += n
            var left = n
            while first < iovecs.count, left >= iovecs[first].iov_len {
                left -= iovecs[first].iov_len
                first += 1
            }
            if left > 0 {
                iovecs[first].iov_base = iovecs[first].iov_base! + left
                iovecs[first].iov_len -= left
            }
        }
        return done
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(position) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.io(operation: "read at byte \(position + Int64(done))", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func sync() throws {
        #if canImport(Darwin)
        // fsync on Apple platforms does not flush the drive's cache.
        let result = fcntl(fd, F_FULLFSYNC)
        #else
        let result = fdatasync(fd)
        #endif
        guard result == 0 else { throw LogError.io(operation: "fsync", path: path, errno: errno) }
    }

    /// Errors are not reported here: a failed write-back sets the file's error, which the next
    /// fdatasync on this descriptor returns (SYNC_FILE_RANGE_WRITE alone does not consume it).
    func startWriteback(_ range: Range<Int64>) {
        #if os(Linux)
        _ = sync_file_range(fd, off_t(range.lowerBound), off_t(range.count), shiplog_SYNC_FILE_RANGE_WRITE)
        #endif
    }

    /// SEEK_DATA and SEEK_HOLE (Linux, macOS): on ext4 and XFS a preallocated segment's
    /// never-written tail is a hole, so recovery need not read 64 MiB of zeroes after a crash.
    /// The descriptor's offset moves, which nothing else here uses (reads and writes are
    /// positioned).
    func dataRanges(from position: Int64) throws -> [Range<Int64>] {
        let size = try size()
        var ranges: [Range<Int64>] = []
        var at = position
        while at < size {
            let start = lseek(fd, off_t(at), seekData)
            if start < 0 {
                if errno == ENXIO { break }  // no data after `at`
                // No support for SEEK_DATA here: treat the rest as data.
                if errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP { return ranges + [at..<size] }
                throw LogError.io(operation: "seek data from byte \(at)", path: path, errno: errno)
            }
            var end = lseek(fd, start, seekHole)
            if end < 0 { end = off_t(size) }
            let range = Int64(start)..<min(Int64(end), size)
            assert(range.lowerBound >= at, "SEEK_DATA moved backwards")
            if !range.isEmpty { ranges.append(range) }
            at = max(Int64(end), at + 1)
        }
        return ranges
    }

    func truncate(to bytes: Int64) throws {
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            throw LogError.io(operation: "truncate to \(bytes) bytes", path: path, errno: errno)
        }
    }

    func preallocate(to bytes: Int64) throws {
        #if os(Linux)
        // Mode 0 allocates blocks and extends the size; the new space reads as zeroes,
        // which recovery treats as the clean end of the log (format.md §8).
        // posix_fallocate returns the error rather than setting errno.
        let code = posix_fallocate(fd, 0, off_t(bytes))
        if code != 0 {
            // Some file systems cannot: fall back to growing the file as it is written.
            if code == EOPNOTSUPP || code == ENOSYS || code == EINVAL { return }
            throw LogError.io(operation: "fallocate \(bytes) bytes", path: path, errno: code)
        }
        #endif
    }

    func size() throws -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw LogError.io(operation: "fstat", path: path, errno: errno) }
        return Int64(info.st_size)
    }
}

private func systemRename(_ source: String, _ destination: String) -> Int32 {
    rename(source, destination)
}
