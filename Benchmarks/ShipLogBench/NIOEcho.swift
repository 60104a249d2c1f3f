import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import ShipLogNode
import ShipLogStorage
import Synchronization

/// `nio-echo-rtt`: what the mandated stack (SwiftNIO) charges for the round trip a sync append
/// is built on, beside `loopback-rtt` (blocking sockets) in the same run. Same shape: two
/// processes on 127.0.0.1, TCP_NODELAY, one connection, 1 KiB out, 32 bytes back. The server
/// (`shiplog-bench nio-echo-server`) is a minimal SwiftNIO handler on one event loop; the client
/// a SwiftNIO channel on NIO's singleton group (the one an embedded `Node` uses), driven three ways:
/// - `asyncCaller`: a Swift task on the global executor hands the request to the event loop and
///   awaits the reply on a continuation the loop resumes: what `await node.append(...)` does
///   around its network round trip (one hop to the loop, one back);
/// - `loopExecutor`: the same task, preferring the loop as its executor (`EventLoopTaskExecutor`);
/// - `loopToLoop`: the event loop sends the next request from the reply's read: NIO to NIO, no task.
///
/// With `--write-file` the server pwrites every request to that file before it answers, and
/// `appendsWithWrites` has the calling task pwrite each request to a file of its own before
/// handing it to the loop: `replication-floor`'s two writes on the mandated stack, the least a
/// replicated append through SwiftNIO from a task can cost, with no log, frame or state machine.
struct NIOEchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nio-echo-server",
        abstract: "The nio-echo-rtt workload's SwiftNIO server process (internal).",
        shouldDisplay: false)

    @Option(help: "Port on 127.0.0.1 (0: any free port).")
    var port: UInt16 = 0

    @Option(help: "Pwrite every request to this file before answering.")
    var writeFile: String?

    @Flag(help: "Check a CRC32C over every read's requests before writing them (the follower's check of each batch).")
    var checksum = false

    func run() throws {
        var file: Int32 = -1
        if let writeFile {
            file = open(writeFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard file >= 0 else { throw NetworkError.system(call: "open", errno: errno, context: writeFile) }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(NIOEchoServerHandler(file: file, checksum: checksum)) }
            }
            .bind(host: "127.0.0.1", port: Int(port)).wait()
        print("port \(channel.localAddress?.port ?? 0)")
        fflush(nil)
        exitWhenStandardInputCloses()
        try channel.closeFuture.wait()
    }
}

/// Reads the 8-byte `EchoServer.handshake`, then answers every `requestBytes` received with
/// `replyBytes`, flushed once per read. Round trips only (no sink mode). With a `file` (not -1)
/// it pwrites the request bytes of each read there first, on the loop: page cache, no fsync.
final class NIOEchoServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let file: Int32
    private let checksum: Bool
    /// Kept so the checksum cannot be optimized away.
    private(set) var lastChecksum: UInt32 = 0
    private var position: off_t = 0
    private var header: [UInt8] = []
    private var requestBytes = 0
    private var reply: ByteBuffer?
    private var received = 0

    init(file: Int32, checksum: Bool = false) {
        self.file = file
        self.checksum = checksum
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if reply == nil {
            let take = min(8 - header.count, buffer.readableBytes)
            header += buffer.readBytes(length: take) ?? []
            guard header.count == 8 else { return }
            requestBytes = header[0..<4].reversed().reduce(0) { $0 << 8 | Int($1) }
            let replyBytes = header[4..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
            guard requestBytes > 0, requestBytes <= EchoServer.maxMessageBytes, replyBytes > 0,
                  replyBytes <= EchoServer.maxMessageBytes else { return context.close(promise: nil) }
            reply = context.channel.allocator.buffer(repeating: 0x6b, count: replyBytes)
        }
        if checksum, buffer.readableBytes > 0 {
            lastChecksum = buffer.withUnsafeReadableBytes { CRC32C.checksum($0) }
        }
        if file >= 0, buffer.readableBytes > 0 {
            let written = buffer.withUnsafeReadableBytes { pwrite(file, $0.baseAddress, $0.count, position) }
            guard written == buffer.readableBytes else { return context.close(promise: nil) }
            position += off_t(written)
        }
        received += buffer.readableBytes
        var replies = 0
        while received >= requestBytes {
            received -= requestBytes
            replies += 1
        }
        guard let reply, replies > 0 else { return }
        for _ in 0..<replies { context.write(wrapOutboundOut(reply), promise: nil) }
        context.flush()
    }
}

/// The client's handler: counts reply bytes and, per whole reply, resumes the waiting caller
/// or runs the loop-driven step. Its state is confined to the channel's event loop.
final class NIOEchoClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let replyBytes: Int
    private var received = 0
    /// The task waiting for the next reply (`asyncCaller`, `loopExecutor`).
    var waiter: CheckedContinuation<Void, any Error>?
    /// Concurrent callers in the order their requests were written (`concurrentAppendsWithWrites`):
    /// the server answers in order, so each reply resumes the oldest.
    var queue: [CheckedContinuation<Void, any Error>] = []
    private var queueHead = 0
    /// A flush is queued on the loop for requests written since the last one.
    var flushScheduled = false
    /// The loop-driven step run on each reply (`loopToLoop`).
    var onReply: (() -> Void)?

    init(replyBytes: Int) { self.replyBytes = replyBytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        while received >= replyBytes {
            received -= replyBytes
            if let waiter {
                self.waiter = nil
                waiter.resume()
            } else if queueHead < queue.count {
                let next = queue[queueHead]
                queueHead += 1
                if queueHead == queue.count { (queue, queueHead) = ([], 0) }
                next.resume()
            } else {
                onReply?()
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        waiter?.resume(throwing: NetworkError.closed(context: "the NIO echo server closed the connection"))
        waiter = nil
        for caller in queue[queueHead...] { caller.resume(throwing: NetworkError.closed(context: "the NIO echo server closed the connection")) }
        (queue, queueHead) = ([], 0)
        context.fireChannelInactive()
    }
}

enum NIOEcho {
    struct Result {
        var asyncCaller: Histogram<UInt64>
        var loopExecutor: Histogram<UInt64>
        var loopToLoop: Histogram<UInt64>
    }

    static func startServer(writeFile: String? = nil, checksum: Bool = false) throws -> (ChildProcess, UInt16) {
        let server = try ChildProcess(executable: try currentExecutablePath(),
                                      arguments: ["nio-echo-server", "--port", "0"] + (writeFile.map { ["--write-file", $0] } ?? [])
                                          + (checksum ? ["--checksum"] : []),
                                      output: .pipe, name: "NIO echo server")
        let line = try server.readLine(timeout: .seconds(10))
        guard line.hasPrefix("port "), let port = UInt16(line.dropFirst(5)), port != 0 else {
            server.stop()
            throw NetworkError.unexpectedReply("NIO echo server printed '\(line)' instead of 'port N'")
        }
        return (server, port)
    }

    /// `count` timed round trips of each kind (after `warmUp` untimed ones) on one connection.
    static func roundTrips(port: UInt16, requestBytes: Int, replyBytes: Int, count: Int, warmUp: Int = 1000) throws -> Result {
        let client = try Client(port: port, requestBytes: requestBytes, replyBytes: replyBytes)
        defer { client.close() }
        let asyncCaller = try blocking { try await client.series(count: count, warmUp: warmUp) }
        let executor = EventLoopTaskExecutor(loop: client.loop)
        let loopExecutor = try blocking {
            try await withTaskExecutorPreference(executor) { try await client.series(count: count, warmUp: warmUp) }
        }
        let loopToLoop = try loopDriven(loop: client.loop, channel: client.channel, handler: client.handler, request: client.request,
                                        total: warmUp + count, warmUp: warmUp)
        return Result(asyncCaller: asyncCaller, loopExecutor: loopExecutor, loopToLoop: loopToLoop)
    }

    /// One connection to an echo server, its handshake sent.
    struct Client: Sendable {
        let handler: NIOEchoClientHandler
        let channel: any Channel
        let request: ByteBuffer
        var loop: any EventLoop { channel.eventLoop }

        init(port: UInt16, requestBytes: Int, replyBytes: Int) throws {
            let handler = NIOEchoClientHandler(replyBytes: replyBytes)
            channel = try ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
                }
                .connect(host: "127.0.0.1", port: Int(port)).wait()
            self.handler = handler
            request = channel.allocator.buffer(repeating: 0x61, count: requestBytes)
            try channel.writeAndFlush(channel.allocator.buffer(bytes: EchoServer.handshake(requestBytes: requestBytes,
                                                                                            replyBytes: UInt32(replyBytes)))).wait()
        }

        func close() { try? channel.close().wait() }

        /// One request handed to the loop; the reply resumes the caller.
        func trip() async throws {
            let (loop, handler, channel, request) = (loop, handler, channel, request)
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                loop.execute {
                    handler.waiter = continuation
                    channel.writeAndFlush(request, promise: nil)
                }
            }
        }

        /// One request among concurrent callers: written on the loop, flushed once with the others
        /// that reach the loop in the same turn; the reply resumes the caller in FIFO order.
        func queuedTrip() async throws {
            let (loop, handler, channel, request) = (loop, handler, channel, request)
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                loop.execute {
                    guard channel.isActive else {
                        return continuation.resume(throwing: NetworkError.closed(context: "the NIO echo connection closed"))
                    }
                    handler.queue.append(continuation)
                    channel.write(request, promise: nil)
                    guard !handler.flushScheduled else { return }
                    handler.flushScheduled = true
                    loop.execute {
                        handler.flushScheduled = false
                        channel.flush()
                    }
                }
            }
        }

        /// `warmUp + count` trips from the calling task, each after `before`, the last `count` timed
        /// (`before` included), bounded by 30 s.
        func series(count: Int, warmUp: Int, before: () async throws -> Void = {}) async throws -> Histogram<UInt64> {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            let deadline = monotonicNanoseconds() + 30_000_000_000
            for i in 0..<(warmUp + count) {
                let start = monotonicNanoseconds()
                try await before()
                try await trip()
                let end = monotonicNanoseconds()
                if i >= warmUp {
                    histogram.record(end - start)
                    if end > deadline { break }
                }
            }
            return histogram
        }
    }

    /// The event loop sends each request from the previous reply's read, timing it there.
    private static func loopDriven(loop: any EventLoop, channel: any Channel, handler: NIOEchoClientHandler, request: ByteBuffer,
                                   total: Int, warmUp: Int) throws -> Histogram<UInt64> {
        let done = loop.makePromise(of: Histogram<UInt64>.self)
        loop.execute {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var sent = 1
            var start = monotonicNanoseconds()
            let deadline = start + 30_000_000_000
            handler.onReply = {
                let end = monotonicNanoseconds()
                if sent > warmUp { histogram.record(end - start) }
                guard sent < total, end < deadline else {
                    handler.onReply = nil
                    return done.succeed(histogram)
                }
                sent += 1
                start = monotonicNanoseconds()
                channel.writeAndFlush(request, promise: nil)
            }
            channel.writeAndFlush(request, promise: nil)
        }
        channel.closeFuture.whenComplete { _ in
            // On the loop: a connection lost mid-series fails it instead of leaving it waiting.
            guard handler.onReply != nil else { return }
            handler.onReply = nil
            done.fail(NetworkError.closed(context: "the NIO echo connection closed"))
        }
        return try done.futureResult.wait()
    }
}
