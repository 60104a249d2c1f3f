import Foundation
import NIOCore
import NIOPosix
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization

/// Free loopback ports, found by binding them all at once and closing them again (a node binds
/// its port with SO_REUSEADDR right after). Needed because every voter's address is configured
/// before any node starts. Drawn below the kernel's ephemeral range: a port from it could be
/// taken as the source port of some outgoing connection between a node's crash and its
/// restart on the same port, which would then fail with "address already in use".
func reserveLoopbackPorts(_ count: Int) async throws -> [Int] {
    var channels: [any Channel] = []
    defer { for channel in channels { channel.close(promise: nil) } }
    var ephemeralStart = 32768
    if let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
       let first = text.split(whereSeparator: \.isWhitespace).first, let start = Int(first) {
        ephemeralStart = start
    }
    let candidates = 10_000..<max(10_001, ephemeralStart)
    for _ in 0..<1000 where channels.count < count {
        let port = Int.random(in: candidates)
        guard !channels.contains(where: { $0.localAddress?.port == port }) else { continue }
        if let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port).get() {
            channels.append(channel)
        }
    }
    guard channels.count == count else { throw NodeError.invalidConfiguration("no \(count) free loopback ports in \(candidates)") }
    let ports = channels.map { $0.localAddress!.port! }
    for channel in channels { try await channel.close() }
    channels = []
    return ports
}

/// Automatic-role nodes in this process on 127.0.0.1, each with its own log directory; nodes can
/// be crashed and restarted (a new `Node` on the same directory and port).
final class AutoCluster: @unchecked Sendable {
    let directory: TemporaryDirectory
    let cluster: ClusterConfiguration
    let ids: [NodeID]
    /// Every node's replication settings (the cluster's heartbeat interval replaces theirs).
    let replication: ReplicationConfiguration
    /// The running nodes (the writer reads them from its own task).
    private let table = Mutex<[NodeID: Node]>([:])
    var nodes: [NodeID: Node] { table.withLock { $0 } }

    init(voters count: Int = 3, witnesses: Set<NodeID> = [], heartbeat: Duration = .milliseconds(50),
         timeout: Duration = .milliseconds(300), replication: ReplicationConfiguration = ReplicationConfiguration()) async throws {
        directory = try TemporaryDirectory()
        self.replication = replication
        ids = (1...count).map { NodeID(UInt64($0)) }
        let ports = try await reserveLoopbackPorts(count)
        var voters: [NodeID: PeerAddress] = [:]
        for (id, port) in zip(ids, ports) { voters[id] = PeerAddress(host: "127.0.0.1", port: port) }
        cluster = ClusterConfiguration(voters: voters, witnesses: witnesses, heartbeatInterval: heartbeat, electionTimeout: timeout)
    }

    func configuration(_ id: NodeID) -> NodeConfiguration {
        var configuration = NodeConfiguration(id: id, logDirectory: directory.sub("\(id.rawValue)"), clusterKey: testKey,
                                              role: .automatic(cluster))
        configuration.listenPort = cluster.voters[id]!.port
        configuration.replication = replication
        configuration.logOptions.segmentBytes = 256 << 10
        configuration.logOptions.preallocateSegments = false
        return configuration
    }

    /// Starts (or restarts) `id` as a new `Node` on its directory.
    @discardableResult
    func start(_ id: NodeID) async throws -> Node {
        let node = Node(configuration: configuration(id))
        try await node.start()
        table.withLock { $0[id] = node }
        return node
    }

    func startAll() async throws { for id in ids { try await start(id) } }

    func node(_ id: NodeID) -> Node { nodes[id]! }

    /// Crashes `id` (connections dropped without goodbye, no clean-shutdown marker).
    func crash(_ id: NodeID) async throws {
        let node = table.withLock { $0.removeValue(forKey: id) }
        try await node?.stopAsCrash()
    }

    func stopAll() async {
        let all = table.withLock { nodes in
            defer { nodes = [:] }
            return nodes
        }
        for (_, node) in all { try? await node.stop() }
    }

    /// Waits until exactly one running node is primary and every other running node that keeps
    /// a log follows it, connected, in its epoch; returns it.
    func waitForPrimary(timeout: Duration = .seconds(10), excluding excluded: NodeID? = nil) async throws -> NodeID {
        var found: NodeID?
        try await waitUntil("one primary that every running node follows", timeout: timeout) {
            var statuses: [NodeStatus] = []
            for (_, node) in nodes { statuses.append(try await node.status()) }
            let primaries = statuses.filter { $0.role == "primary" }
            guard primaries.count == 1, let primary = primaries.first, NodeID(primary.node) != excluded else { return false }
            let agree = statuses.allSatisfy { status in
                status.node == primary.node
                    || (status.primary == primary.node && status.epoch == primary.epoch && status.connectedToPrimary == true)
            }
            if agree { found = NodeID(primary.node) }
            return agree
        }
        return found!
    }

    /// Waits until every running node's log holds exactly the records of `reference`'s.
    func waitForEqualLogs(to reference: NodeID, timeout: Duration = .seconds(10)) async throws {
        try await waitUntil("every log to equal \(reference)'s", timeout: timeout) {
            let expected = try allRecords(node(reference).log)
            for (id, node) in nodes where id != reference && !cluster.witnesses.contains(id) {
                guard try allRecords(node.log) == expected else { return false }
            }
            return true
        }
    }
}

/// A client that appends through whichever node is primary: it follows `notPrimary` hints and
/// retries other errors after 2 ms, as an application would.
struct ClusterWriter: Sendable {
    let cluster: AutoCluster

    struct Acknowledged: Sendable {
        var node: NodeID
        var offsets: Range<UInt64>
        var record: [UInt8]
        var at: ContinuousClock.Instant
    }

    /// Appends `record` until a node acknowledges it in `mode` or `deadline` passes (nil then).
    func append(_ record: [UInt8], mode: ReplicationMode, startingAt first: NodeID, deadline: ContinuousClock.Instant) async
        -> Acknowledged? {
        var target = first
        while ContinuousClock.now < deadline {
            guard let node = cluster.nodes[target] else {
                target = cluster.nodes.keys.sorted().first { $0 != target } ?? target
                try? await Task.sleep(for: .milliseconds(2))
                continue
            }
            do {
                let offsets = try await node.append([record], mode: mode)
                return Acknowledged(node: target, offsets: offsets, record: record, at: .now)
            } catch NodeError.notPrimary(_, let primary) {
                target = primary
            } catch {
                let others = cluster.nodes.keys.sorted()
                target = others[((others.firstIndex(of: target) ?? 0) + 1) % others.count]
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        return nil
    }
}
