import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// Review of issue 9 (review9): a follower whose primary falls silent.
@Suite struct Review9LivenessTests {
    /// The primary heartbeats every `heartbeatInterval` (100 ms), but the follower never acts on
    /// their absence: `tick` returns nothing however long the primary has been silent. When the
    /// primary's host dies or the network drops it without a FIN or RST, the follower's socket
    /// stays open (the shell sets no keepalive, and the follower only writes when it receives),
    /// so it never reconnects, not even after the primary is back. Expected: after some
    /// multiple of the heartbeat interval without a frame, the follower closes the connection.
    @Test func aFollowerClosesAConnectionWhoseHeartbeatsStopped() {
        let configuration = ReplicationConfiguration()
        var follower = FollowerReplicator(configuration: configuration, nodeID: NodeID(2),
                                          log: LogEnd(nextOffset: 0, lastEpoch: nil), durableNextOffset: 0, knownEpoch: 0, now: .zero)
        _ = follower.connected(now: .zero)
        _ = follower.received(.followReply(.init(kind: .stream, offset: 0, epoch: 1)), now: .zero)
        _ = follower.received(.heartbeat(.init(epoch: 1, commitOffset: 0, primaryNextOffset: 0)), now: .milliseconds(100))
        #expect(follower.isStreaming)
        var closed = false
        // Ten minutes of ticks, one every 25 ms, and not one frame from the primary.
        for step in 1...24_000 {
            let actions = follower.tick(now: .milliseconds(100 + 25 * step))
            if actions.contains(where: { if case .close = $0 { true } else { false } }) { closed = true; break }
        }
        #expect(closed, "the follower still trusts a primary silent for ten minutes")
    }
}
