import Foundation
import ShipLogStorage

/// The part of `catch-up` no follower can avoid, measured alone in the same run: putting the
/// caught-up bytes into a file. One thread pwrites the primary's first MiB of segment bytes
/// over and over, in 1 MiB writes, into a new file, until it has written as many bytes as the
/// catch-up moves; no network, no framing, no checksum, no event loop. Durability `os`, as the
/// catch-up's follower: the bytes reach the page cache, not the disk. Its sealed form adds
/// the disk: each segment's worth made durable, as the follower's log does when it rolls.
///
/// The page state matters on a VM: a page-cache write of new bytes needs a free page, and a
/// page the host has taken back (free page reporting) costs a fault on the host the first
/// time it is touched again, about ten times the copy; a page freed a moment ago does not.
/// So the workload writes this twice in a row and reports the second, which gets the pages
/// the first freed (recycled pages, as the floor and catch-up that follow get, and as a
/// long-running host's page cache does); the first is in the note.
enum CatchUpWriteFloor {
    /// Writes `bytes` bytes into a new file at `path` (unlinked at once, so its pages go when
    /// it closes) and returns the seconds from the open until the last write (or fdatasync)
    /// returned. With `sealEveryBytes`, every that many bytes are made durable with fdatasync,
    /// as a segment log seals a segment when it rolls, and their write-back is started every
    /// `LogOptions().writebackBytes` in between, as the log does; then the disk is in it.
    static func write(bytes: Int64, copying logDirectory: String, into path: String, sealEveryBytes: Int64? = nil) throws -> Double {
        let chunk = try firstChunk(of: logDirectory)
        let writebackBytes = Int64(LogOptions().writebackBytes)
        let start = monotonicNanoseconds()
        let file = try PosixFileSystem().openFile(path, create: true)
        unlink(path)
        var (position, sealed, writtenBack): (Int64, Int64, Int64) = (0, 0, 0)
        try chunk.withUnsafeBytes { chunk in
            while position < bytes {
                let want = Int(min(Int64(chunk.count), bytes - position))
                try file.write(UnsafeRawBufferPointer(rebasing: chunk[..<want]), at: position)
                position += Int64(want)
                guard let sealEveryBytes else { continue }
                if writebackBytes > 0, position - writtenBack >= writebackBytes {
                    file.startWriteback(writtenBack..<position)
                    writtenBack = position
                }
                if position - sealed >= sealEveryBytes || position == bytes {
                    try file.sync()
                    (sealed, writtenBack) = (position, position)
                }
            }
        }
        return Double(monotonicNanoseconds() - start) / 1e9
    }

    /// The first MiB of the first segment file: real stored bytes, read before the clock starts.
    private static func firstChunk(of logDirectory: String) throws -> [UInt8] {
        guard let name = try FileManager.default.contentsOfDirectory(atPath: logDirectory)
            .filter({ $0.hasSuffix(Format.segmentSuffix) }).sorted().first,
              let handle = FileHandle(forReadingAtPath: logDirectory + "/" + name) else {
            throw NetworkError.unexpectedReply("no segment file in \(logDirectory)")
        }
        defer { try? handle.close() }
        let chunk = [UInt8](try handle.read(upToCount: CatchUpFloor.chunkBytes) ?? Data())
        guard !chunk.isEmpty else { throw NetworkError.unexpectedReply("\(name) in \(logDirectory) is empty") }
        return chunk
    }
}
