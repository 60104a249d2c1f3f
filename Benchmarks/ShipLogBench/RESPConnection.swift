import Foundation

/// A minimal Redis client: RESP2 spoken directly over a blocking socket (TCP_NODELAY), so the
/// Redis baseline pays for nothing a client library would add. Commands are encoded once by the
/// caller and sent as bytes; replies are parsed from a reused buffer.
///
/// Used by one thread at a time (the 16-client workload gives each thread its own).
final class RESPConnection: @unchecked Sendable {
    /// One parsed reply. Arrays are not needed by the baseline and are refused.
    enum Reply: Equatable {
        case simple(String)
        case error(String)
        case integer(Int)
        case bulk([UInt8]?)
    }

    let port: UInt16
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var start = 0
    private var end = 0

    init(port: UInt16) throws {
        self.port = port
        fd = try LoopbackSocket.connect(port: port)
    }

    deinit { close(fd) }

    /// A command as RESP: an array of bulk strings.
    static func command(_ arguments: [[UInt8]]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            bytes += Array("$\(argument.count)\r\n".utf8)
            bytes += argument
            bytes += [13, 10]
        }
        return bytes
    }

    static func command(_ arguments: String...) -> [UInt8] { command(arguments.map { Array($0.utf8) }) }

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try LoopbackSocket.sendAll(fd, $0) }
    }

    /// Sends a command and reads its one reply.
    func call(_ command: [UInt8]) throws -> Reply {
        try send(command)
        return try readReply()
    }

    func readReply() throws -> Reply {
        let line = try readLine()
        guard let kind = line.first else { throw NetworkError.unexpectedReply("an empty line from redis on port \(port)") }
        let rest = String(decoding: line.dropFirst(), as: UTF8.self)
        switch kind {
        case UInt8(ascii: "+"): return .simple(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ":"):
            guard let value = Int(rest) else { throw NetworkError.unexpectedReply("integer '\(rest)' from redis on port \(port)") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(rest), length >= -1, length < 64 << 20 else {
                throw NetworkError.unexpectedReply("bulk length '\(rest)' from redis on port \(port)")
            }
            if length == -1 { return .bulk(nil) }
            let body = try readBytes(length + 2)
            return .bulk(Array(body[..<length]))
        default:
            throw NetworkError.unexpectedReply("reply type '\(UnicodeScalar(kind))' from redis on port \(port)")
        }
    }

    /// Bytes up to the next CRLF, without it.
    private func readLine() throws -> ArraySlice<UInt8> {
        var scanFrom = start
        while true {
            var i = scanFrom
            while i + 1 < end {
                if buffer[i] == 13 && buffer[i + 1] == 10 {
                    let line = buffer[start..<i]
                    start = i + 2
                    return line
                }
                i += 1
            }
            scanFrom = max(start, end - 1)
            let consumed = start
            try fill()
            scanFrom -= consumed - start
        }
    }

    private func readBytes(_ count: Int) throws -> ArraySlice<UInt8> {
        while end - start < count {
            if count > buffer.count { buffer += [UInt8](repeating: 0, count: count - buffer.count) }
            try fill()
        }
        let bytes = buffer[start..<(start + count)]
        start += count
        return bytes
    }

    /// Reads more bytes into the buffer, first moving what is unread to its front. Returns with
    /// `start` possibly lowered (callers adjust their scan positions by the change).
    private func fill() throws {
        if start > 0 {
            buffer.withUnsafeMutableBytes { raw in
                _ = memmove(raw.baseAddress!, raw.baseAddress! + start, end - start)
            }
            end -= start
            start = 0
        }
        if end == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
        let n = buffer.withUnsafeMutableBytes { raw in recv(fd, raw.baseAddress! + end, raw.count - end, 0) }
        if n < 0 && errno == EINTR { return }
        guard n != 0 else { throw NetworkError.closed(context: "reading a reply from redis on port \(port)") }
        guard n > 0 else { throw NetworkError.system(call: "recv", errno: errno, context: "reading a reply from redis on port \(port)") }
        end += n
    }
}
