import Foundation

/// A Redis primary and one replica on 127.0.0.1, each a `ChildProcess`, for the Redis peer
/// baseline. No snapshots (`--save ''`); the append-only file off, or (`fsyncAlways`) on with
/// `appendfsync always` on both nodes. Their directories live under `root`, which `stop()`
/// removes after stopping both processes by pid.
final class RedisPair {
    let primaryPort: UInt16
    let replicaPort: UInt16
    private let root: String
    private var primary: ChildProcess?
    private var replica: ChildProcess?

    /// redis-server on the PATH (or in /usr/bin, /usr/sbin, /usr/local/bin), nil if none.
    static func findServer() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        return directories.map { $0 + "/redis-server" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts both and returns once the replica's link to the primary is up (bounded waits:
    /// 10 s for each server to answer PING, 30 s for the link).
    init(server: String, root: String, fsyncAlways: Bool) throws {
        self.root = root
        primaryPort = try LoopbackSocket.freePort()
        var port = try LoopbackSocket.freePort()
        for _ in 0..<10 where port == primaryPort { port = try LoopbackSocket.freePort() }
        replicaPort = port
        do {
            primary = try Self.start(server, port: primaryPort, directory: root + "/primary", fsyncAlways: fsyncAlways, extra: [])
            try Self.waitForPing(port: primaryPort, process: primary!, directory: root + "/primary")
            replica = try Self.start(server, port: replicaPort, directory: root + "/replica", fsyncAlways: fsyncAlways,
                                     extra: ["--replicaof", "127.0.0.1", String(primaryPort)])
            try Self.waitForPing(port: replicaPort, process: replica!, directory: root + "/replica")
            try waitForLink()
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    private static func start(_ server: String, port: UInt16, directory: String, fsyncAlways: Bool, extra: [String]) throws -> ChildProcess {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let arguments = ["--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--daemonize", "no",
                         "--save", "", "--appendonly", fsyncAlways ? "yes" : "no", "--appendfsync", fsyncAlways ? "always" : "everysec",
                         // The initial sync of an empty data set should not wait Redis 7's default 5 s.
                         "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--logfile", ""]
        return try ChildProcess(executable: server, arguments: arguments + extra,
                                output: .file(directory + "/redis.log"), name: "redis-server on port \(port)")
    }

    private static func waitForPing(port: UInt16, process: ChildProcess, directory: String) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while clock.now < deadline {
            if process.hasExited {
                // The directory is removed on failure: keep the end of its log in the error.
                let log = (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
                let tail = log.split(separator: "\n").suffix(5).joined(separator: " | ")
                throw NetworkError.child("\(process.name) exited at start: \(tail)")
            }
            if let connection = try? RESPConnection(port: port), let reply = try? connection.call(RESPConnection.command("PING")),
               reply == .simple("PONG") {
                return
            }
            usleep(20_000)
        }
        throw NetworkError.timeout("\(process.name) did not answer PING within 10 s")
    }

    /// Polls the replica's INFO replication until `master_link_status:up` and the primary's
    /// until it counts the replica (`connected_slaves:1`), every 20 ms for at most 30 s.
    private func waitForLink() throws {
        let replicaConnection = try RESPConnection(port: replicaPort)
        let primaryConnection = try RESPConnection(port: primaryPort)
        let info = RESPConnection.command("INFO", "replication")
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline {
            if case .bulk(let text?) = try replicaConnection.call(info),
               String(decoding: text, as: UTF8.self).contains("master_link_status:up"),
               case .bulk(let primaryText?) = try primaryConnection.call(info),
               String(decoding: primaryText, as: UTF8.self).contains("connected_slaves:1") {
                return
            }
            usleep(20_000)
        }
        throw NetworkError.timeout("the redis replica on port \(replicaPort) did not report master_link_status:up within 30 s")
    }

    /// Stops the replica, then the primary, by pid (SIGTERM, SIGKILL after 5 s), and removes
    /// their directories. Safe to call twice.
    func stop() {
        replica?.stop()
        replica = nil
        primary?.stop()
        primary = nil
        try? FileManager.default.removeItem(atPath: root)
    }
}
