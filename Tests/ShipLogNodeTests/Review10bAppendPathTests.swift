import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization
import Testing

/// The loose end "the cluster append path does one pool round trip per append": with
/// `durability: .fsync`, concurrent appends on an automatic-role primary each paid their own
/// fdatasync, one after another on the log's line of operations. Appends queued back to back
/// now share a pool job and an fdatasync (`ClusterAppendGroup`), as on the fixed-role path.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10bAppendPathTests {
    @Test func concurrentFsyncAppendsOnAClusterPrimaryShareFdatasyncs() async throws {
        let cluster = try await AutoCluster(heartbeat: .milliseconds(100), timeout: .seconds(2))
        let counters = Dictionary(uniqueKeysWithValues: cluster.ids.map { ($0, Review10FaultyFileSystem()) })
        var nodes: [Node] = []
        defer { let all = nodes; Task { for node in all { try? await node.stop() } } }
        for id in cluster.ids {
            var configuration = cluster.configuration(id)
            configuration.logOptions.fileSystem = counters[id]!
            configuration.logOptions.durability = .fsync
            let node = Node(configuration: configuration)
            try await node.start()
            nodes.append(node)
        }
        var primary: Node?
        try await waitUntil("a primary", timeout: .seconds(10)) {
            for node in nodes where try await node.status().role == "primary" { primary = node }
            return primary != nil
        }
        let node = try #require(primary)
        _ = try await node.append([record(0)], mode: .sync(quorum: 1))
        let counter = counters[NodeID(UInt64(try await node.status().node))]!
        let count = 64
        let before = counter.syncs.withLock { $0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count { group.addTask { _ = try await node.append([record(i + 1)], mode: .async) } }
            try await group.waitForAll()
        }
        let syncs = counter.syncs.withLock { $0 } - before
        #expect(syncs < count / 2, "\(count) concurrent appends took \(syncs) fdatasyncs")
        for node in nodes { try await node.stop() }
    }
}
