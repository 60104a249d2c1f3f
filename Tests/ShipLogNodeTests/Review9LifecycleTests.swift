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
        // Not the 60 s the append would wait: 15 s leaves room for a loaded machine (7 s seen at load 7).
        #expect(ContinuousClock.now - started < .seconds(15))
        await #expect(throws: NodeError.self) { try await primary.start() }
        let reopened = try SegmentLog.open(directory: cluster.directory.sub("1"))
        #expect(reopened.recoveryReport.cleanShutdown)
        try await reopened.close()
    }

    /// `stop()` racing `start()`: `stop()` returns only once the node has stopped whatever
    /// `start()` started, so the directory can be reopened at once and its log was closed
    /// cleanly (or never opened), and a node stopped before it started never starts. Before,
    /// `stop()` during `start()` returned at once and `start()` went on opening the log (its
    /// LOCK held) and listening behind the caller's back. Repeated at several delays, since
    /// the window is a few milliseconds wide.
    @Test func stopDuringStartReturnsOnlyOnceTheNodeHasStopped() async throws {
        let directory = try TemporaryDirectory()
        for round in 0..<20 {
            let path = directory.sub("\(round)")
            // A log with some segments, so that opening it takes a little while.
            var options = LogOptions()
            options.segmentBytes = 16 << 10
            let seeded = try SegmentLog.open(directory: path, options: options)
            for i in 0..<400 { _ = try await seeded.append([record(i, size: 900)], epoch: 1) }
            try await seeded.close()
            let node = Node(configuration: NodeConfiguration(id: NodeID(1), logDirectory: path, clusterKey: testKey, role: .primary))
            let starting = Task { try await node.start() }
            try await Task.sleep(for: .microseconds(200 * (round % 10)))
            try await node.stop()
            // Whatever start() did, it is over: the log was closed cleanly and can be reopened,
            // and while we hold it, start() has nothing left to do that would touch it.
            let reopened = try SegmentLog.open(directory: path)
            #expect(reopened.recoveryReport.cleanShutdown, "round \(round): the log was not closed cleanly when stop() returned")
            #expect(reopened.nextOffset == 400)
            let started = await starting.result
            try await reopened.close()
            switch started {
            case .success: break
            case .failure(let error as NodeError):
                guard case .notRunning = error else { Issue.record("round \(round): start() failed with \(error)"); break }
            case .failure(let error):
                Issue.record("round \(round): start() went on after stop() returned and failed with \(error)")
            }
            let answers = (try? await node.status()) != nil
            #expect(!answers, "round \(round): the node still answers after stop()")
        }
    }
}
