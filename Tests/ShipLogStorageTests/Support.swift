import Foundation
import Logging
import Synchronization
@testable import ShipLogStorage

/// The tests damage logs on purpose, hundreds of times; the library's recovery warnings
/// about it (and the errors that injected failures provoke) would bury the output of a real
/// failure, so only critical messages are printed.
private let quietLogging: Void = LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .critical
    return handler
}

/// A fresh directory under the system temporary folder, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        _ = quietLogging  // before any log is opened, so before the library's logger exists
        path = NSTemporaryDirectory() + "shiplog-test-" + UUID().uuidString
    }

    var logPath: String { path + "/log" }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func smallOptions(segmentBytes: Int = 16 << 10, compression: CompressionCodec = .lz4) -> LogOptions {
    var options = LogOptions()
    options.segmentBytes = segmentBytes
    options.indexIntervalBytes = 256
    options.compression = compression
    return options
}

/// Deterministic records of varied length and compressibility.
func makeRecord(_ n: Int) -> [UInt8] {
    let text = "{\"seq\":\(n),\"level\":\"info\",\"msg\":\"request served\",\"ms\":\(n % 97)}"
    return Array(text.utf8) + (0..<(n % 13)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ n) }
}

func segmentFiles(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        .filter { $0.hasSuffix(Format.segmentSuffix) }.sorted()
}

func fileBytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

/// Rewrites a segment file's header as a future format `version` would write it, checksum
/// included, so readers must refuse it for its version rather than as damage.
func setSegmentFormatVersion(_ version: UInt32, of segment: String) {
    var bytes = fileBytes(segment)
    bytes.withUnsafeMutableBytes { header in
        header.setLittleEndian(version, at: 8)
        header.setLittleEndian(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: header[0..<28])), at: 28)
    }
    writeFileBytes(segment, bytes)
}

func writeFileBytes(_ path: String, _ bytes: [UInt8]) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

/// A file system whose writes and syncs fail on demand, the way raft-wal's tests inject
/// faults through its VFS, and which records the directories it syncs.
final class FaultInjectingFileSystem: FileSystem {
    struct Faults {
        var failSyncs = false
        var failWritesWithENOSPC = false
    }
    let real = PosixFileSystem()
    let faults = Mutex(Faults())
    /// Every `syncDirectory` call's path, in order.
    let syncedDirectories = Mutex<[String]>([])
    /// Every `startWriteback` call, in order (forwarded to the real file too).
    let writebacks = Mutex<[(path: String, range: Range<Int64>)]>([])
    /// While set, each `startWriteback` waits at this gate before it runs.
    let writebackGate = Mutex<Gate?>(nil)

    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        FaultyFile(real: try real.openFile(path, create: create), owner: self)
    }
    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func rename(_ source: String, to destination: String) throws { try real.rename(source, to: destination) }
    func syncDirectory(_ path: String) throws {
        syncedDirectories.withLock { $0.append(path) }
        try real.syncDirectory(path)
    }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }
}

final class FaultyFile: StorageFile {
    let real: any StorageFile
    let owner: FaultInjectingFileSystem
    init(real: any StorageFile, owner: FaultInjectingFileSystem) {
        self.real = real
        self.owner = owner
    }
    var path: String { real.path }
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        if owner.faults.withLock({ $0.failWritesWithENOSPC }) {
            throw LogError.io(operation: "write", path: path, errno: ENOSPC)
        }
        try real.write(bytes, at: position)
    }
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
        try real.read(into: buffer, at: position)
    }
    func sync() throws {
        if owner.faults.withLock({ $0.failSyncs }) { throw LogError.io(operation: "fsync", path: path, errno: EIO) }
        try real.sync()
    }
    func truncate(to bytes: Int64) throws { try real.truncate(to: bytes) }
    func preallocate(to bytes: Int64) throws {
        if owner.faults.withLock({ $0.failWritesWithENOSPC }) {
            throw LogError.io(operation: "fallocate", path: path, errno: ENOSPC)
        }
        try real.preallocate(to: bytes)
    }
    func size() throws -> Int64 { try real.size() }
    func startWriteback(_ range: Range<Int64>) {
        owner.writebackGate.withLock { $0 }?.arriveAndWait()
        owner.writebacks.withLock { $0.append((path, range)) }
        real.startWriteback(range)
    }
}

/// Every record the log holds, read through a cursor from the first offset.
func allRecords(_ log: SegmentLog) throws -> [[UInt8]] {
    var cursor = log.batches(from: log.firstOffset)
    var result: [[UInt8]] = []
    while let batch = try cursor.next() {
        for record in try batch.decode() { result.append(Array(record.bytes)) }
    }
    return result
}
