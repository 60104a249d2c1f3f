import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Review of issue 9 (review9): a follower that ran retention (Node.enforceRetention works on
/// followers too) and is then told to truncate below its own first offset.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review9FollowerRetentionTests {
    /// The follower keeps offsets from F > 30 on; the primary lost its unsynced tail 30..<60
    /// (modelled by truncating it while down) and restarts in a new epoch. The primary answers
    /// `truncate` to 30 (where its epoch 1 ends); the follower's `truncate(after: 29)` throws
    /// `offsetOutOfRange` (30 < F), the shell calls it a local failure, stops reconnecting for
    /// good, and the follower never replicates again (after a restart, the same). Expected: a cut
    /// below the log's first offset empties the log (reset), and the follower catches up.
    @Test func aFollowerToldToCutBelowItsFirstOffsetStillCatchesUp() async throws {
        let directory = try TemporaryDirectory()
        var primaryConfiguration = NodeConfiguration(id: NodeID(1), logDirectory: directory.sub("1"), clusterKey: testKey, role: .primary)
        primaryConfiguration.replication.followers = [NodeID(2)]
        primaryConfiguration.replication.heartbeatInterval = .milliseconds(50)
        primaryConfiguration.logOptions.segmentBytes = 4096
        var primary = Node(configuration: primaryConfiguration)
        try await primary.start()
        primaryConfiguration.listenPort = primary.listeningPort!
        var followerConfiguration = NodeConfiguration(id: NodeID(2), logDirectory: directory.sub("2"), clusterKey: testKey,
                                                      role: .follower(of: NodeID(1)))
        followerConfiguration.peers = [NodeID(1): PeerAddress(host: "127.0.0.1", port: primaryConfiguration.listenPort)]
        followerConfiguration.replication = primaryConfiguration.replication
        followerConfiguration.logOptions.segmentBytes = 4096
        var follower = Node(configuration: followerConfiguration)
        try await follower.start()
        try await waitUntil("the follower to stream") {
            try await primary.status().followers.contains { $0.streaming && $0.inSync }
        }
        for i in 0..<60 { try await primary.append([record(i)], mode: .sync(quorum: 1)) }
        // The follower's own retention: only its newest segment stays.
        try await follower.enforceRetention(RetentionPolicy(maxTotalBytes: 1))
        let followerFirst = try follower.log.firstOffset
        try #require(followerFirst > 30, "retention kept the follower from \(followerFirst)")
        try await follower.stop()
        try await primary.stop()

        try await loseTail(of: directory.sub("1"), keepingThrough: 29)

        primary = Node(configuration: primaryConfiguration)
        try await primary.start()
        for i in 100..<110 { try await primary.append([record(i)], mode: .async) }
        follower = Node(configuration: followerConfiguration)
        try await follower.start()
        let end = try primary.log.nextOffset
        let caughtUp: Bool
        do {
            try await waitUntil("the follower to catch up to \(end)", timeout: .seconds(10)) {
                try await primary.status().followers.contains { $0.streaming && $0.inSync }
            }
            caughtUp = true
        } catch { caughtUp = false }
        var mismatches: [UInt64] = []
        let primaryEnd = try primary.log.nextOffset
        for record in try allRecords(follower.log) {
            if record.offset >= primaryEnd { mismatches.append(record.offset); continue }
            if try primary.log.record(at: record.offset).bytes != record.bytes { mismatches.append(record.offset) }
        }
        try await follower.stop()
        try await primary.stop()
        #expect(caughtUp, "the follower stopped replicating after being told to cut below its first offset")
        #expect(mismatches.isEmpty, "follower records that differ from the primary's: \(mismatches)")
    }
}
