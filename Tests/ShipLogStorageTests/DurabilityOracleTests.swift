import Foundation
import Synchronization
import Testing
@testable import ShipLogStorage

/// A file system that knows what is durable: every write's batches are parsed and remembered
/// by offset; an fdatasync makes durable the writes to its inode that completed before it
/// started. An `.fsync` append (or a `sync()`) must only return once the latest write of each
/// of its offsets is durable.
final class DurabilityOracle: FileSystem, @unchecked Sendable {
    let real = PosixFileSystem()
    struct Shared {
        var nextWrite = 0
        var completed: [UInt64: [Int]] = [:]  // inode -> completed write ids not yet known durable
        var durable = Set<Int>()
        var latest: [UInt64: Int] = [:]       // log offset -> latest write id holding it
    }
    let shared = Mutex(Shared())

    static func inode(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : 0
    }

    /// nil when durable; otherwise why not.
    func notDurable(_ offsets: Range<UInt64>) -> String? {
        shared.withLock { s in
            for o in offsets {
                guard let id = s.latest[o] else { return "offset \(o) was never seen written" }
                if !s.durable.contains(id) { return "offset \(o): its write #\(id) was not followed by an fdatasync" }
            }
            return nil
        }
    }

    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        let file = try real.openFile(path, create: create)
        return OracleFile(real: file, owner: self, inode: Self.inode(path))
    }
    func openFileForReading(_ path: String) throws -> any StorageFile { try real.openFileForReading(path) }
    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func rename(_ source: String, to destination: String) throws { try real.rename(source, to: destination) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }

    final class OracleFile: StorageFile, @unchecked Sendable {
        let real: any StorageFile
        let owner: DurabilityOracle
        let inode: UInt64
        init(real: any StorageFile, owner: DurabilityOracle, inode: UInt64) {
            self.real = real
            self.owner = owner
            self.inode = inode
        }
        var path: String { real.path }
        func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
            try real.write(bytes, at: position)
            var ranges: [Range<UInt64>] = []
            if path.hasSuffix(Format.segmentSuffix) || path.hasSuffix(Format.segmentSuffix + Format.temporarySuffix) {
                var i = position == 0 ? Format.segmentHeaderBytes : 0
                while i + Format.batchHeaderBytes <= bytes.count,
                    case .success(let h) = BatchHeader.decode(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + Format.batchHeaderBytes)])),
                    i + h.totalBytes <= bytes.count {
                    ranges.append(h.firstOffset..<h.nextOffset)
                    i += h.totalBytes
                }
            }
            owner.shared.withLock { s in
                let id = s.nextWrite
                s.nextWrite += 1
                s.completed[inode, default: []].append(id)
                for r in ranges { for o in r { s.latest[o] = id } }
            }
        }
        func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
            try real.read(into: buffer, at: position)
        }
        func sync() throws {
            let covered = owner.shared.withLock { $0.completed[inode] ?? [] }
            try real.sync()
            owner.shared.withLock { s in
                let done = Set(covered)
                s.durable.formUnion(done)
                s.completed[inode]?.removeAll { done.contains($0) }
            }
        }
        func truncate(to bytes: Int64) throws { try real.truncate(to: bytes) }
        func preallocate(to bytes: Int64) throws { try real.preallocate(to: bytes) }
        func size() throws -> Int64 { try real.size() }
        func dataRanges(from position: Int64) throws -> [Range<Int64>] { try real.dataRanges(from: position) }
    }
}

@Suite(.serialized) struct DurabilityOracleTests {
    /// `.fsync` appends, `.os` appends, rolls, truncates, flush, sync() and retention at once;
    /// every `.fsync` acknowledgement and every sync() not overlapped by a truncate is checked
    /// against the oracle. (No `.buffered` appends: R1 would wedge the run.)
    @Test func noFsyncAcknowledgementPrecedesItsFdatasync() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = DurabilityOracle()
        var options = smallOptions(segmentBytes: 8 << 10)
        options.fileSystem = fs
        options.maxOpenSegmentFiles = 3
        let log = try SegmentLog.open(directory: dir.logPath, options: options)
        let started = Atomic<Int>(0), ended = Atomic<Int>(0), stop = Atomic<Bool>(false)
        let lies = Mutex<[String]>([]), checked = Atomic<Int>(0), errors = Mutex<[String]>([])
        let seconds = 10.0
        var workers: [Worker<Void>] = []
        for t in 0..<4 {
            workers.append(Worker {
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    n += 1
                    let durability: Durability = (n + t) % 3 == 0 ? .os : .fsync
                    let s0 = started.load(ordering: .sequentiallyConsistent), e0 = ended.load(ordering: .sequentiallyConsistent)
                    do {
                        let range = try log.append((0..<(n % 3 + 1)).map { makeRecord(n * 10 + $0 + t * 1_000_000) }, durability: durability)
                        guard durability == .fsync else { continue }
                        let lie = fs.notDurable(range)
                        if s0 == e0, started.load(ordering: .sequentiallyConsistent) == s0 {
                            checked.add(1, ordering: .relaxed)
                            if let lie { lies.withLock { $0.append(".fsync append \(range): \(lie)") } }
                        }
                    } catch { errors.withLock { $0.append("\(error)") } }
                }
            })
        }
        workers.append(Worker {
            var i = 0
            while !stop.load(ordering: .relaxed) {
                i += 1
                usleep(UInt32.random(in: 500...4000))
                do {
                    switch i % 5 {
                    case 0, 1:
                        let next = log.nextOffset, first = log.firstOffset
                        guard next > first + 20 else { continue }
                        started.add(1, ordering: .sequentiallyConsistent)
                        defer { ended.add(1, ordering: .sequentiallyConsistent) }
                        try log.truncate(after: next - UInt64.random(in: 2...20))
                    case 2:
                        let s0 = started.load(ordering: .sequentiallyConsistent), e0 = ended.load(ordering: .sequentiallyConsistent)
                        let before = log.nextOffset
                        try log.sync()
                        if s0 == e0, started.load(ordering: .sequentiallyConsistent) == s0, before > 0 {
                            checked.add(1, ordering: .relaxed)
                            let from = max(log.firstOffset, before > 50 ? before - 50 : 0)
                            if let lie = fs.notDurable(from..<before) { lies.withLock { $0.append("sync() before \(before): \(lie)") } }
                        }
                    case 3: try log.flush()
                    default: _ = try log.enforceRetention(RetentionPolicy(maxTotalBytes: 64 << 10))
                    }
                } catch { errors.withLock { $0.append("maintenance: \(error)") } }
            }
        })
        Thread.sleep(forTimeInterval: seconds)
        stop.store(true, ordering: .relaxed)
        for worker in workers { #expect(worker.join(seconds: 30) != nil, "a worker hung") }
        #expect(checked.load(ordering: .relaxed) > 100)
        let (lieCount, someLies) = lies.withLock { ($0.count, $0.prefix(5)) }
        let (errorCount, someErrors) = errors.withLock { ($0.count, $0.prefix(5)) }
        #expect(lieCount == 0, "\(someLies)")
        #expect(errorCount == 0, "\(someErrors)")
        print("oracle: \(checked.load(ordering: .relaxed)) acknowledgements checked, \(log.groupCommitSyncs) group syncs, next \(log.nextOffset)")
        try log.close()
    }
}
