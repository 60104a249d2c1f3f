import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A node restarted with an election state file older than its log (restored from a backup, or
/// copied from another node): it must come back in at least its log's newest epoch, never in
/// the stale one, and the cluster must go on with one history.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10ElectionFileTests {
    @Test func aStaleElectionFileIsOvertakenByTheLogsEpoch() async throws {
        let cluster = try await AutoCluster()
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let first = try await cluster.waitForPrimary()
        try await cluster.crash(first)
        // 30 s, not 5: in a full parallel run beside the crash suites' disk traffic the new
        // primary's first sync appends once took longer; alone they take milliseconds.
        let second = try await cluster.waitForPrimary(timeout: .seconds(30))
        let writer = ClusterWriter(cluster: cluster)
        for i in 0..<5 {
            #expect(await writer.append(record(i), mode: .sync(quorum: 1), startingAt: second, deadline: .now + .seconds(30)) != nil)
        }
        try await cluster.start(first)
        _ = try await cluster.waitForPrimary()
        try await cluster.waitForEqualLogs(to: second)
        let follower = cluster.ids.first { $0 != second }!
        let logEpoch = try cluster.node(follower).log.lastEpoch
        #expect(logEpoch >= 2)
        try await cluster.crash(follower)
        let store = ElectionStateStore(directory: cluster.directory.sub("\(follower.rawValue)"), fileSystem: PosixFileSystem())
        try store.save(ElectionDurableState(epoch: 1, votedFor: nil))
        let restarted = try await cluster.start(follower)
        #expect(try await restarted.status().epoch >= logEpoch)
        try await waitUntil("the stale file to be replaced", timeout: .seconds(2)) { try store.load().epoch >= logEpoch }
        let primary = try await cluster.waitForPrimary()
        #expect(await writer.append(record(5), mode: .sync(quorum: 1), startingAt: primary, deadline: .now + .seconds(5)) != nil)
        try await cluster.waitForEqualLogs(to: primary)
        await cluster.stopAll()
    }
}
