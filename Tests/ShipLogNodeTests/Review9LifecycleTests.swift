import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Review of issue 9 (review9): lifecycle attacks that held (kept as regression tests).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review9LifecycleTests {
    /// A sync append waiting for a follower that is gone, then `stop`: the append fails with
    /// `.notPrimary` at once, stop returns, the log is closed cleanly; stop twice is a no-op,
    /// start after stop is refused.
    @Test func stopWithASyncAppendWaitingFailsItAndReturns() async throws {
        var replication = ReplicationConfiguration()
        replication.minSyncFollowersTimeout = .seconds(60)
        replication.syncTimeout = .seconds(60)
        let cluster = try await LocalCluster(followers: 1, replication: replication)
        try await cluster.followers[0].stop()
        let primary = cluster.primary
        let waiting = Task { try await primary.append([record(1)], mode: .sync(quorum: 1)) }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        try await primary.stop()
        try await primary.stop()
        await #expect(throws: NodeError.self) { try await waiting.value }
        #expect(ContinuousClock.now - started < .seconds(5))
        await #expect(throws: NodeError.self) { try await primary.start() }
        let reopened = try SegmentLog.open(directory: cluster.directory.sub("1"))
        #expect(reopened.recoveryReport.cleanShutdown)
        try await reopened.close()
    }
}
