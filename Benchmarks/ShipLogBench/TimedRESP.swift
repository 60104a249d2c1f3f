import Foundation

/// RESP2 over a `TimedConnection`, with arrays (Sentinel's answers are arrays) and a deadline on
/// every call: the failover writer must notice a dead master or a slow Sentinel within its own
/// retry timeout. `RESPConnection` stays the lean client of the latency baseline.
final class TimedRESP {
    indirect enum Reply: Equatable {
        case simple(String)
        case error(String)
        case integer(Int)
        case bulk([UInt8]?)
        case array([Reply]?)

        /// A bulk or simple string's text.
        var text: String? {
            switch self {
            case .simple(let text): return text
            case .bulk(let bytes?): return String(decoding: bytes, as: UTF8.self)
            default: return nil
            }
        }

        /// A flat array of name, value, name, value… (SENTINEL MASTER, each entry of SENTINEL REPLICAS).
        var fields: [String: String] {
            guard case .array(let items?) = self else { return [:] }
            var fields: [String: String] = [:]
            for pair in stride(from: 0, to: items.count - 1, by: 2) {
                if let name = items[pair].text, let value = items[pair + 1].text { fields[name] = value }
            }
            return fields
        }
    }

    let connection: TimedConnection
    var port: UInt16 { connection.port }

    init(port: UInt16) throws { connection = try TimedConnection(port: port) }

    /// Sends one command and reads its reply, all within `timeoutMilliseconds`.
    func call(_ arguments: [[UInt8]], timeoutMilliseconds: Int) throws -> Reply {
        let end = deadline(milliseconds: timeoutMilliseconds)
        try connection.send(RESPConnection.command(arguments), deadline: end)
        return try readReply(deadline: end, depth: 0)
    }

    func call(_ arguments: String..., timeoutMilliseconds: Int) throws -> Reply {
        try call(arguments.map { Array($0.utf8) }, timeoutMilliseconds: timeoutMilliseconds)
    }

    private func readReply(deadline: UInt64, depth: Int) throws -> Reply {
        let line = try connection.readLine(deadline: deadline)
        guard let kind = line.first, depth < 8 else { throw NetworkError.unexpectedReply("an empty or too deeply nested reply from port \(port)") }
        let rest = String(decoding: line.dropFirst(), as: UTF8.self)
        switch kind {
        case UInt8(ascii: "+"): return .simple(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ":"):
            guard let value = Int(rest) else { throw NetworkError.unexpectedReply("integer '\(rest)' from port \(port)") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(rest), length >= -1, length < 64 << 20 else {
                throw NetworkError.unexpectedReply("bulk length '\(rest)' from port \(port)")
            }
            if length == -1 { return .bulk(nil) }
            return .bulk(Array(try connection.readBytes(length + 2, deadline: deadline).dropLast(2)))
        case UInt8(ascii: "*"):
            guard let count = Int(rest), count >= -1, count < 1 << 16 else {
                throw NetworkError.unexpectedReply("array length '\(rest)' from port \(port)")
            }
            if count == -1 { return .array(nil) }
            return .array(try (0..<count).map { _ in try readReply(deadline: deadline, depth: depth + 1) })
        default:
            throw NetworkError.unexpectedReply("reply type '\(UnicodeScalar(kind))' from port \(port)")
        }
    }
}
