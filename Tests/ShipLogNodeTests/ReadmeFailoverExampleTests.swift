import Foundation
import ShipLog
import Synchronization
import Testing

/// The README's failover example as written there (ports and directories aside): three
/// automatic-role nodes elect a primary, role changes arrive as a stream, a follower refuses an
/// append naming the primary, and the primary hands leadership to another node.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ReadmeFailoverExampleTests {
    @Test func theFailoverExampleRuns() async throws {
        let dir = try TemporaryDirectory()
        let key = Array("a long random secret shared by every node".utf8)
        let ports = try await reserveLoopbackPorts(3)
        var addresses: [NodeID: PeerAddress] = [:]
        for (index, port) in ports.enumerated() { addresses[NodeID(UInt64(index + 1))] = PeerAddress(host: "127.0.0.1", port: port) }
        // As in the README.
        let cluster = ClusterConfiguration(voters: addresses, heartbeatInterval: .milliseconds(100),
                                           electionTimeout: .seconds(1))
        var nodes: [NodeID: Node] = [:]
        for (id, address) in addresses {
            var config = NodeConfiguration(id: id, logDirectory: dir.sub("\(id.rawValue)"), clusterKey: key,
                                           role: .automatic(cluster))
            config.listenPort = address.port
            let node = Node(configuration: config)
            try await node.start()
            nodes[id] = node
        }
        let started = Array(nodes.values)
        defer { Task { for node in started { try? await node.stop() } } }
        let seen = Mutex<[NodeRoleChange]>([])
        let anyNode = nodes[NodeID(1)]!
        Task { for await change in anyNode.roleChanges { seen.withLock { $0.append(change) } } }

        var primary: NodeID?
        try await waitUntil("a primary every node follows", timeout: .seconds(15)) {
            var statuses: [NodeStatus] = []
            for node in nodes.values { if let status = try? await node.status() { statuses.append(status) } }
            guard let leader = statuses.first(where: { $0.role == "primary" }) else { return false }
            primary = NodeID(leader.node)
            return statuses.count == 3 && statuses.allSatisfy { $0.node == leader.node || $0.primary == leader.node }
        }
        let leader = try #require(primary)
        try await nodes[leader]!.append([Array("set x 1".utf8)], mode: .sync(quorum: 1))
        let follower = addresses.keys.first { $0 != leader }!
        await #expect(throws: NodeError.notPrimary(node: follower, primary: leader)) {
            try await nodes[follower]!.append([Array("set x 1".utf8)], mode: .sync(quorum: 1))
        }
        let target = addresses.keys.first { $0 != leader && $0 != follower }!
        try await nodes[leader]!.transferLeadership(to: target)
        #expect(try await nodes[target]!.status().role == "primary")
        try await waitUntil("node 1 to see the switchover", timeout: .seconds(10)) {
            seen.withLock { $0.contains { $0.primary == target } }
        }
        for node in nodes.values { try await node.stop() }
    }
}
