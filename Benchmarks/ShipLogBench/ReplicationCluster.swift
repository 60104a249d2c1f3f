import Foundation
import Logging
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization

/// A primary and one follower for the replication workloads (issue 9): the primary is a `Node`
/// embedded in the benchmark process, as an application embeds it, so a figure is what an
/// application's `await node.append(...)` sees; the follower is a separate `shiplog serve`
/// process (a `ChildProcess`, stopped by pid), so every batch and acknowledgement crosses
/// loopback TCP between two processes, as in the `loopback-rtt` baseline.
final class ReplicationCluster {
    static let primaryID = NodeID(1)
    static let followerID = NodeID(2)

    let primary: Node
    let follower: ChildProcess
    let root: String

    /// Starts both (the primary first, on `primaryDirectory` if given: a log filled beforehand)
    /// and, unless `waitInSync` is false, waits until the primary counts the follower in sync.
    init(root: String, ackLevel: AckLevel, durability: Durability, primaryDirectory: String? = nil,
         waitInSync: Bool = true) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let key = Array("shiplog-bench cluster key \(UUID().uuidString)".utf8)
        let keyFile = root + "/cluster.key"
        FileManager.default.createFile(atPath: keyFile, contents: Data(key))

        var configuration = NodeConfiguration(id: Self.primaryID, logDirectory: primaryDirectory ?? root + "/primary",
                                              clusterKey: key, role: .primary)
        configuration.replication.ackLevel = ackLevel
        configuration.replication.followers = [Self.followerID]
        // Experiments only (the figures use the defaults): frame size and in-flight cap of catch-up.
        let environment = ProcessInfo.processInfo.environment
        if let bytes = environment["SHIPLOG_BENCH_SHIP_BYTES"].flatMap(Int.init) { configuration.replication.maxShipBytes = bytes }
        if let bytes = environment["SHIPLOG_BENCH_IN_FLIGHT_BYTES"].flatMap(Int.init) {
            configuration.replication.maxInFlightBytesPerFollower = bytes
        }
        configuration.logOptions.durability = durability
        // The benchmark's table is on standard output; the node's notices would interleave with it.
        var logger = Logger(label: "shiplog-bench.primary")
        logger.logLevel = .warning
        let primary = Node(configuration: configuration, logger: logger)
        try blocking { try await primary.start() }
        self.primary = primary
        guard let port = primary.listeningPort else {
            try? blocking { try await primary.stop() }
            throw BenchError.engine("the embedded primary has no listening port")
        }

        let durabilityName = switch durability {
        case .buffered: "buffered"
        case .os: "os"
        case .fsync: "fsync"
        }
        let arguments = ["serve", "--id", "\(Self.followerID.rawValue)", "--log-dir", root + "/follower",
                         "--listen", "127.0.0.1:0", "--role", "follower", "--primary", "\(Self.primaryID.rawValue)",
                         "--peer", "\(Self.primaryID.rawValue)=127.0.0.1:\(port)", "--key-file", keyFile,
                         "--durability", durabilityName, "--ack-level", ackLevel.rawValue, "--log-level", "warning"]
        do {
            follower = try ChildProcess(executable: try Self.shiplogPath(), arguments: arguments, output: .pipe,
                                        name: "shiplog serve (follower)")
            let line = try follower.readLine(timeout: .seconds(30))
            guard line.hasPrefix("listening on ") else {
                throw NetworkError.unexpectedReply("the follower printed '\(line)' instead of 'listening on HOST:PORT'")
            }
            if waitInSync { try waitUntil(timeout: .seconds(30), "the follower in sync") { $0.inSync } }
        } catch {
            try? blocking { try await primary.stop() }
            throw error
        }
    }

    /// The `shiplog` binary built beside `shiplog-bench` (scripts/bench builds both).
    static func shiplogPath() throws -> String {
        let path = (try currentExecutablePath() as NSString).deletingLastPathComponent + "/shiplog"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BenchError.usage("\(path) not found: build it with `swift build -c release --product shiplog` (scripts/bench does)")
        }
        return path
    }

    /// The primary's view of the follower.
    func followerStatus() throws -> (status: NodeStatus, follower: NodeStatus.Follower?) {
        let primary = self.primary
        let status = try blocking { try await primary.status() }
        return (status, status.followers.first { $0.node == Self.followerID.rawValue })
    }

    /// Polls the primary's status until `condition` holds for the follower: every 1 ms, or
    /// after what `nextPoll` says for the status it just saw (at least 1 ms).
    func waitUntil(timeout: Duration, _ what: String, nextPoll: (NodeStatus.Follower?) -> Duration = { _ in .milliseconds(1) },
                   _ condition: (NodeStatus.Follower) -> Bool) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let follower = try followerStatus().follower
            if let follower, condition(follower) { return }
            guard !self.follower.hasExited else {
                throw NetworkError.child("the follower (pid \(self.follower.pid)) exited while waiting for \(what)")
            }
            let pause = max(.milliseconds(1), min(nextPoll(follower), deadline - clock.now))
            usleep(UInt32(pause / .microseconds(1)))
        }
        throw NetworkError.timeout("waiting for \(what) for \(timeout)")
    }

    /// Stops the follower by its pid (SIGTERM; it exits cleanly), then the primary, and removes
    /// the cluster's directory.
    func stop() {
        follower.stop()
        let primary = self.primary
        try? blocking { try await primary.stop() }
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Runs async work from the benchmark's synchronous code, blocking this thread until it ends
/// (the work runs on Swift's cooperative pool, as an application's tasks would).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        box.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return try box.withLock { $0! }.get()
}
