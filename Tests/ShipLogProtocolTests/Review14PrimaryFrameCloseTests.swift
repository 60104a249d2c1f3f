import Testing
@testable import ShipLogProtocol

/// Review 14: the connection-close fast path against `Election.primaryFrame`. A batches frame
/// reaches the election only through a live follow session (`NodeMachine.route` drops frames
/// without a link), so one that arrives after the close came over a newer connection: the
/// primary is alive after the close, and the close must not still depose it.
@Suite struct Review14PrimaryFrameCloseTests {
    func following(now: Duration) -> Election {
        let configuration = ElectionConfiguration(voters: [node(1), node(2), node(3)])
        var follower = try! Election(configuration: configuration, nodeID: node(2), durable: .initial,
                                     logEnd: LogEnd(nextOffset: 0, lastEpoch: nil), seed: 5, now: .zero)
        _ = follower.start(now: .zero)
        _ = follower.received(.heartbeat(.init(epoch: 3, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: [node(2), node(3)])),
                              from: node(1), now: now)
        return follower
    }

    @Test func batchesOnANewConnectionCancelTheClosedConnectionsSuspicion() {
        // A read-paused follower reconnects: its heartbeats wait behind batches for seconds.
        var follower = following(now: .seconds(1))
        _ = follower.peerDisconnected(node(1), now: .milliseconds(1050))
        var campaigned = false
        var now = Duration.milliseconds(1050)
        for _ in 0..<40 {  // 2 s of batches every 50 ms, no heartbeat
            now += .milliseconds(50)
            _ = follower.primaryFrame(from: node(1), epoch: 3, now: now)
            for action in follower.tick(now: now) {
                if case .log(.campaignStarted) = action { campaigned = true }
            }
        }
        #expect(!campaigned && follower.role == .follower && follower.primary == node(1),
                "a primary streaming batches after the close was suspected for the close")
        // Once the batches stop too, the detector's timeout still fires.
        var later: [Election.Action] = []
        for step in 1...30 { later += follower.tick(now: now + .milliseconds(100 * step)) }
        #expect(later.contains { if case .log(.campaignStarted) = $0 { true } else { false } })
    }

    @Test func aCloseWithNoFrameAfterItStillSuspectsWithinPreVoteSilence() {
        var follower = following(now: .seconds(1))
        _ = follower.primaryFrame(from: node(1), epoch: 3, now: .milliseconds(1040))
        _ = follower.peerDisconnected(node(1), now: .milliseconds(1050))
        var startedAt: Duration?
        for step in 1...100 where startedAt == nil {
            let now = Duration.milliseconds(1050 + 5 * step)
            if follower.tick(now: now).contains(where: { if case .log(.campaignStarted) = $0 { true } else { false } }) {
                startedAt = now
            }
        }
        #expect(startedAt != nil && startedAt! <= .milliseconds(1050 + 200 + 60), "started at \(String(describing: startedAt))")
    }
}
