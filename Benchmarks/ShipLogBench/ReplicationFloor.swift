import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import ShipLogStorage

/// The floor of a synchronous replicated append on this machine, measured in the same run: the
/// least any replication design pays, with nothing but system calls on two threads of two
/// processes. The client pwrites a 1 KiB record to its file, sends it over loopback TCP
/// (TCP_NODELAY), and waits for a 32-byte acknowledgement; the replica (`shiplog-bench
/// replica-floor`, a `ChildProcess`) receives it, pwrites it to its own file and answers. With
/// `fsync`, both sides fdatasync (the client while the replica works: the overlap a good design
/// gets). No event loop, no thread hand-off, no framing, no checksum, no state machine.
struct ReplicaFloorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replica-floor",
        abstract: "The replication floor's replica process (internal).",
        shouldDisplay: false)

    // Not `--dir`: the benchmark's own option of that name would take it.
    @Option(name: .customLong("replica-dir"), help: "Directory for the replica's file.")
    var dir: String

    func run() throws {
        try serveFloorConnections(name: "replica floor", directory: dir, filePrefix: "replica-floor", serve: ReplicationFloor.serve)
    }
}

enum ReplicationFloor {
    static let ackBytes = 32

    /// Each connection starts with 8 bytes: u32 LE record size, u32 LE 1 to fdatasync each record.
    static func serve(_ fd: Int32, path: String) throws {
        try LoopbackSocket.setNoDelay(fd)
        var header = [UInt8](repeating: 0, count: 8)
        guard try header.withUnsafeMutableBytes({ try LoopbackSocket.receiveExactly(fd, $0) }) else { return }
        let recordBytes = header.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        let fsync = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) } == 1
        guard recordBytes > 0, recordBytes <= 1 << 20 else { return }
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw NetworkError.system(call: "open", errno: errno, context: path) }
        defer { close(file) }
        var record = [UInt8](repeating: 0, count: recordBytes)
        let ack = [UInt8](repeating: 0x6b, count: ackBytes)
        var position: off_t = 0
        while try record.withUnsafeMutableBytes({ try LoopbackSocket.receiveExactly(fd, $0) }) {
            _ = record.withUnsafeBytes { pwrite(file, $0.baseAddress, recordBytes, position) }
            position += off_t(recordBytes)
            if fsync { _ = fdatasync(file) }
            try ack.withUnsafeBytes { try LoopbackSocket.sendAll(fd, $0) }
        }
    }

    static func startReplica(directory: String) throws -> (ChildProcess, UInt16) {
        let replica = try ChildProcess(executable: try currentExecutablePath(), arguments: ["replica-floor", "--replica-dir", directory],
                                       output: .pipe, name: "replica floor")
        let line = try replica.readLine(timeout: .seconds(10))
        guard line.hasPrefix("port "), let port = UInt16(line.dropFirst(5)), port != 0 else {
            replica.stop()
            throw NetworkError.unexpectedReply("replica floor printed '\(line)' instead of 'port N'")
        }
        return (replica, port)
    }

    /// Latencies (ns) of `count` replicated appends after `warmUp` untimed ones.
    static func appends(port: UInt16, path: String, fsync: Bool, count: Int, warmUp: Int = 500,
                        recordBytes: Int = 1024) throws -> Histogram<UInt64> {
        let fd = try LoopbackSocket.connect(port: port)
        defer { close(fd) }
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw NetworkError.system(call: "open", errno: errno, context: path) }
        defer { close(file); unlink(path) }
        try EchoServer.handshake(requestBytes: recordBytes, replyBytes: fsync ? 1 : 0).withUnsafeBytes { try LoopbackSocket.sendAll(fd, $0) }
        let record = [UInt8](repeating: 0x61, count: recordBytes)
        var ack = [UInt8](repeating: 0, count: ackBytes)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        let deadline = monotonicNanoseconds() + 30_000_000_000
        var position: off_t = 0
        try record.withUnsafeBytes { record in
            try ack.withUnsafeMutableBytes { ack in
                for i in 0..<(warmUp + count) {
                    let start = monotonicNanoseconds()
                    _ = pwrite(file, record.baseAddress, recordBytes, position)
                    position += off_t(recordBytes)
                    try LoopbackSocket.sendAll(fd, record)
                    if fsync { _ = fdatasync(file) }
                    guard try LoopbackSocket.receiveExactly(fd, ack) else { throw NetworkError.closed(context: "waiting for the floor's ack \(i)") }
                    let end = monotonicNanoseconds()
                    if i >= warmUp {
                        histogram.record(end - start)
                        if end > deadline { break }
                    }
                }
            }
        }
        return histogram
    }

    /// One hand-off between two threads of a process and back (a semaphore each way), p50 in ns:
    /// what each hop between an event loop, a task pool and a writer thread costs here.
    static func threadHandOffRoundTrip(count: Int = 20_000) -> Histogram<UInt64> {
        let ping = DispatchSemaphore(value: 0)
        let pong = DispatchSemaphore(value: 0)
        let total = count + 1000
        Thread.detachNewThread {
            for _ in 0..<total {
                ping.wait()
                pong.signal()
            }
        }
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for i in 0..<total {
            let start = monotonicNanoseconds()
            ping.signal()
            pong.wait()
            if i >= 1000 { histogram.record(monotonicNanoseconds() - start) }
        }
        return histogram
    }

    /// A task hands work to an event loop and awaits its answer (NIO's singleton group, the one
    /// an embedded `Node` uses), p50 in ns: the two hops every sync append makes on the primary.
    static func taskToEventLoopRoundTrip(count: Int = 20_000) throws -> Histogram<UInt64> {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        return try blocking {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for i in 0..<(count + 1000) {
                let start = monotonicNanoseconds()
                let promise = loop.makePromise(of: Void.self)
                loop.execute { promise.succeed(()) }
                try await promise.futureResult.get()
                if i >= 1000 { histogram.record(monotonicNanoseconds() - start) }
            }
            return histogram
        }
    }

    /// One 1 KiB record appended through the log's async API from a task at `os`, p50 in ns:
    /// the local write of a sync append.
    static func asyncAppend(path: String, count: Int = 20_000) throws -> Histogram<UInt64> {
        let log = try SegmentLog.open(directory: path, options: LogOptions())
        defer { try? log.close(); try? FileManager.default.removeItem(atPath: path) }
        let record = Payload.generate(count: 1, recordBytes: 1024, seed: 9)[0]
        return try blocking {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for i in 0..<(count + 1000) {
                let start = monotonicNanoseconds()
                _ = try await log.append([record])
                if i >= 1000 { histogram.record(monotonicNanoseconds() - start) }
            }
            return histogram
        }
    }
}
