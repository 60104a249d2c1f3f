import Foundation
import Histogram

/// The plain-TCP baselines the replication figures are compared against: what two processes on
/// 127.0.0.1 pay for a round trip and for a bulk stream, with nothing but send(2) and recv(2).
/// The peer is this executable started again as `echo-server` (a `ChildProcess`).
enum LoopbackBaselines {
    /// Latencies of round trips, in nanoseconds.
    struct RoundTrips {
        var requestBytes: Int
        var replyBytes: Int
        var count: Int
        var histogram: Histogram<UInt64>
        var p50Microseconds: Double { Double(histogram.valueAtPercentile(50)) / 1000 }
        var p99Microseconds: Double { Double(histogram.valueAtPercentile(99)) / 1000 }
    }

    /// Starts the echo server process and returns it with its port.
    static func startEchoServer() throws -> (ChildProcess, UInt16) {
        let server = try ChildProcess(executable: try currentExecutablePath(), arguments: ["echo-server", "--port", "0"],
                                      output: .pipe, name: "echo server")
        let line = try server.readLine(timeout: .seconds(10))
        guard line.hasPrefix("port "), let port = UInt16(line.dropFirst(5)), port != 0 else {
            server.stop()
            throw NetworkError.unexpectedReply("echo server printed '\(line)' instead of 'port N'")
        }
        return (server, port)
    }

    /// `count` timed round trips (after `warmUp` untimed ones) on one connection with
    /// TCP_NODELAY: send `requestBytes`, receive `replyBytes`. Stops early, with what it has,
    /// once `timeLimit` has passed (a bounded run on a machine that is very slow).
    static func roundTrips(port: UInt16, requestBytes: Int, replyBytes: Int, count: Int, warmUp: Int = 1000,
                           timeLimit: Duration = .seconds(30)) throws -> RoundTrips {
        precondition(requestBytes > 0 && replyBytes > 0 && count > 0)
        let fd = try LoopbackSocket.connect(port: port)
        defer { close(fd) }
        try EchoServer.handshake(requestBytes: requestBytes, replyBytes: UInt32(replyBytes)).withUnsafeBytes {
            try LoopbackSocket.sendAll(fd, $0)
        }
        let request = [UInt8](repeating: 0x61, count: requestBytes)
        var reply = [UInt8](repeating: 0, count: replyBytes)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        let deadline = monotonicNanoseconds() + UInt64(timeLimit.components.seconds) * 1_000_000_000
        var done = 0
        try request.withUnsafeBytes { request in
            try reply.withUnsafeMutableBytes { reply in
                for i in 0..<(warmUp + count) {
                    let start = monotonicNanoseconds()
                    try LoopbackSocket.sendAll(fd, request)
                    guard try LoopbackSocket.receiveExactly(fd, reply) else {
                        throw NetworkError.closed(context: "waiting for round trip \(i)'s reply")
                    }
                    let end = monotonicNanoseconds()
                    if i >= warmUp {
                        histogram.record(end - start)
                        done += 1
                        if end > deadline { break }
                    }
                }
            }
        }
        return RoundTrips(requestBytes: requestBytes, replyBytes: replyBytes, count: done, histogram: histogram)
    }

    /// Sends `bytes` through one connection in 1 MiB writes; the server counts them and answers
    /// with the count once the client has shut down its side. Returns seconds from the first
    /// write to that answer, so every byte was received by the other process.
    static func stream(port: UInt16, bytes: Int) throws -> Double {
        let fd = try LoopbackSocket.connect(port: port)
        defer { close(fd) }
        try EchoServer.handshake(requestBytes: 0, replyBytes: EchoServer.sink).withUnsafeBytes { try LoopbackSocket.sendAll(fd, $0) }
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        var received: UInt64 = 0
        let seconds = try measure {
            try chunk.withUnsafeBytes { chunk in
                var left = bytes
                while left > 0 {
                    let n = min(left, chunk.count)
                    try LoopbackSocket.sendAll(fd, UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
                    left -= n
                }
            }
            shutdown(fd, Int32(SHUT_WR))
            guard try withUnsafeMutableBytes(of: &received, { try LoopbackSocket.receiveExactly(fd, $0) }) else {
                throw NetworkError.closed(context: "waiting for the stream's byte count")
            }
        }
        guard UInt64(littleEndian: received) == UInt64(bytes) else {
            throw NetworkError.unexpectedReply("the echo server received \(UInt64(littleEndian: received)) bytes of \(bytes)")
        }
        return seconds
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one vDSO call, cheap enough to time every round trip.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
