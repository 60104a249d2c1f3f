import Testing
@testable import ShipLogProtocol

/// Review 13: a follower whose reading from its primary is paused (its log slower than the
/// primary's load) hears the primary's heartbeats only behind megabytes of batches; the batches
/// frames that do arrive prove the primary alive, as in Raft (AppendEntries restart the timer).
@Suite struct Review13PrimaryFrameTests {
    @Test func anAliveSignalRestartsTheSilenceButIsNoIntervalSample() {
        var fixed = FailureDetector(.fixedTimeout(.milliseconds(300)))
        fixed.alive(now: .seconds(1))
        #expect(fixed.lastHeard == nil, "before the detector starts an alive signal is ignored")
        fixed.reset(now: .seconds(1))
        fixed.alive(now: .milliseconds(1200))
        #expect(!fixed.isSuspected(now: .milliseconds(1499)))
        #expect(fixed.isSuspected(now: .milliseconds(1500)))
        fixed.alive(now: .milliseconds(1100))  // older than what was heard: changes nothing
        #expect(fixed.lastHeard == .milliseconds(1200))
        // Phi: alive signals every 5 ms while heartbeats come every 100 ms leave the heartbeats'
        // distribution alone, so a pause of 150 ms after both stop is not yet suspected.
        var phi = FailureDetector(.phiAccrual(PhiAccrualSettings()))
        var now = Duration.zero
        phi.reset(now: now)
        for step in 1...2000 {
            now = .milliseconds(5 * step)
            if step % 20 == 0 { phi.heartbeat(now: now) } else { phi.alive(now: now) }
        }
        #expect(!phi.isSuspected(now: now + .milliseconds(150)))
        #expect(phi.isSuspected(now: now + .seconds(1)))
        phi.reset(now: now)
        #expect(phi.lastHeard == now)
    }

    @Test func batchesFromTheFollowedPrimaryKeepAFollowerFromSuspectingIt() {
        let configuration = ElectionConfiguration(voters: [node(1), node(2), node(3)])
        var follower = try! Election(configuration: configuration, nodeID: node(2), durable: .initial,
                                     logEnd: LogEnd(nextOffset: 0, lastEpoch: nil), seed: 5, now: .zero)
        _ = follower.start(now: .zero)
        _ = follower.received(.heartbeat(.init(epoch: 3, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: [node(2), node(3)])),
                              from: node(1), now: .seconds(1))
        #expect(follower.role == .follower && follower.primary == node(1))
        // No heartbeat for 5 s (they wait behind batches), a batches frame every 200 ms.
        var suspected = false
        var now = Duration.seconds(1)
        for _ in 0..<25 {
            now += .milliseconds(200)
            _ = follower.primaryFrame(from: node(1), epoch: 3, now: now)
            for action in follower.tick(now: now) {
                if case .log(.primarySuspected) = action { suspected = true }
            }
        }
        #expect(!suspected && follower.role == .follower, "batches every 200 ms did not count as hearing the primary")
        // The pre-vote window stays on heartbeats: a dead primary's batches still in the socket
        // must not make this node refuse the failover's pre-votes.
        #expect(!follower.hearsPrimary(now: now))
        // Frames of another node, or of an older epoch, prove nothing about the followed primary.
        _ = follower.primaryFrame(from: node(3), epoch: 3, now: now + .seconds(1))
        _ = follower.primaryFrame(from: node(1), epoch: 2, now: now + .seconds(1))
        var later: [Election.Action] = []
        for step in 1...30 { later += follower.tick(now: now + .milliseconds(100 * step)) }
        #expect(later.contains { if case .log(.primarySuspected) = $0 { true } else { false } })
    }
}
