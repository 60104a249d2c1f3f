import Foundation

/// etcd's v3 JSON gateway (grpc-gateway, served on each member's client port) spoken as plain
/// HTTP/1.1 over a `TimedConnection`: POST a JSON body, read the status and a Content-Length
/// body, all within one deadline. One keep-alive connection to one member; after any error or
/// timeout the caller drops it (a late answer would otherwise be read as the next one's).
final class EtcdGateway {
    let port: UInt16
    private let connection: TimedConnection

    init(port: UInt16) throws {
        self.port = port
        connection = try TimedConnection(port: port)
    }

    /// POSTs `body` to `path`; returns the status code and the body.
    func post(_ path: String, body: [UInt8], timeoutMilliseconds: Int) throws -> (status: Int, body: [UInt8]) {
        let end = deadline(milliseconds: timeoutMilliseconds)
        let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\n\r\n"
        try connection.send(Array(head.utf8) + body, deadline: end)
        let statusLine = String(decoding: try connection.readLine(deadline: end), as: UTF8.self)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw NetworkError.unexpectedReply("status line '\(statusLine)' from etcd on port \(port)")
        }
        var length: Int?
        for _ in 0..<100 {
            let line = String(decoding: try connection.readLine(deadline: end), as: UTF8.self)
            if line.isEmpty { break }
            let header = line.split(separator: ":", maxSplits: 1)
            if header.count == 2, header[0].lowercased() == "content-length" {
                length = Int(header[1].trimmingCharacters(in: .whitespaces))
            }
        }
        // grpc-gateway sends Content-Length on every answer seen; anything else (chunked) is
        // refused rather than half-read.
        guard let length, length >= 0, length < 16 << 20 else {
            throw NetworkError.unexpectedReply("an answer without a usable Content-Length from etcd on port \(port)")
        }
        return (status, try connection.readBytes(length, deadline: end))
    }

    /// POSTs and decodes a 200 answer's JSON object.
    func postJSON(_ path: String, body: String, timeoutMilliseconds: Int) throws -> [String: Any] {
        let (status, answer) = try post(path, body: Array(body.utf8), timeoutMilliseconds: timeoutMilliseconds)
        guard status == 200, let object = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any] else {
            throw NetworkError.unexpectedReply("\(path) answered \(status): \(String(decoding: answer.prefix(200), as: UTF8.self)) on port \(port)")
        }
        return object
    }

    /// A put of `value` under `key`: true when etcd acknowledged it (200 with a header).
    func put(key: String, base64Value: String, timeoutMilliseconds: Int) throws -> Bool {
        let body = "{\"key\":\"\(Data(key.utf8).base64EncodedString())\",\"value\":\"\(base64Value)\"}"
        let answer = try postJSON("/v3/kv/put", body: body, timeoutMilliseconds: timeoutMilliseconds)
        return answer["header"] != nil
    }

    /// What /v3/maintenance/status says of this member.
    struct Status {
        var memberID: String
        var leaderID: String
        var raftTerm: UInt64
        var raftIndex: UInt64
    }

    func status(timeoutMilliseconds: Int) throws -> Status {
        let answer = try postJSON("/v3/maintenance/status", body: "{}", timeoutMilliseconds: timeoutMilliseconds)
        guard let header = answer["header"] as? [String: Any], let member = header["member_id"] as? String else {
            throw NetworkError.unexpectedReply("a status without header.member_id from etcd on port \(port)")
        }
        // uint64 fields are JSON strings in grpc-gateway's encoding; zero ones are left out.
        func number(_ name: String) -> UInt64 { (answer[name] as? String).flatMap { UInt64($0) } ?? 0 }
        return Status(memberID: member, leaderID: answer["leader"] as? String ?? "0", raftTerm: number("raftTerm"),
                      raftIndex: number("raftIndex"))
    }
}
