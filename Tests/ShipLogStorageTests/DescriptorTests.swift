import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Descriptors stay bounded however many segments a log has (finding F6), and a new log
/// directory's entry is made durable.
@Suite struct DescriptorTests {
    // MARK: Many segments

    /// ~2,000 segments: appends, a full cursor read, random reads and reopens (one scanning
    /// every segment) all work, and the log's descriptors stay within `maxOpenSegmentFiles`
    /// plus its lock file throughout. Before the cache, appends failed with EMFILE at ~249
    /// segments under `ulimit -n 256`. (The limit itself is not lowered here: it is the whole
    /// test process's, and the tests running beside this one failed under it.)
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/fd"), "counts descriptors in /proc/self/fd"))
    func thousandsOfSegmentsKeepTheirDescriptorsBounded() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }

        var options = smallOptions(segmentBytes: 1024, compression: .none)
        options.maxOpenSegmentFiles = 16
        options.preallocateSegments = false
        let bound = options.maxOpenSegmentFiles + 1  // the LOCK file
        var most = 0
        func sample() { most = max(most, openDescriptors(under: dir.logPath)) }

        let recordCount = 20_000
        var log = try SegmentLog.open(directory: dir.logPath, options: options)
        for chunk in stride(from: 0, to: recordCount, by: 3) {
            try log.append((chunk..<min(chunk + 3, recordCount)).map { makeRecord($0) })
            if chunk % 300 == 0 { sample() }
        }
        #expect(log.segmentCount >= 2_000)

        func readAll(_ log: SegmentLog) throws {
            var cursor = log.batches(from: 0, bufferBytes: 4096)
            var n = 0
            var wrong = 0
            while let batch = try cursor.next() {
                for record in try batch.decode() {
                    if record.offset != UInt64(n) || Array(record.bytes) != makeRecord(n) { wrong += 1 }
                    n += 1
                }
                if n % 300 == 0 { sample() }
            }
            #expect(n == recordCount)
            #expect(wrong == 0)
        }
        try readAll(log)
        var random = SplitMix64(seed: 6)
        for i in 0..<2_000 {
            let n = Int(random.next() % UInt64(recordCount))
            #expect(try log.record(at: UInt64(n)).bytes == makeRecord(n))
            if i % 100 == 0 { sample() }
        }
        try log.close()

        log = try SegmentLog.open(directory: dir.logPath, options: options)
        #expect(log.recoveryReport.cleanShutdown)
        try readAll(log)
        try log.close()
        options.recovery = .absoluteConsistency  // opens and scans every segment
        log = try SegmentLog.open(directory: dir.logPath, options: options)
        sample()
        try readAll(log)
        try log.append(makeRecord(recordCount))
        sample()
        try log.close()

        #expect(most > 1, "the sampling saw the log's files")
        #expect(most <= bound, "at most \(bound) descriptors on the log's files, saw \(most)")
    }

    // MARK: The cache

    @Test func theLeastRecentlyUsedFileIsEvicted() throws {
        let files = try SampleFiles(count: 4)
        defer { files.remove() }
        let cache = OpenFileCache(capacity: 3)
        let handles = files.handles(cache)
        let first = try handles[0].file()
        _ = try handles[1].file()
        _ = try handles[2].file()
        #expect(try handles[0].file() === first, "a hit returns the open file and makes it the most recent")
        _ = try handles[3].file()
        #expect(cache.keysByRecency == [3, 0, 2].map { ObjectIdentifier(handles[$0]) }, "1 was the least recently used")
        _ = try handles[1].file()
        #expect(cache.keysByRecency == [1, 3, 0].map { ObjectIdentifier(handles[$0]) })
        #expect(try files.contents(handles[2].file()) == files.contents[2], "an evicted segment opens again")
    }

    @Test func thePinnedActiveFileIsNeverEvicted() throws {
        let files = try SampleFiles(count: 6)
        defer { files.remove() }
        let cache = OpenFileCache(capacity: 2)
        let handles = files.handles(cache)
        _ = try handles[0].file()
        handles[0].pin()  // moves its file out of the cache
        let pinned = try handles[0].file()
        for handle in handles.dropFirst() { _ = try handle.file() }
        #expect(cache.count == 2)
        #expect(!cache.keysByRecency.contains(ObjectIdentifier(handles[0])))
        #expect(try handles[0].file() === pinned)
        handles[0].unpin()  // sealed: into the cache, as the most recent
        #expect(cache.keysByRecency == [0, 5].map { ObjectIdentifier(handles[$0]) })
        #expect(try handles[0].file() === pinned)
    }

    @Test func theLogPinsItsActiveSegmentThroughRollsReadsAndTruncation() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = smallOptions(segmentBytes: 1024, compression: .none)
        options.maxOpenSegmentFiles = 2
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        for n in 0..<200 { try log.append(makeRecord(n)) }
        func pinnedSegments() -> [Bool] { log.state.withLock { $0.segments.map(\.handle.isPinned) } }
        #expect(log.segmentCount > 5)
        #expect(pinnedSegments() == Array(repeating: false, count: log.segmentCount - 1) + [true], "only the active one")
        let active = try log.state.withLock { try $0.active.handle.file() }
        #expect(try allRecords(log) == (0..<200).map { makeRecord($0) })
        #expect(try log.state.withLock { try $0.active.handle.file() } === active, "reading sealed segments left it open")
        #expect(log.files.openFiles.count == 1)

        try log.truncate(after: 10)
        #expect(pinnedSegments() == Array(repeating: false, count: log.segmentCount - 1) + [true])
        try log.append(makeRecord(11))
        #expect(try log.record(at: 11).bytes == makeRecord(11))
        try log.close()
    }

    @Test func aReaderKeepsAnEvictedFileUsable() throws {
        let files = try SampleFiles(count: 2)
        defer { files.remove() }
        let cache = OpenFileCache(capacity: 1)
        let handles = files.handles(cache)
        var readBack: [UInt8] = []
        do {
            let held = try handles[0].file()
            _ = try handles[1].file()
            #expect(cache.keysByRecency == [ObjectIdentifier(handles[1])], "evicted")
            try FileManager.default.removeItem(atPath: files.paths[0])  // retention deletes too
            if hasProcFD { #expect(openDescriptors(under: files.paths[0]) == 1, "still open for its reader") }
            readBack = try files.contents(held)
        }
        #expect(readBack == files.contents[0])
        if hasProcFD { #expect(openDescriptors(under: files.paths[0]) == 0, "closed when the reader let go") }
    }

    @Test func aReplacedFileReadsAnewThroughANewHandle() throws {
        let files = try SampleFiles(count: 1)
        defer { files.remove() }
        let cache = OpenFileCache(capacity: 4)
        let path = files.paths[0]
        func replace(with text: String) throws {
            writeFileBytes(path + ".new", Array(text.utf8))
            try PosixFileSystem().rename(path + ".new", to: path)
        }
        // A handle that died: its entry went with it, so a new handle, which may well get
        // the same address and so the same ObjectIdentifier, cannot find its descriptor.
        do {
            let gone = SegmentFile(path: path, baseOffset: 0, fileSystem: PosixFileSystem(), openFiles: cache)
            #expect(try files.contents(gone.file()) == files.contents[0])
        }
        #expect(cache.count == 0)
        try replace(with: "second")
        let second = SegmentFile(path: path, baseOffset: 0, fileSystem: PosixFileSystem(), openFiles: cache)
        #expect(try files.contents(second.file()) == Array("second".utf8))

        // A handle still alive keeps the inode it opened; a new one sees the new inode.
        try replace(with: "third")
        let third = SegmentFile(path: path, baseOffset: 0, fileSystem: PosixFileSystem(), openFiles: cache)
        #expect(try files.contents(third.file()) == Array("third".utf8))
        #expect(try files.contents(second.file()) == Array("second".utf8))
    }

    @Test func maxOpenSegmentFilesIsAtLeastTwo() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var options = LogOptions()
        options.maxOpenSegmentFiles = 1
        #expect(throws: LogError.self) { try SegmentLog.open(directory: dir.logPath, options: options) }
    }

    // MARK: Directory durability

    @Test func aNewLogDirectoryIsSyncedInItsParent() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        var options = LogOptions()
        options.fileSystem = fs
        try SegmentLog.open(directory: dir.logPath, options: options).close()
        // Both dir.path and the log inside it were created: each entry synced in its
        // parent, outermost first, before anything inside the log was.
        let synced = fs.syncedDirectories.withLock { $0 }
        #expect(Array(synced.prefix(2)) == [parentDirectory(of: dir.path), dir.path])

        fs.syncedDirectories.withLock { $0.removeAll() }
        try SegmentLog.open(directory: dir.path + "/second", options: options).close()
        #expect(fs.syncedDirectories.withLock { $0.first } == dir.path)
    }

    @Test func parentDirectories() {
        #expect(parentDirectory(of: "/a/b") == "/a")
        #expect(parentDirectory(of: "/a/b/") == "/a")
        #expect(parentDirectory(of: "/a//b") == "/a")
        #expect(parentDirectory(of: "/b") == "/")
        #expect(parentDirectory(of: "/") == "/")
        #expect(parentDirectory(of: "a/b") == "a")
        #expect(parentDirectory(of: "b") == ".")
    }
}

// MARK: Helpers

/// Small files with distinct contents, for driving `SegmentFile`s without a log.
private struct SampleFiles {
    let directory = TemporaryDirectory()
    let paths: [String]
    let contents: [[UInt8]]

    init(count: Int) throws {
        let root = directory.path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        paths = (0..<count).map { root + "/file-\($0)" }
        contents = (0..<count).map { Array("file \($0)".utf8) }
        for (path, bytes) in zip(paths, contents) { writeFileBytes(path, bytes) }
    }

    func handles(_ cache: OpenFileCache) -> [SegmentFile] {
        paths.indices.map {
            SegmentFile(path: paths[$0], baseOffset: UInt64($0), fileSystem: PosixFileSystem(), openFiles: cache)
        }
    }

    func contents(_ file: any StorageFile) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(try file.size()))
        let got = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        return Array(bytes[0..<got])
    }

    func remove() { directory.remove() }
}

private let hasProcFD = FileManager.default.fileExists(atPath: "/proc/self/fd")

/// How many of this process's descriptors are open on `path` or files under it. Only
/// those: the tests running beside this one open descriptors of their own.
private func openDescriptors(under path: String) -> Int {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return entries.count { entry in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry) else {
            return false  // the descriptor that listed the directory, closed by now
        }
        return target == path || target.hasPrefix(path + "/") || target == path + " (deleted)"
    }
}

/// A seeded generator, so the random reads are the same on every run.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
