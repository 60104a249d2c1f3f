import Synchronization

/// A segment's file, opened on first use and kept in the log's `OpenFileCache`, so a log
/// of many segments holds a bounded number of descriptors. The active segment is pinned:
/// its file is held here, outside the cache, and never evicted. Deleting the segment's
/// file leaves an open file valid for readers still holding it.
final class SegmentFile: Sendable {
    let path: String
    let baseOffset: UInt64
    private let fileSystem: any FileSystem
    /// Opened read-only (the inspector), or read-write (the log).
    private let readOnly: Bool
    private let openFiles: OpenFileCache
    private let slot: Mutex<Slot>

    private struct Slot {
        var pinned = false
        /// The open file while pinned (once first used); nil whenever unpinned.
        var file: (any StorageFile)?
    }

    init(path: String, baseOffset: UInt64, fileSystem: any FileSystem, openFiles: OpenFileCache, readOnly: Bool = false) {
        self.path = path
        self.baseOffset = baseOffset
        self.fileSystem = fileSystem
        self.readOnly = readOnly
        self.openFiles = openFiles
        self.slot = Mutex(Slot())
    }

    /// The open file, opened now if neither pinned nor cached. Callers may keep it as long
    /// as they read: eviction only drops the cache's reference.
    func file() throws -> any StorageFile {
        // Held across the open, so two first readers of one segment open it once.
        try slot.withLock { slot in
            if let file = slot.file { return file }
            if let file = openFiles.file(for: ObjectIdentifier(self)) { return file }
            let file = readOnly ? try fileSystem.openFileForReading(path) : try fileSystem.openFile(path, create: false)
            if slot.pinned { slot.file = file } else { openFiles.insert(file, for: ObjectIdentifier(self)) }
            return file
        }
    }

    /// Keeps the file open, outside the cache, until `unpin`: for the active segment, which
    /// every append writes, and whose fdatasync must go through a descriptor open since its
    /// writes (one opened after a write-back error may not be told of it).
    func pin() {
        slot.withLock { slot in
            guard !slot.pinned else { return }
            slot.pinned = true
            slot.file = openFiles.remove(ObjectIdentifier(self))
        }
    }

    /// Returns the file to the cache (a sealed segment): the segment just sealed is the
    /// one tailing readers are about to finish, so it stays open until it ages out.
    func unpin() {
        slot.withLock { slot in
            guard slot.pinned else { return }
            slot.pinned = false
            if let file = slot.file { openFiles.insert(file, for: ObjectIdentifier(self)) }
            slot.file = nil
        }
    }

    var isPinned: Bool { slot.withLock { $0.pinned } }

    deinit {
        // Before this object's identity can be reused by a new SegmentFile.
        openFiles.remove(ObjectIdentifier(self))
    }
}

/// What the log knows of one segment. The last segment in a log is the active one.
struct SegmentInfo: Sendable {
    let baseOffset: UInt64
    let handle: SegmentFile
    /// Bytes of intact batches, header included: where the next batch goes.
    var endPosition: Int64
    /// One past the last offset the segment holds.
    var nextOffset: UInt64
    /// nil until loaded: sealed segments load theirs on first read.
    var index: SparseIndex?
    var newestTimestampMs: Int64?

    var isEmpty: Bool { nextOffset == baseOffset }
}

/// Creating segments and reading and writing their index files.
struct SegmentDirectory: Sendable {
    let path: String
    let fileSystem: any FileSystem
    /// The sealed segments' open files, shared by every `SegmentFile` made here.
    let openFiles: OpenFileCache

    /// `maxOpenFiles` counts the active segment, which is kept out of the cache.
    init(path: String, fileSystem: any FileSystem, maxOpenFiles: Int) {
        self.path = path
        self.fileSystem = fileSystem
        self.openFiles = OpenFileCache(capacity: max(maxOpenFiles - 1, 1))
    }

    func segmentPath(_ baseOffset: UInt64) -> String { path + "/" + Format.segmentName(baseOffset: baseOffset) }
    func indexPath(_ baseOffset: UInt64) -> String { path + "/" + Format.indexName(baseOffset: baseOffset) }

    /// A handle on the segment starting at `baseOffset`, its file opened on first use.
    func segmentFile(_ baseOffset: UInt64, readOnly: Bool = false) -> SegmentFile {
        SegmentFile(path: segmentPath(baseOffset), baseOffset: baseOffset, fileSystem: fileSystem, openFiles: openFiles,
                    readOnly: readOnly)
    }

    /// A new segment's file, written and synced under its temporary name, not yet in place.
    struct PreparedSegment {
        let baseOffset: UInt64
        let temporaryPath: String
        let finalPath: String
    }

    /// Why `install` failed, and whether the segment was already renamed into place.
    struct InstallFailure: Error {
        let cause: any Error
        let installed: SegmentInfo?
    }

    /// Creates an empty segment durably: `prepareSegment` writes and syncs the header under
    /// a temporary name, `install` renames it into place and syncs the directory. A crash
    /// leaves either no segment or a complete one, never a torn header; a failure in
    /// `prepareSegment` leaves nothing behind.
    func createSegment(baseOffset: UInt64, preallocateBytes: Int64?) throws -> SegmentInfo {
        let prepared = try prepareSegment(baseOffset: baseOffset, preallocateBytes: preallocateBytes)
        do { return try install(prepared) } catch let failure as InstallFailure { throw failure.cause }
    }

    func prepareSegment(baseOffset: UInt64, preallocateBytes: Int64?) throws -> PreparedSegment {
        let finalPath = segmentPath(baseOffset)
        let prepared = PreparedSegment(baseOffset: baseOffset, temporaryPath: finalPath + Format.temporarySuffix, finalPath: finalPath)
        do {
            let file = try fileSystem.openFile(prepared.temporaryPath, create: true)
            try file.truncate(to: 0)
            if let preallocateBytes { try file.preallocate(to: preallocateBytes) }
            try SegmentHeader(baseOffset: baseOffset).encoded().withUnsafeBytes { try file.write($0, at: 0) }
            try file.sync()
        } catch {
            try? fileSystem.removeFile(prepared.temporaryPath)
            throw error
        }
        return prepared
    }

    func install(_ prepared: PreparedSegment) throws -> SegmentInfo {
        do {
            try fileSystem.rename(prepared.temporaryPath, to: prepared.finalPath)
        } catch {
            try? fileSystem.removeFile(prepared.temporaryPath)
            throw InstallFailure(cause: error, installed: nil)
        }
        // Opened again under its final name, so errors name the file an operator sees.
        let handle = segmentFile(prepared.baseOffset)
        let info = SegmentInfo(baseOffset: prepared.baseOffset, handle: handle, endPosition: Int64(Format.segmentHeaderBytes),
                               nextOffset: prepared.baseOffset, index: SparseIndex(), newestTimestampMs: nil)
        do { try fileSystem.syncDirectory(path) } catch { throw InstallFailure(cause: error, installed: info) }
        return info
    }

    /// Writes the index of a finished segment, recording the interval its entries were kept
    /// at so that a rebuild makes the same index. Not synced: the index is a cache that is
    /// checked against the segment on load and rebuilt when it does not match.
    func writeIndex(of segment: SegmentInfo, intervalBytes: Int) throws {
        let index = IndexFile(baseOffset: segment.baseOffset, segmentBytes: segment.endPosition,
                              nextOffset: segment.nextOffset, newestTimestampMs: segment.newestTimestampMs ?? 0,
                              intervalBytes: intervalBytes, entries: segment.index?.entries ?? [])
        let finalPath = indexPath(segment.baseOffset)
        let temporaryPath = finalPath + Format.temporarySuffix
        let file = try fileSystem.openFile(temporaryPath, create: true)
        try file.truncate(to: 0)
        try index.encoded().withUnsafeBytes { try file.write($0, at: 0) }
        try fileSystem.rename(temporaryPath, to: finalPath)
    }

    /// The index file of a segment if it is intact and describes exactly `segmentBytes`.
    func loadIndex(baseOffset: UInt64, segmentBytes: Int64) -> IndexFile? {
        guard let file = try? fileSystem.openFileForReading(indexPath(baseOffset)),
            let size = try? file.size(), size <= Int64(Format.indexHeaderBytes) + (segmentBytes / 8 + 1) * Int64(Format.indexEntryBytes)
        else { return nil }
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, count in
            count = (try? file.read(into: UnsafeMutableRawBufferPointer(buffer), at: 0)) ?? 0
        }
        guard let index = bytes.withUnsafeBytes({ IndexFile.decode($0) }),
            index.baseOffset == baseOffset, index.segmentBytes == segmentBytes
        else { return nil }
        return index
    }

    /// Scans a segment to rebuild what its index file would hold; throws on any invalid batch.
    func rebuildIndex(of handle: SegmentFile, endPosition: Int64, intervalBytes: Int) throws -> IndexFile {
        var scanner = try SegmentScanner(file: handle.file(), from: Int64(Format.segmentHeaderBytes), limit: endPosition)
        var index = SparseIndex()
        var expected = handle.baseOffset
        var newest: Int64 = 0
        while true {
            switch try scanner.next() {
            case .batch(let batch, let position):
                guard batch.header.firstOffset == expected else {
                    throw LogError.corruption(file: handle.path, position: position, offset: batch.header.firstOffset,
                                              reason: "offset gap: expected \(expected)")
                }
                index.noteBatch(firstOffset: expected, position: position, intervalBytes: intervalBytes)
                expected = batch.header.nextOffset
                newest = batch.header.timestampMs
            case .end(let position):
                guard position == endPosition else {
                    throw LogError.corruption(file: handle.path, position: position, offset: expected,
                                              reason: "zeroes where batches should continue to byte \(endPosition)")
                }
                return IndexFile(baseOffset: handle.baseOffset, segmentBytes: endPosition, nextOffset: expected,
                                 newestTimestampMs: newest, intervalBytes: intervalBytes, entries: index.entries)
            case .invalid(let position, let reason):
                throw LogError.corruption(file: handle.path, position: position, offset: expected, reason: reason)
            }
        }
    }
}
