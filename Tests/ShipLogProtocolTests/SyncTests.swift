import ShipLogStorage
import Testing
@testable import ShipLogProtocol

@Suite struct SyncTests {
    func cluster(_ n: Int, ackLevel: AckLevel = .written, minSync: Int = 1, minSyncTimeout: Duration = .zero) -> Cluster {
        var config = ReplicationConfiguration()
        config.ackLevel = ackLevel
        config.minSyncFollowers = minSync
        config.minSyncFollowersTimeout = minSyncTimeout
        config.syncTimeout = .seconds(1)
        var c = Cluster(configuration: config, followerLogs: Array(repeating: ModelLog(), count: n))
        c.connectAll()
        c.settle()
        return c
    }

    /// sync(quorum: q) with q of n followers delivering: acknowledged exactly when q have it.
    @Test func quorumArithmetic() {
        for n in 1...3 {
            for q in 1...n {
                var c = cluster(n)
                // Only the first q-1 followers get the frames: not enough.
                for i in 0..<n { c.followers[i].stalled = i >= q - 1 }
                c.append(records: 2)
                c.await(1, mode: .sync(quorum: q))
                c.run()
                #expect(c.acknowledged.isEmpty, "n \(n) q \(q)")
                c.followers[q - 1].stalled = false
                c.run()
                #expect(c.acknowledged == [AppendID(1)], "n \(n) q \(q)")
                #expect(c.primary.commitOffset == 2)
                // syncAll waits for every configured follower.
                c.append(records: 1)
                c.await(2, mode: .syncAll)
                c.run()
                #expect(c.acknowledged.count == (q == n ? 2 : 1), "n \(n) q \(q) syncAll")
                for i in 0..<n { c.followers[i].stalled = false }
                c.run()
                #expect(c.acknowledged.count == 2)
            }
        }
    }

    @Test func quorumLargerThanTheFollowersFailsAtOnce() {
        var c = cluster(2)
        c.append()
        c.await(1, mode: .sync(quorum: 3))
        #expect(c.failed.map(\.0) == [AppendID(1)])
        #expect(c.failed.first?.1 == .notEnoughFollowers(inSync: 2, required: 3))
        c.await(2, mode: .async)
        #expect(c.acknowledged == [AppendID(2)])
    }

    /// One acknowledgement covers every waiter below it.
    @Test func oneAckCoversEveryWaiterBelowIt() {
        var c = cluster(1)
        c.followers[0].stalled = true
        for id in 1...5 { c.append(records: 1); c.await(UInt64(id), mode: .sync(quorum: 1)) }
        #expect(c.acknowledged.isEmpty)
        c.followers[0].stalled = false
        c.run()
        #expect(Set(c.acknowledged) == Set((1...5).map { AppendID($0) }))
    }

    /// Ack levels: received before written before durable.
    @Test func ackLevels() {
        var c = cluster(1, ackLevel: .durable)
        c.holdSyncs = true
        c.append(records: 3)
        c.await(1, mode: .sync(quorum: 1))
        c.run()
        #expect(c.acknowledged.isEmpty)
        #expect(c.primary.followers[0].progress == FollowerProgress(received: 3, written: 3, durable: 0))
        c.releaseSyncs()
        c.run()
        #expect(c.acknowledged == [AppendID(1)])
        // Coalescing: several appends while a sync is outstanding need one more sync.
        for _ in 0..<3 { c.append(records: 1) }
        c.run()
        #expect(c.followers[0].syncPending)
        c.releaseSyncs()
        c.run()
        c.releaseSyncs()
        c.run()
        #expect(c.primary.followers[0].progress.durable == 6)
        // Received level: acknowledged on receipt, before the append is reported.
        var f = FollowerReplicator(configuration: ReplicationConfiguration(), nodeID: NodeID(2), log: LogEnd(nextOffset: 0, lastEpoch: nil),
                                   durableNextOffset: 0, knownEpoch: 1, now: .zero)
        _ = f.connected(now: .zero)
        _ = f.received(.followReply(.init(kind: .stream, offset: 0, epoch: 1)), now: .zero)
        let actions = f.received(.batches(.init(epoch: 1, commitOffset: 0, batches: [makeBatch(first: 0, epoch: 1, records: 2)])), now: .zero)
        #expect(actions.first == .send(.ack(.init(progress: .init(received: 2, written: 0, durable: 0)))))
    }

    @Test func minSyncFollowersFailsAtOnce() {
        var c = cluster(2, minSync: 2)
        c.disconnect(1)
        c.append()
        c.await(1, mode: .sync(quorum: 1))
        #expect(c.failed.first?.1 == .notEnoughFollowers(inSync: 1, required: 2))
        #expect(c.acknowledged.isEmpty)
    }

    @Test func minSyncFollowersWaitsThenFails() {
        var c = cluster(2, minSync: 2, minSyncTimeout: .milliseconds(300))
        c.disconnect(1)
        c.append()
        c.await(1, mode: .sync(quorum: 1))
        c.run()
        #expect(c.failed.isEmpty && c.acknowledged.isEmpty)
        c.advance(.milliseconds(299))
        #expect(c.failed.isEmpty)
        c.advance(.milliseconds(1))
        #expect(c.failed.first?.1 == .notEnoughFollowers(inSync: 1, required: 2))
        #expect(c.acknowledged.isEmpty)
    }

    @Test func minSyncFollowersWaitsThenSucceeds() {
        var c = cluster(2, minSync: 2, minSyncTimeout: .milliseconds(300))
        c.disconnect(1)
        c.append()
        c.await(1, mode: .sync(quorum: 1))
        c.run()
        c.advance(.milliseconds(100))
        c.connect(1)
        c.run()
        #expect(c.acknowledged == [AppendID(1)])
        #expect(c.failed.isEmpty)
    }

    @Test func syncTimeout() {
        var c = cluster(1)
        c.followers[0].stalled = true
        c.append(records: 4)
        c.await(1, mode: .sync(quorum: 1))
        c.advance(.milliseconds(999))
        #expect(c.failed.isEmpty)
        c.advance(.milliseconds(1))
        #expect(c.failed.first?.1 == .timedOut(through: 4, acknowledgedBy: 0, required: 1))
        c.followers[0].stalled = false
        c.run()
        #expect(c.acknowledged.isEmpty)
    }

    /// stop fails waiters with notPrimary and closes every connection.
    @Test func stopFailsWaiters() {
        var c = cluster(2)
        c.followers[0].stalled = true
        c.followers[1].stalled = true
        c.append()
        c.await(1, mode: .syncAll)
        c.apply(c.primary.stop(now: c.now))
        #expect(c.failed.first?.1 == .notPrimary)
        #expect(c.primaryCloses == [.notPrimary, .notPrimary])
    }

    /// A follower reconnecting replaces its old connection.
    @Test func reconnectReplacesTheOldConnection() {
        var c = cluster(1)
        let old = c.followers[0].connection!
        let actions = c.primary.followerAuthenticated(ConnectionID(99), node: c.followers[0].node, now: c.now)
        #expect(actions == [.close(old, .duplicateFollower, message: "node 2 connected again on connection 99")])
    }

    /// Lag in records, bytes and time from the append samples.
    @Test func lag() {
        var c = cluster(1)
        c.followers[0].stalled = true
        c.append(records: 2)
        c.advance(.milliseconds(50))
        c.append(records: 3)
        c.advance(.milliseconds(50))
        let status = c.primary.followerStatus(now: c.now)[0]
        #expect(status.lagRecords == 5)
        #expect(status.lagBytes == c.primaryLog.endBytes)
        #expect(status.lag == .milliseconds(100))
        #expect(status.streaming)
    }
}
