import Foundation
import Histogram
import Synchronization

/// The Redis peer: SET of a 1 KiB value followed by `WAIT 1 0` (return once one replica has
/// acknowledged the write) against a `RedisPair`, the nearest thing Redis has to a synchronous
/// replicated append. SET and WAIT go out together in one write, as a client that pipelines
/// them sends them, and an operation ends when WAIT's reply (`:1`) has arrived: one request
/// whose answer means "a replica has it", like one `sync(quorum: 1)` append.
enum RedisBaselines {
    static let valueBytes = 1024

    /// SET key value + WAIT 1 0, encoded once per client.
    static func setAndWait(key: String) -> [UInt8] {
        let value = [UInt8](repeating: 0x76, count: valueBytes)
        return RESPConnection.command([Array("SET".utf8), Array(key.utf8), value]) + RESPConnection.command("WAIT", "1", "0")
    }

    /// One acknowledged write: sends the pair and checks both replies.
    private static func acknowledgedWrite(_ connection: RESPConnection, _ request: [UInt8]) throws {
        try connection.send(request)
        let set = try connection.readReply()
        guard set == .simple("OK") else { throw NetworkError.unexpectedReply("SET answered \(set) on port \(connection.port)") }
        let wait = try connection.readReply()
        guard case .integer(let replicas) = wait, replicas >= 1 else {
            throw NetworkError.unexpectedReply("WAIT 1 0 answered \(wait) on port \(connection.port)")
        }
    }

    /// Latency of `count` acknowledged writes from one client (after `warmUp` untimed ones),
    /// in nanoseconds; stops early once `timeLimit` has passed.
    static func oneClient(port: UInt16, count: Int, warmUp: Int = 500, timeLimit: Duration = .seconds(30)) throws -> Histogram<UInt64> {
        let connection = try RESPConnection(port: port)
        let request = setAndWait(key: "bench:0")
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        let deadline = monotonicNanoseconds() + UInt64(timeLimit.components.seconds) * 1_000_000_000
        for i in 0..<(warmUp + count) {
            let start = monotonicNanoseconds()
            try acknowledgedWrite(connection, request)
            let end = monotonicNanoseconds()
            if i >= warmUp {
                histogram.record(end - start)
                if end > deadline { break }
            }
        }
        return histogram
    }

    /// Acknowledged writes per second from `clients` connections, each driven by a thread of
    /// its own doing `perClient` writes one after another (each client its own key). The
    /// connections are opened before the clock starts. A thread's failure is rethrown.
    static func manyClients(port: UInt16, clients: Int, perClient: Int) throws -> Double {
        let connections = try (0..<clients).map { _ in try RESPConnection(port: port) }
        let requests = (0..<clients).map { setAndWait(key: "bench:\($0)") }
        for (connection, request) in zip(connections, requests) { try acknowledgedWrite(connection, request) }
        let failure = FirstError()
        let seconds = measure {
            onThreads(clients) { index in
                do {
                    for _ in 0..<perClient { try acknowledgedWrite(connections[index], requests[index]) }
                } catch {
                    failure.record(error)
                }
            }
        }
        if let error = failure.error { throw error }
        return Double(clients * perClient) / seconds
    }
}

/// The first error any of several threads met.
final class FirstError: Sendable {
    private let first = Mutex<(any Error)?>(nil)
    func record(_ error: any Error) { first.withLock { $0 = $0 ?? error } }
    var error: (any Error)? { first.withLock { $0 } }
}
