import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// What the primary timeout does not count (fix9).
@Suite struct PrimaryTimeoutTests {
    /// A truncate the follower's own log takes long to carry out is local work, not silence;
    /// after it, the follow it sends starts the clock again.
    @Test func timeSpentCuttingIsNotSilence() {
        var configuration = ReplicationConfiguration()
        configuration.primaryTimeout = .seconds(1)
        var follower = FollowerReplicator(configuration: configuration, nodeID: NodeID(2),
                                          log: LogEnd(nextOffset: 10, lastEpoch: 1), durableNextOffset: 10, knownEpoch: 1, now: .zero)
        _ = follower.connected(now: .zero)
        #expect(follower.received(.followReply(.init(kind: .truncate, offset: 5, epoch: 2)), now: .zero) == [.truncate(toNextOffset: 5)])
        #expect(follower.tick(now: .seconds(5)).isEmpty, "cutting")
        let sent = follower.truncated(logEnd: LogEnd(nextOffset: 5, lastEpoch: 1), now: .seconds(5))
        #expect(sent.count == 1)
        #expect(follower.tick(now: .milliseconds(5_900)).isEmpty)
        #expect(follower.tick(now: .milliseconds(6_100)).contains { if case .close(.primaryTimeout, _) = $0 { true } else { false } })
    }
}
