import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// `awaitReplication` for several appends at once (what the primary's shell does with the
/// appends that reach its loop together) decides exactly as one call per append would.
@Suite struct PrimaryBatchedWaitTests {
    func cluster(followers n: Int, minSync: Int = 1) -> Cluster {
        var config = ReplicationConfiguration()
        config.ackLevel = .written
        config.minSyncFollowers = minSync
        config.syncTimeout = .seconds(1)
        var c = Cluster(configuration: config, followerLogs: Array(repeating: ModelLog(), count: n))
        c.connectAll()
        c.settle()
        return c
    }

    /// Three appends, one of them asking for more followers than exist: the batched call fails
    /// that one at once, waits for the others, and acknowledges them when the follower has them.
    @Test func aBatchDecidesAsOneCallPerAppend() {
        let modes: [ReplicationMode] = [.sync(quorum: 1), .sync(quorum: 2), .syncAll, .async]
        var single = cluster(followers: 1)
        var batched = cluster(followers: 1)
        var appends: [(id: AppendID, through: UInt64, mode: ReplicationMode)] = []
        var singleActions: [PrimaryReplicator.Action] = []
        for (i, mode) in modes.enumerated() {
            single.append(records: 2)
            batched.append(records: 2)
            let through = single.primaryLog.nextOffset
            #expect(batched.primaryLog.nextOffset == through)
            appends.append((AppendID(UInt64(i + 1)), through, mode))
            // So the cluster checks each acknowledgement against the follower's own log.
            batched.awaiting[AppendID(UInt64(i + 1))] = (through, mode)
            singleActions += single.primary.awaitReplication(AppendID(UInt64(i + 1)), through: through, mode: mode, now: single.now)
        }
        let batchedActions = batched.primary.awaitReplication(appends, now: batched.now)
        #expect(batchedActions == singleActions)
        #expect(batchedActions.contains(.fail(AppendID(2), .notEnoughFollowers(inSync: 1, required: 2))))
        #expect(batchedActions.contains(.acknowledge(AppendID(4))))
        #expect(batched.primary.waiters.map(\.id) == [AppendID(1), AppendID(3)])
        #expect(single.primary.waiters.map(\.id) == batched.primary.waiters.map(\.id))
        // The follower gets the batches; both waiting appends are acknowledged, in order.
        batched.apply(batchedActions)
        batched.run()
        #expect(batched.acknowledged.contains(AppendID(1)) && batched.acknowledged.contains(AppendID(3)))
        #expect(batched.primary.waiters.isEmpty)
        #expect(batched.primary.commitOffset == batched.primaryLog.nextOffset)
    }

    /// Appends that arrive out of offset order are still kept sorted, so one acknowledgement
    /// sweeps exactly those it covers.
    @Test func outOfOrderAppendsStaySorted() {
        var c = cluster(followers: 1)
        c.followers[0].stalled = true
        c.append(records: 1)
        let first = c.primaryLog.nextOffset
        c.append(records: 1)
        let second = c.primaryLog.nextOffset
        let actions = c.primary.awaitReplication([(AppendID(2), second, .sync(quorum: 1)), (AppendID(1), first, .sync(quorum: 1))],
                                                 now: c.now)
        #expect(actions.isEmpty)
        #expect(c.primary.waiters.map(\.through) == [first, second])
        #expect(c.primary.stop(now: c.now).filter { if case .fail = $0 { true } else { false } }.count == 2)
    }

    /// Nothing in the batch, nothing to do: no sweep, no actions.
    @Test func anEmptyBatchDoesNothing() {
        var c = cluster(followers: 2)
        #expect(c.primary.awaitReplication([], now: c.now).isEmpty)
        #expect(c.primary.waiters.isEmpty)
    }
}
