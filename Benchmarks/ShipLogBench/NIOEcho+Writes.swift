import Foundation
import Histogram
import NIOPosix
import ShipLogNode
import ShipLogStorage
import Synchronization

/// `nio-echo-rtt`'s floors with the two writes (`--write-file` on the server, a local pwrite
/// before each request): one task timed per append, and 16 concurrent tasks for throughput.
extension NIOEcho {
    /// `count` timed appends from a plain task (after `warmUp`), each a pwrite of the request to
    /// `localFile` and then a round trip to a server started with `writeFile` (which pwrites it too).
    /// With `onLoopExecutor` the task prefers the connection's loop as its executor (`Node.appendExecutor`'s way).
    static func appendsWithWrites(port: UInt16, localFile: String, requestBytes: Int, replyBytes: Int, count: Int,
                                  warmUp: Int = 1000, onLoopExecutor: Bool = false) throws -> Histogram<UInt64> {
        try appends(port: port, local: try LocalWrites(path: localFile, recordBytes: requestBytes), requestBytes: requestBytes,
                    replyBytes: replyBytes, count: count, warmUp: warmUp, onLoopExecutor: onLoopExecutor)
    }

    /// The same with `local` as the local write (a pwrite, or the log's append), closed at the end.
    static func appends(port: UInt16, local writes: some LocalAppend, requestBytes: Int, replyBytes: Int, count: Int,
                        warmUp: Int = 1000, onLoopExecutor: Bool = false) throws -> Histogram<UInt64> {
        defer { writes.close() }
        let client = try Client(port: port, requestBytes: requestBytes, replyBytes: replyBytes)
        defer { client.close() }
        @Sendable func series() async throws -> Histogram<UInt64> {
            try await client.series(count: count, warmUp: warmUp) { try await writes.append() }
        }
        guard onLoopExecutor else { return try blocking { try await series() } }
        let executor = EventLoopTaskExecutor(loop: client.loop)
        return try blocking { try await withTaskExecutorPreference(executor) { try await series() } }
    }

    /// Appends/s of `writers` plain tasks, each doing `perWriter` appends (after 50 untimed ones
    /// each): a pwrite of the request to `localFile`, then a round trip on one shared connection
    /// to a server started with `writeFile`. Requests that reach the loop together share one
    /// flush, and the server pwrites each read's requests at once: the batching a replicated
    /// append may use, with nothing else (`replicate-sync`'s 16-writer floor on SwiftNIO).
    static func concurrentAppendsWithWrites(port: UInt16, localFile: String, requestBytes: Int, replyBytes: Int,
                                            writers: Int, perWriter: Int) throws -> Double {
        try concurrentAppends(port: port, local: try LocalWrites(path: localFile, recordBytes: requestBytes),
                              requestBytes: requestBytes, replyBytes: replyBytes, writers: writers, perWriter: perWriter)
    }

    /// The same with `local` as the local write, closed at the end.
    static func concurrentAppends(port: UInt16, local writes: some LocalAppend, requestBytes: Int, replyBytes: Int,
                                  writers: Int, perWriter: Int) throws -> Double {
        defer { writes.close() }
        let client = try Client(port: port, requestBytes: requestBytes, replyBytes: replyBytes)
        defer { client.close() }
        let run: @Sendable (Int) async throws -> Void = { count in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<writers {
                    group.addTask {
                        for _ in 0..<count {
                            try await writes.append()
                            try await client.queuedTrip()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try blocking { try await run(50) }
        let start = monotonicNanoseconds()
        try blocking { try await run(perWriter) }
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        return Double(writers * perWriter) / seconds
    }

    /// The floors' local write: each `append` pwrites one record after the last (page cache, no
    /// fsync), from any thread. `close` closes and removes the file.
    final class LocalWrites: LocalAppend {
        let file: Int32
        let path: String
        let record: [UInt8]
        let position = Atomic<Int64>(0)

        init(path: String, recordBytes: Int) throws {
            file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard file >= 0 else { throw NetworkError.system(call: "open", errno: errno, context: path) }
            self.path = path
            record = [UInt8](repeating: 0x61, count: recordBytes)
        }

        func append() throws {
            let at = position.add(Int64(record.count), ordering: .relaxed).oldValue
            let written = record.withUnsafeBytes { pwrite(file, $0.baseAddress, $0.count, off_t(at)) }
            guard written == record.count else { throw NetworkError.system(call: "pwrite", errno: errno, context: path) }
        }

        func close() {
            _ = Glibc.close(file)
            unlink(path)
        }
    }
}

/// The local write a floor's caller makes before each round trip.
protocol LocalAppend: Sendable {
    func append() async throws
    /// Closes and removes what the appends wrote.
    func close()
}

extension NIOEcho {
    /// The floors' local write done by the log itself: each `append` is one 1 KiB record through
    /// `SegmentLog.appendKeepingBytes` (LZ4, CRC32C, group write, durability `os`), exactly the
    /// local part of a replicated append (`Node.append`), from any task. With it the floor is
    /// SwiftNIO plus the log: what is left of a sync append beyond it is the replication itself
    /// (frame, the two state machines, the follower's decoding and its log).
    final class LocalLogAppends: LocalAppend {
        let log: SegmentLog
        let directory: String
        let records: [[UInt8]]
        let next = Atomic<Int>(0)

        init(directory: String, records: [[UInt8]]) throws {
            precondition(!records.isEmpty, "a floor appends at least one distinct record")
            var options = LogOptions()
            options.durability = .os
            log = try SegmentLog.open(directory: directory, options: options)
            self.directory = directory
            self.records = records
        }

        func append() async throws {
            let i = next.add(1, ordering: .relaxed).oldValue
            _ = try await log.appendKeepingBytes([records[i % records.count]], epoch: 1, durability: .os)
        }

        func close() {
            try? log.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
