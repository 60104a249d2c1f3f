import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// Review of issue 9 (review9): acknowledgements that run ahead of what a follower really has.
@Suite struct Review9AckTests {
    /// Ack level `received`: the follower machine acks `received` for a batch before anyone has
    /// checked its CRC (the log does that later, on append). A batch damaged between the
    /// primary's disk and the follower's log is acknowledged, the primary counts it, and the sync
    /// append returns although no follower holds its records (the append then fails and the
    /// connection closes, but the client was already told "replicated").
    @Test func aBatchThatFailsItsCRCIsNeverCountedTowardsASyncAppend() throws {
        var configuration = ReplicationConfiguration()
        configuration.ackLevel = .received
        configuration.followers = [NodeID(2)]
        var primaryLog = ModelLog()
        var primary = PrimaryReplicator(configuration: configuration, nodeID: NodeID(1), epoch: 1, log: primaryLog.view, now: .zero)
        var follower = FollowerReplicator(configuration: configuration, nodeID: NodeID(2),
                                          log: LogEnd(nextOffset: 0, lastEpoch: nil), durableNextOffset: 0, knownEpoch: 0, now: .zero)
        let connection = ConnectionID(7)
        _ = primary.followerAuthenticated(connection, node: NodeID(2), now: .zero)

        // Follow, stream: the follower is caught up (both logs empty) and in sync.
        var toPrimary = sent(follower.connected(now: .zero))
        var toFollower: [Frame] = []
        for frame in toPrimary { toFollower += sent(primary.received(frame, from: connection, now: .zero), to: connection) }
        toPrimary = toFollower.flatMap { sent(follower.received($0, now: .zero)) }
        for frame in toPrimary { _ = primary.received(frame, from: connection, now: .zero) }
        #expect(primary.followers.first?.streaming == true)

        // The primary appends one batch; a sync(quorum: 1) append waits for it.
        try primaryLog.append(makeBatch(first: 0, epoch: 1, records: 3))
        let shipActions = primary.logAppended(nextOffset: primaryLog.nextOffset, endBytes: primaryLog.endBytes,
                                              epochs: primaryLog.epochs, now: .milliseconds(1))
        let waited = primary.awaitReplication(AppendID(1), through: primaryLog.nextOffset, mode: .sync(quorum: 1), now: .milliseconds(1))
        #expect(waited.isEmpty, "the append waits for the follower")
        guard case .ship(_, let from, _, let epoch, let commit)? = shipActions.first else {
            Issue.record("no ship after the append: \(shipActions)")
            return
        }
        // The shell ships the batch; one payload byte is damaged on the way.
        var damaged = primaryLog.read(from: from, maxBytes: 1 << 20)
        damaged[0][damaged[0].count - 1] ^= 0x40
        #expect(throws: (any Error).self, "the log would refuse this batch") { _ = try StoredBatch(bytes: damaged[0]) }
        _ = primary.shipped(connection, nextOffset: primaryLog.nextOffset, bytes: damaged[0].count, now: .milliseconds(1))

        let followerActions = follower.received(.batches(.init(epoch: epoch, commitOffset: commit, batches: damaged)), now: .milliseconds(2))
        var acknowledged = false
        for frame in sent(followerActions) {
            for action in primary.received(frame, from: connection, now: .milliseconds(2)) {
                if case .acknowledge(AppendID(1)) = action { acknowledged = true }
            }
        }
        // The shell's append then fails on the CRC; the follower closes.
        let failed = follower.appendFailed("CRC mismatch", now: .milliseconds(3))
        #expect(failed.contains { if case .close = $0 { true } else { false } })
        #expect(!acknowledged, "sync(quorum: 1) was acknowledged for a batch no follower could store")
    }

    /// Frames in `.send` actions (the follower's).
    func sent(_ actions: [FollowerReplicator.Action]) -> [Frame] {
        actions.compactMap { if case .send(let frame) = $0 { frame } else { nil } }
    }

    /// Frames in `.send` actions to `connection` (the primary's).
    func sent(_ actions: [PrimaryReplicator.Action], to connection: ConnectionID) -> [Frame] {
        actions.compactMap { if case .send(let frame, let to) = $0, to == connection { frame } else { nil } }
    }
}
