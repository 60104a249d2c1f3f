import ArgumentParser
import Foundation

/// `shiplog-bench echo-server --port 0`: the second process of the loopback baselines. Hidden
/// from help. Listens on 127.0.0.1, prints `port N` on a line of its own, and serves each
/// connection on a thread of its own. It exits on SIGTERM, or when its standard input closes
/// (the benchmark that started it is gone).
///
/// Each connection starts with 8 bytes: u32 LE request size, u32 LE reply size. Then:
/// - round trips: read exactly one request, write one reply of that many bytes, until the
///   client closes;
/// - reply size `EchoServer.sink` (0xFFFF_FFFF): read until the client shuts down its side,
///   then write the number of bytes received as u64 LE (the stream baseline's end marker).
struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "The loopback baselines' peer process (internal).",
        shouldDisplay: false)

    @Option(help: "Port on 127.0.0.1 (0: any free port).")
    var port: UInt16 = 0

    func run() throws {
        let (listener, bound) = try LoopbackSocket.listen(port: port)
        print("port \(bound)")
        fflush(nil)
        exitWhenStandardInputCloses()
        try acceptConnections(on: listener, serverName: "echo server on port \(bound)") { fd, _ in
            // A connection's failure ends that connection only; the client reports it.
            try? EchoServer.serve(fd)
            close(fd)
        }
    }
}

enum EchoServer {
    /// The reply size that asks for the stream (sink) mode.
    static let sink = UInt32.max
    /// Requests and replies above this are refused (the connection is closed).
    static let maxMessageBytes = 16 << 20

    /// The 8 bytes a client sends first.
    static func handshake(requestBytes: Int, replyBytes: UInt32) -> [UInt8] {
        let request = UInt32(requestBytes)
        return (0..<4).map { UInt8(truncatingIfNeeded: request >> ($0 * 8)) }
            + (0..<4).map { UInt8(truncatingIfNeeded: replyBytes >> ($0 * 8)) }
    }

    static func serve(_ fd: Int32) throws {
        try LoopbackSocket.setNoDelay(fd)
        var header = [UInt8](repeating: 0, count: 8)
        guard try header.withUnsafeMutableBytes({ try LoopbackSocket.receiveExactly(fd, $0) }) else { return }
        let requestBytes = header.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        let replyBytes = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
        if replyBytes == sink {
            try drain(fd)
            return
        }
        guard requestBytes > 0, requestBytes <= maxMessageBytes, Int(replyBytes) <= maxMessageBytes else { return }
        var request = [UInt8](repeating: 0, count: requestBytes)
        let reply = [UInt8](repeating: 0x6b, count: Int(replyBytes))
        while try request.withUnsafeMutableBytes({ try LoopbackSocket.receiveExactly(fd, $0) }) {
            try reply.withUnsafeBytes { try LoopbackSocket.sendAll(fd, $0) }
        }
    }

    /// Reads until the client shuts down its side, then answers with the byte count.
    private static func drain(_ fd: Int32) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: UInt64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw NetworkError.system(call: "recv", errno: errno, context: "draining a stream") }
            if n == 0 { break }
            total += UInt64(n)
        }
        var count = total.littleEndian
        try withUnsafeBytes(of: &count) { try LoopbackSocket.sendAll(fd, $0) }
    }
}
