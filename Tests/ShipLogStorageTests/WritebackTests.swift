import Foundation
import Testing
@testable import ShipLogStorage

/// `LogOptions.writebackBytes`: the log starts the write-back of its active segment every so
/// many bytes, so a roll's fdatasync finds little left to write. Recorded through the
/// fault-injecting file system, which forwards each call to the real file; the calls run on
/// the log's write-back queue, which `close()` (or `drainWriteback()`) waits for.
@Suite struct WritebackTests {
    static let every = 64 << 10
    /// 8 KiB records, uncompressed: a batch of one is 8 KiB and some header.
    static let record = [UInt8](repeating: 0x5a, count: 8 << 10)

    static func options(_ fs: any FileSystem, writebackBytes: Int = every) -> LogOptions {
        var options = smallOptions(segmentBytes: 1 << 20, compression: .none)
        options.fileSystem = fs
        options.writebackBytes = writebackBytes
        options.preallocateSegments = false  // a segment file's size is then its written end
        return options
    }

    @Test func startsEachSegmentsWritebackEveryWritebackBytes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        let log = try SegmentLog.open(directory: dir.logPath, options: Self.options(fs))
        for _ in 0..<300 { _ = try log.append([Self.record], epoch: 1, durability: .os) }  // about 2.4 MiB: 3 segments
        try log.close()

        let calls = fs.writebacks.withLock { $0 }
        let files = segmentFiles(dir.logPath)
        #expect(files.count == 3)
        for (index, name) in files.enumerated() {
            let path = dir.logPath + "/" + name
            let ranges = calls.filter { $0.path == path }.map(\.range)
            let end = Int64(fileBytes(path).count)
            if index < files.count - 1 { #expect(!ranges.isEmpty, "sealed segment \(name) was never written back early") }
            // From the segment's first byte, back to back, each at least `every`, none past
            // what was written, and the last within `every` of the end.
            var next: Int64 = 0
            for range in ranges {
                #expect(range.lowerBound == next, "\(name): \(range) does not follow \(next)")
                #expect(range.count >= Self.every)
                #expect(range.upperBound <= end)
                next = range.upperBound
            }
            #expect(end - next < Int64(Self.every), "\(name): \(end - next) bytes at the end never written back early")
        }
        #expect(calls.allSatisfy { call in files.contains { dir.logPath + "/" + $0 == call.path } })
    }

    @Test func zeroTurnsItOff() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        let log = try SegmentLog.open(directory: dir.logPath, options: Self.options(fs, writebackBytes: 0))
        for _ in 0..<300 { _ = try log.append([Self.record], epoch: 1, durability: .os) }
        try log.close()
        #expect(segmentFiles(dir.logPath).count == 3)
        #expect(fs.writebacks.withLock { $0.isEmpty })
    }

    @Test func negativeIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        #expect(throws: LogError.self) {
            _ = try SegmentLog.open(directory: dir.logPath, options: Self.options(FaultInjectingFileSystem(), writebackBytes: -1))
        }
    }

    /// A truncation below where the last write-back started: the next starts at the new end,
    /// so the bytes written there again are not left out.
    @Test func startsAgainFromATruncatedEnd() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = FaultInjectingFileSystem()
        let log = try SegmentLog.open(directory: dir.logPath, options: Self.options(fs))
        for _ in 0..<20 { _ = try log.append([Self.record], epoch: 1, durability: .os) }  // about 160 KiB
        log.drainWriteback()
        let before = fs.writebacks.withLock { $0 }
        let lastStart = try #require(before.last).range.upperBound
        try log.truncate(after: 2)  // keeps offsets 0...2: about 25 KiB
        let path = dir.logPath + "/" + segmentFiles(dir.logPath)[0]
        let truncatedEnd = Int64(fileBytes(path).count)
        #expect(truncatedEnd < lastStart)
        for _ in 0..<20 { _ = try log.append([Self.record], epoch: 1, durability: .os) }
        try log.close()
        let after = fs.writebacks.withLock { Array($0.dropFirst(before.count)) }
        let first = try #require(after.first)
        #expect(first.range.lowerBound == truncatedEnd)
    }

    /// The real call: bytes written, their write-back started (and a range past the end
    /// asked for too), synced and read back unchanged.
    @Test func posixFileStartsWritebackWithoutChangingBytes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = PosixFileSystem()
        try fs.createDirectory(dir.path)
        let file = try fs.openFile(dir.path + "/f", create: true)
        let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
        file.startWriteback(0..<Int64(bytes.count))
        file.startWriteback(Int64(bytes.count)..<Int64(bytes.count) * 2)
        try file.sync()
        var read = [UInt8](repeating: 0, count: bytes.count)
        let n = try read.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        #expect(n == bytes.count)
        #expect(read == bytes)
    }
}
