import Foundation
import ShipLogStorage

/// Byte counts a repair needs before it changes anything: what a copy of a file will write,
/// what a cut loses, and what the file system has free.
enum FileSpace {
    /// Bytes the current user may still write on the file system holding `path` (statvfs's
    /// f_bavail: root's reserved blocks are not ours to plan with).
    static func availableBytes(at path: String) throws -> Int64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { throw LogError.io(operation: "statvfs", path: path, errno: errno) }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Bytes a hole-preserving copy of the file writes at most: its data ranges. Space that
    /// was preallocated but never written is left out where the file system tells (SEEK_DATA).
    static func dataBytes(of path: String) throws -> Int64 {
        let file = try PosixFileSystem().openFileForReading(path)
        return try file.dataRanges(from: 0).reduce(0) { $0 + Int64($1.count) }
    }

    /// One past the last non-zero byte at or after `position` (or `position` when there is
    /// none): what a cut at `position` really loses. A preallocated segment is zero-filled to
    /// its full size, and counting those zeroes made a torn-tail repair report 51 MB lost
    /// where 37 KB of batches were.
    static func endOfNonZeroBytes(in path: String, from position: Int64) throws -> Int64 {
        let file = try PosixFileSystem().openFileForReading(path)
        let chunkBytes: Int64 = 1 << 20
        var buffer = [UInt8](repeating: 0, count: Int(chunkBytes))
        // Backwards from the end: a torn tail's data sits right after the cut, so this reads
        // only the zeroes the file system cannot skip for us.
        for range in try file.dataRanges(from: position).reversed() {
            var end = range.upperBound
            while end > range.lowerBound {
                let start = max(range.lowerBound, end - chunkBytes)
                let count = Int(end - start)
                let got = try buffer.withUnsafeMutableBytes {
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), at: start)
                }
                if let last = buffer[0..<got].lastIndex(where: { $0 != 0 }) { return start + Int64(last) + 1 }
                end = start
            }
        }
        return position
    }
}
