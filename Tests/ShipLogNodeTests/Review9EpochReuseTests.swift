import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Review of issue 9 (review9): a primary restarted with the epoch it already used.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review9EpochReuseTests {
    /// `shiplog serve --epoch 1` (or `"epoch": 1` in its config file), restarted with the same
    /// settings after it lost the unsynced tail of its log (power failure with `os` durability,
    /// modelled here by truncating its log while it is down). It appends new records at the same
    /// offsets in the same epoch; the follower, whose log ends in epoch 1 at an offset epoch 1
    /// covers on the primary, is told to stream, and keeps the old records: its log is no longer
    /// a prefix of the primary's and nothing ever notices. Expected: the node refuses (or
    /// raises) an epoch that is not above every epoch already in its log.
    @Test func aReusedEpochCannotHideDivergence() async throws {
        let directory = try TemporaryDirectory()
        var primaryConfiguration = NodeConfiguration(id: NodeID(1), logDirectory: directory.sub("1"), clusterKey: testKey, role: .primary)
        primaryConfiguration.epoch = 1
        primaryConfiguration.replication.followers = [NodeID(2)]
        primaryConfiguration.replication.heartbeatInterval = .milliseconds(50)

        var primary = Node(configuration: primaryConfiguration)
        try await primary.start()
        primaryConfiguration.listenPort = primary.listeningPort!
        var followerConfiguration = NodeConfiguration(id: NodeID(2), logDirectory: directory.sub("2"), clusterKey: testKey,
                                                      role: .follower(of: NodeID(1)))
        followerConfiguration.peers = [NodeID(1): PeerAddress(host: "127.0.0.1", port: primaryConfiguration.listenPort)]
        followerConfiguration.replication = primaryConfiguration.replication
        var follower = Node(configuration: followerConfiguration)
        try await follower.start()
        try await waitUntil("the follower to stream") {
            try await primary.status().followers.contains { $0.streaming && $0.inSync }
        }
        for i in 0..<10 { try await primary.append([record(i)], mode: .sync(quorum: 1)) }
        try await follower.stop()
        try await primary.stop()

        // The primary loses offsets 5..<10 (never synced); the follower keeps them.
        try await loseTail(of: directory.sub("1"), keepingThrough: 4)

        // Same settings, same epoch: new records at offsets 5..<10.
        primary = Node(configuration: primaryConfiguration)
        do {
            try await primary.start()
        } catch {
            return  // Refusing the reused epoch is a correct outcome.
        }
        for i in 100..<105 { try await primary.append([record(i)], mode: .async) }
        follower = Node(configuration: followerConfiguration)
        try await follower.start()
        try await waitUntil("the follower to stream again") {
            try await primary.status().followers.contains { $0.streaming && $0.inSync }
        }
        let primaryRecords = try allRecords(primary.log).map(\.bytes)
        let followerRecords = try allRecords(follower.log).map(\.bytes)
        try await follower.stop()
        try await primary.stop()
        #expect(followerRecords.count == primaryRecords.count)
        let differing = zip(followerRecords, primaryRecords).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(differing.isEmpty, "the follower's log is not a prefix of the primary's: offsets \(differing) differ")
    }
}

/// A power failure on a node whose appends were not synced: its log loses everything after `offset`.
func loseTail(of directory: String, keepingThrough offset: UInt64) async throws {
    let log = try SegmentLog.open(directory: directory)
    try await log.truncate(after: offset)
    try await log.close()
}
