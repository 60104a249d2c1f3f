import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// The follower's two append paths (`FollowerDriver.appendOnLoop` for small frames that fit
/// the active segment, the thread pool with `append(storedBatches:)` for the rest, rolls
/// included) keep its log equal to the primary's, in order, whichever path each frame takes.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct FollowerAppendPathTests {
    /// Tiny segments make rolls fall inside frames (16 concurrent writers put many batches in
    /// one frame) and between them, so both paths and their hand-over are exercised; sync
    /// appends check the acknowledgement, and the follower's log, reopened, equals the primary's.
    @Test(arguments: [AckLevel.written, .durable])
    func rollsInTheMiddleOfFramesKeepTheFollowerEqual(ackLevel: AckLevel) async throws {
        let directory = try TemporaryDirectory()
        var replication = ReplicationConfiguration()
        replication.ackLevel = ackLevel
        replication.followers = [NodeID(2)]
        replication.heartbeatInterval = .milliseconds(50)
        var primaryConfiguration = NodeConfiguration(id: NodeID(1), logDirectory: directory.sub("1"), clusterKey: testKey, role: .primary)
        primaryConfiguration.replication = replication
        primaryConfiguration.logOptions.segmentBytes = 6 << 10
        let primary = Node(configuration: primaryConfiguration)
        try await primary.start()
        var followerConfiguration = NodeConfiguration(id: NodeID(2), logDirectory: directory.sub("2"), clusterKey: testKey,
                                                      role: .follower(of: NodeID(1)))
        followerConfiguration.peers = [NodeID(1): PeerAddress(host: "127.0.0.1", port: primary.listeningPort!)]
        followerConfiguration.replication = replication
        followerConfiguration.logOptions.segmentBytes = 4 << 10
        let follower = Node(configuration: followerConfiguration)
        do {
            try await follower.start()
            try await waitUntil("the follower in sync") {
                try await primary.status().followers.contains { $0.connected && $0.streaming && $0.inSync }
            }
            for mode in [ReplicationMode.async, .sync(quorum: 1)] {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<16 {
                        group.addTask {
                            for i in 0..<25 {
                                let n = writer * 1000 + i
                                let offsets = try await primary.append((0..<(1 + n % 3)).map { record(n * 10 + $0, size: 300) }, mode: mode)
                                if mode != .async {
                                    let log = try follower.log
                                    let held = ackLevel == .durable ? log.durableNextOffset : log.nextOffset
                                    #expect(held >= offsets.upperBound, "acknowledged \(offsets) with the follower at \(held)")
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let end = try primary.log.nextOffset
            try await waitUntil("the follower at \(end)") { try follower.log.nextOffset >= end }
            #expect(try follower.log.segmentCount > 10, "rolls happened on the follower")
            let expected = try allRecords(primary.log)
            #expect(try allRecords(follower.log) == expected)
            try await follower.stop()
            try await primary.stop()
            let reopened = try SegmentLog.open(directory: directory.sub("2"), options: followerConfiguration.logOptions)
            #expect(try allRecords(reopened) == expected)
            #expect(reopened.epochHistory.entries.count == 1)
            try await reopened.close()
        } catch {
            try? await follower.stop()
            try? await primary.stop()
            throw error
        }
    }
}
