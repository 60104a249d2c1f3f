import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A follower whose log diverged from the primary's is cut back through the shell (the
/// machine decides where; the shell runs SegmentLog.truncate or reset off the event loop).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DivergenceTests {
    /// Writes `count` records at `epoch` into the log at `directory`, directly.
    func seed(_ directory: String, count: Int, epoch: UInt64, tag: String) throws {
        let log = try SegmentLog.open(directory: directory)
        for i in 0..<count { try log.append(Array("\(tag) \(i)".utf8), epoch: epoch) }
        try log.close()
    }

    func start(_ directory: TemporaryDirectory, primaryEpoch: UInt64) async throws -> (Node, Node) {
        var replication = ReplicationConfiguration()
        replication.followers = [NodeID(2)]
        replication.heartbeatInterval = .milliseconds(50)
        var primaryConfiguration = NodeConfiguration(id: NodeID(1), logDirectory: directory.sub("1"), clusterKey: testKey, role: .primary)
        primaryConfiguration.replication = replication
        primaryConfiguration.epoch = primaryEpoch
        let primary = Node(configuration: primaryConfiguration)
        try await primary.start()
        var followerConfiguration = NodeConfiguration(id: NodeID(2), logDirectory: directory.sub("2"), clusterKey: testKey,
                                                      role: .follower(of: NodeID(1)))
        followerConfiguration.peers = [NodeID(1): PeerAddress(host: "127.0.0.1", port: primary.listeningPort!)]
        followerConfiguration.replication = replication
        let follower = Node(configuration: followerConfiguration)
        try await follower.start()
        // A resync takes a moment; a sync append before it ends would find no follower in sync.
        try await waitUntil("node 2 to be in sync") {
            try await primary.status().followers.contains { $0.node == 2 && $0.streaming && $0.inSync }
        }
        return (primary, follower)
    }

    func offsetsAndBytes(_ log: SegmentLog) throws -> [String] {
        try allRecords(log).map { "\($0.offset) \($0.epoch) \(String(decoding: $0.bytes, as: UTF8.self))" }
    }

    @Test func aFollowerAheadInAnOldEpochIsTruncatedToWhereTheEpochsAgree() async throws {
        let directory = try TemporaryDirectory()
        // Both logs share epoch 1 below offset 10; the follower has 10 more of epoch 1 the
        // primary never had (it was primary once and lost them), the primary continues in epoch 2.
        try seed(directory.sub("1"), count: 10, epoch: 1, tag: "shared")
        try seed(directory.sub("2"), count: 10, epoch: 1, tag: "shared")
        let extra = try SegmentLog.open(directory: directory.sub("2"))
        for i in 0..<10 { try await extra.append(Array("lost \(i)".utf8), epoch: 1) }
        try await extra.close()
        let (primary, follower) = try await start(directory, primaryEpoch: 2)
        do {
            let offsets = try await primary.append((0..<5).map { Array("epoch 2 \($0)".utf8) }, mode: .sync(quorum: 1))
            #expect(offsets == 10..<15)
            try await waitUntil("the follower to hold offsets below 15") { try follower.log.nextOffset == 15 }
            #expect(try offsetsAndBytes(follower.log) == offsetsAndBytes(primary.log))
            #expect(try follower.log.epochHistory.entries.map(\.epoch) == [1, 2])
        } catch {
            try? await follower.stop(); try? await primary.stop()
            throw error
        }
        try await follower.stop()
        try await primary.stop()
    }

    @Test func aFollowerWithNothingInCommonIsResetAndResynced() async throws {
        let directory = try TemporaryDirectory()
        try seed(directory.sub("1"), count: 20, epoch: 3, tag: "primary")
        // The follower's records are all epoch 2, which the primary's log (epoch 3 from offset 0)
        // never had: nothing is shared, so the follower empties its log and starts over.
        try seed(directory.sub("2"), count: 30, epoch: 2, tag: "stranger")
        let (primary, follower) = try await start(directory, primaryEpoch: 6)
        do {
            try await primary.append([Array("after".utf8)], mode: .sync(quorum: 1))
            try await waitUntil("the follower to hold offsets below 21") { try follower.log.nextOffset == 21 }
            #expect(try offsetsAndBytes(follower.log) == offsetsAndBytes(primary.log))
        } catch {
            try? await follower.stop(); try? await primary.stop()
            throw error
        }
        try await follower.stop()
        try await primary.stop()
    }
}

/// Retention on the primary removed what a returning follower needs: it is reset to the
/// primary's first offset and resynced (full resync), then streams.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct RetentionResyncTests {
    /// 4000 bytes that LZ4 cannot shrink (a xorshift stream seeded by `i`), so segments fill.
    func noise(_ i: Int) -> [UInt8] {
        var x = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<500).flatMap { _ -> [UInt8] in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return withUnsafeBytes(of: x) { Array($0) }
        }
    }

    @Test func aFollowerBehindRetentionIsResetAndResynced() async throws {
        let cluster = try await LocalCluster(followers: 2)
        do {
            for i in 0..<40 { try await cluster.primary.append([noise(i)], mode: .sync(quorum: 2)) }
            let away = cluster.followers[0]
            try await away.stop()
            for i in 40..<400 { try await cluster.primary.append([noise(i)], mode: .sync(quorum: 1)) }
            let removed = try await cluster.primary.enforceRetention(RetentionPolicy(maxTotalBytes: 600 << 10))
            let first = try cluster.primary.log.firstOffset
            #expect(!removed.isEmpty && first > 40, "retention kept from \(first)")
            let back = cluster.makeFollower(away.configuration.id)
            try await back.start()
            cluster.followers[0] = back
            try await cluster.waitForFollowers()
            #expect(try back.log.firstOffset == first)
            #expect(try allRecords(back.log) == allRecords(cluster.primary.log))
            try await cluster.waitForStreaming()
            let last = try await cluster.primary.append([record(400)], mode: .syncAll)
            #expect(try back.log.nextOffset >= last.upperBound)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }
}
