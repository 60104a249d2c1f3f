import Foundation
import Testing
@testable import ShipLogStorage

/// Index files record the interval their writer kept between entries (format.md §5, version
/// 2), so that `shiplog repair` rebuilds the index the writer would have written; version-1
/// files, which did not record it, are still read (§7).
@Suite struct IndexIntervalTests {
    func shiplog(_ arguments: String...) throws -> ToolTests.Run {
        try ToolTests.run(ToolTests.toolPath, arguments)
    }

    /// Rewrites an index file as a version-1 writer wrote it: version 1, zero in the field
    /// that version 2 uses for the interval, the checksum made again.
    func downgradeToVersion1(_ path: String) {
        var bytes = fileBytes(path)
        bytes.withUnsafeMutableBytes { raw in
            raw.setLittleEndian(UInt32(1), at: 8)
            raw.setLittleEndian(UInt32(0), at: 48)
            var crc = CRC32C()
            crc.update(UnsafeRawBufferPointer(rebasing: raw[0..<52]))
            crc.update(UnsafeRawBufferPointer(rebasing: raw[Format.indexHeaderBytes...]))
            raw.setLittleEndian(crc.value, at: 52)
        }
        writeFileBytes(path, bytes)
    }

    func interval(of path: String) -> UInt32 {
        fileBytes(path).withUnsafeBytes { $0.getLittleEndian(at: 48, as: UInt32.self) }
    }

    @Test func theIndexHeaderRecordsTheIntervalAndDecodesBothVersions() throws {
        let index = IndexFile(baseOffset: 5, segmentBytes: 1000, nextOffset: 9, newestTimestampMs: 7, intervalBytes: 256,
                              entries: [IndexEntry(offset: 6, position: 400)])
        let bytes = index.encoded()
        #expect(bytes.withUnsafeBytes { $0.getLittleEndian(at: 8, as: UInt32.self) } == 2)
        #expect(bytes.withUnsafeBytes { $0.getLittleEndian(at: 48, as: UInt32.self) } == 256)
        #expect(bytes.withUnsafeBytes { IndexFile.decode($0) } == index)

        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let path = dir.path + "/index"
        writeFileBytes(path, bytes)
        downgradeToVersion1(path)
        var old = index
        old.intervalBytes = nil
        #expect(fileBytes(path).withUnsafeBytes { IndexFile.decode($0) } == old, "a version-1 file is read, its interval unknown")
        // Version 1 with a non-zero reserved field, version 2 with a zero interval, version 3: refused.
        for (version, field) in [(UInt32(1), UInt32(256)), (2, 0), (3, 256)] {
            var bad = bytes
            bad.withUnsafeMutableBytes { raw in
                raw.setLittleEndian(version, at: 8)
                raw.setLittleEndian(field, at: 48)
                var crc = CRC32C()
                crc.update(UnsafeRawBufferPointer(rebasing: raw[0..<52]))
                crc.update(UnsafeRawBufferPointer(rebasing: raw[Format.indexHeaderBytes...]))
                raw.setLittleEndian(crc.value, at: 52)
            }
            #expect(bad.withUnsafeBytes { IndexFile.decode($0) } == nil, "version \(version), field \(field)")
        }
    }

    /// The writer keeps an entry every 256 bytes (smallOptions); a rebuilt index is the
    /// writer's own file, byte for byte. With no index left to say, the default is used.
    @Test func repairRebuildsAnIndexWithTheWritersInterval() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try ToolTests().makeLog(dir)
        let indexes = segmentFiles(dir.logPath).dropLast().map {
            dir.logPath + "/" + Format.indexName(baseOffset: Format.baseOffset(ofSegmentName: $0)!)
        }
        let original = fileBytes(indexes[0])
        #expect(interval(of: indexes[0]) == 256)
        try FileManager.default.removeItem(atPath: indexes[0])
        #expect(try shiplog("repair", dir.logPath, "--apply").status == 0)
        #expect(fileBytes(indexes[0]) == original, "the rebuilt index is the writer's")

        // The active segment's index too: the writer left one at its clean close.
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.logPath) where name.hasSuffix(Format.indexSuffix) {
            try FileManager.default.removeItem(atPath: dir.logPath + "/" + name)
        }
        #expect(try shiplog("repair", dir.logPath, "--apply").status == 0)
        #expect(indexes.allSatisfy { interval(of: $0) == UInt32(LogOptions().indexIntervalBytes) })
        #expect(try shiplog("verify", dir.logPath).status == 0)
    }

    /// A log whose index files a version-1 writer wrote opens, reads at every offset through
    /// them, and verifies healthy.
    @Test func versionOneIndexFilesAreStillRead() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let records = try ToolTests().makeLog(dir)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.logPath).filter { $0.hasSuffix(Format.indexSuffix) }
        #expect(names.count == segmentFiles(dir.logPath).count)
        for name in names { downgradeToVersion1(dir.logPath + "/" + name) }
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 0 && !verify.output.contains("index damaged"), "\(verify.output)")
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 4096))
        #expect(log.recoveryReport.cleanShutdown)
        for offset in stride(from: 0, to: 300, by: 7) { #expect(try log.record(at: UInt64(offset)).bytes == records[offset]) }
        try log.close()
    }
}
