import CLZ4
import CLevelDB
import CSQLite
import Foundation
import Histogram
import ShipLogStorage

/// The baselines each figure is measured against, in the same run on the same machine.
enum Baselines {
    /// write(2) of the records' bytes, concatenated, in 1 MiB chunks. Returns seconds.
    static func plainWrite(_ records: [[UInt8]], path: String) throws -> Double {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError.engine("open \(path): errno \(errno)") }
        defer { close(fd); unlink(path) }
        var chunk = [UInt8]()
        chunk.reserveCapacity(1 << 20)
        return try measure {
            for record in records {
                chunk.append(contentsOf: record)
                if chunk.count >= 1 << 20 { try writeAll(fd, chunk); chunk.removeAll(keepingCapacity: true) }
            }
            try writeAll(fd, chunk)
        }
    }

    /// One write(2) per batch of the records' bytes: the system-call pattern `Durability.os`
    /// imposes (each append must be in the kernel when it returns). Returns seconds.
    static func writePerBatch(_ batches: [[[UInt8]]], path: String) throws -> Double {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError.engine("open \(path): errno \(errno)") }
        defer { close(fd); unlink(path) }
        let joined = batches.map { $0.reduce(into: [UInt8]()) { $0 += $1 } }
        return try measure { for bytes in joined { try writeAll(fd, bytes) } }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                guard n > 0 else { throw BenchError.engine("write: errno \(errno)") }
                done += n
            }
        }
    }

    /// LZ4-compressing each batch's record section (length-prefixed, as the log frames it)
    /// without writing it. Returns seconds.
    static func lz4CompressOnly(_ batches: [[[UInt8]]]) -> Double {
        let sections = batches.map(recordSection)
        var output = [UInt8](repeating: 0, count: LZ4Block.compressBound(sections.map(\.count).max() ?? 0))
        var total = 0
        let seconds = measure {
            for section in sections {
                total &+= output.withUnsafeMutableBytes { out in section.withUnsafeBytes { LZ4Block.compress($0, into: out) ?? 0 } }
            }
        }
        precondition(total > 0)
        return seconds
    }

    /// Decompressing the same batches' LZ4 payloads without reading them from disk. Seconds.
    static func lz4DecompressOnly(_ batches: [[[UInt8]]]) -> Double {
        let sections = batches.map(recordSection)
        let compressed: [[UInt8]] = sections.map { section in
            var out = [UInt8](repeating: 0, count: LZ4Block.compressBound(section.count))
            let n = out.withUnsafeMutableBytes { o in section.withUnsafeBytes { LZ4Block.compress($0, into: o)! } }
            return Array(out[0..<n])
        }
        var output = [UInt8](repeating: 0, count: sections.map(\.count).max() ?? 0)
        return measure {
            for (i, block) in compressed.enumerated() {
                let ok = output.withUnsafeMutableBytes { o in
                    block.withUnsafeBytes { LZ4Block.decompress($0, into: UnsafeMutableRawBufferPointer(rebasing: o[0..<sections[i].count])) }
                }
                precondition(ok)
            }
        }
    }

    static func recordSection(_ records: [[UInt8]]) -> [UInt8] {
        var section: [UInt8] = []
        for record in records {
            withUnsafeBytes(of: UInt32(record.count).littleEndian) { section.append(contentsOf: $0) }
            section.append(contentsOf: record)
        }
        return section
    }

    /// pwrite of `recordBytes` at the end of a growing file, then fdatasync: latency histogram in µs.
    static func rawFdatasync(recordBytes: Int, count: Int, path: String) throws -> Histogram<UInt64> {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError.engine("open \(path): errno \(errno)") }
        defer { close(fd); unlink(path) }
        let bytes = [UInt8](repeating: 0x61, count: recordBytes)
        var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        for i in 0..<count {
            let seconds = measure {
                _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, recordBytes, off_t(i * recordBytes)) }
                _ = fdatasync(fd)
            }
            histogram.record(UInt64(seconds * 1e6))
        }
        return histogram
    }

    /// SQLite in WAL mode, the engine a Swift user would pick instead: one transaction per
    /// batch, one row per record. Returns seconds for all batches.
    static func sqlite(_ batches: [[[UInt8]]], path: String, synchronous: String) throws -> Double {
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw BenchError.engine("sqlite3_open \(path)") }
        defer {
            sqlite3_close(db)
            for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        }
        func exec(_ sql: String) throws {
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
                throw BenchError.engine("sqlite: \(sql): \(String(cString: sqlite3_errmsg(db)))")
            }
        }
        try exec("PRAGMA journal_mode=WAL")
        try exec("PRAGMA synchronous=\(synchronous)")
        try exec("CREATE TABLE log(id INTEGER PRIMARY KEY, record BLOB NOT NULL)")
        var insert: OpaquePointer?
        guard sqlite3_prepare_v2(db, "INSERT INTO log(record) VALUES (?)", -1, &insert, nil) == SQLITE_OK else {
            throw BenchError.engine("sqlite prepare")
        }
        defer { sqlite3_finalize(insert) }
        return try measure {
            for batch in batches {
                try exec("BEGIN")
                for record in batch {
                    _ = record.withUnsafeBytes { sqlite3_bind_blob(insert, 1, $0.baseAddress, Int32($0.count), nil) }
                    guard sqlite3_step(insert) == SQLITE_DONE else { throw BenchError.engine("sqlite insert") }
                    sqlite3_reset(insert)
                }
                try exec("COMMIT")
            }
        }
    }

    /// LevelDB (Debian's libleveldb) with `threads` writers doing synced puts. Returns puts/s
    /// and the process's usage while they ran (LevelDB's background compaction thread included).
    static func levelDBSyncedPuts(threads: Int, putsPerThread: Int, valueBytes: Int, path: String) throws
        -> (putsPerSecond: Double, usage: ResourceUsage) {
        let options = leveldb_options_create()
        leveldb_options_set_create_if_missing(options, 1)
        var error: UnsafeMutablePointer<CChar>?
        guard let db = leveldb_open(options, path, &error) else {
            throw BenchError.engine("leveldb_open: \(error.map { String(cString: $0) } ?? "?")")
        }
        let writeOptions = leveldb_writeoptions_create()
        leveldb_writeoptions_set_sync(writeOptions, 1)
        let value = [UInt8](repeating: 0x61, count: valueBytes)
        nonisolated(unsafe) let shared = (db, writeOptions)
        let (seconds, usage) = measureUsage {
            onThreads(threads) { thread in
                for i in 0..<putsPerThread {
                    let key = Array("key-\(thread)-\(i)".utf8)
                    var err: UnsafeMutablePointer<CChar>?
                    key.withUnsafeBytes { k in
                        value.withUnsafeBytes { v in
                            leveldb_put(shared.0, shared.1, k.baseAddress, k.count, v.baseAddress, v.count, &err)
                        }
                    }
                    precondition(err == nil, "leveldb_put failed")
                }
            }
        }
        leveldb_close(db)
        leveldb_writeoptions_destroy(writeOptions)
        leveldb_options_destroy(options)
        try? FileManager.default.removeItem(atPath: path)
        return (Double(threads * putsPerThread) / seconds, usage)
    }
}

/// The least a group commit can do, as a baseline for `append-fsync-8`: `threads` writers
/// each pwrite 1 KiB at the end of a preallocated file under one mutex, then wait until an
/// fdatasync issued by whichever of them finds none running has covered their bytes.
/// Returns appends per second, the fdatasync calls made, and the process's usage meanwhile.
final class RawGroupCommit: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var endPosition: Int64 = 0
    private var written: Int64 = 0
    private var durable: Int64 = 0
    private var syncing = false
    private var syncs = 0
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError.engine("open \(path): errno \(errno)") }
        _ = posix_fallocate(fd, 0, 64 << 20)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit { close(fd) }

    struct Result {
        var appends: Int
        var appendsPerSecond: Double
        var syncs: Int
        var usage: ResourceUsage
        var appendsPerSync: Double { Double(appends) / Double(syncs) }
    }

    func run(threads: Int, appendsPerThread: Int) -> Result {
        let record = [UInt8](repeating: 0x61, count: 1024)
        let (seconds, usage) = measureUsage {
            onThreads(threads) { _ in
                for _ in 0..<appendsPerThread { self.append(record) }
            }
        }
        let appends = threads * appendsPerThread
        return Result(appends: appends, appendsPerSecond: Double(appends) / seconds, syncs: syncs, usage: usage)
    }

    private func append(_ record: [UInt8]) {
        pthread_mutex_lock(&mutex)
        _ = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(endPosition)) }
        endPosition += Int64(record.count)
        written += 1
        let mine = written
        while durable < mine {
            if !syncing {
                syncing = true
                let target = written
                pthread_mutex_unlock(&mutex)
                _ = fdatasync(fd)
                pthread_mutex_lock(&mutex)
                syncs += 1
                durable = target
                syncing = false
                pthread_cond_broadcast(&condition)
            } else {
                pthread_cond_wait(&condition, &mutex)
            }
        }
        pthread_mutex_unlock(&mutex)
    }
}
