import Testing
import ShipLogProtocol

/// Witnesses, the two-node pair, and switchover.
@Suite struct ElectionRoleTests {
    @Test func aWitnessVotesButNeverCampaigns() {
        var cluster = ElectionCluster(voters: [1, 2, 9], witnesses: [9])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let first = cluster.currentPrimaries[0]
        #expect(first != node(9))
        let standby = first == node(1) ? node(2) : node(1)
        cluster.run(for: .seconds(1))
        cluster.crash(first)
        cluster.run(until: { $0.currentPrimaries == [standby] }, step: .milliseconds(1))
        #expect(cluster.currentPrimaries == [standby], "the witness's vote makes the majority")
        // With both log-holding nodes gone the witness stays a follower forever.
        cluster.crash(standby)
        cluster.run(for: .seconds(10))
        #expect(cluster.currentPrimaries.isEmpty && !cluster.campaigned(node(9)))
        #expect(cluster.violations.isEmpty)
    }

    @Test func aWitnessRefusesACandidateBehindTheCommitItHasSeen() {
        let configuration = ElectionConfiguration(voters: [node(1), node(2), node(9)], witnesses: [node(9)])
        var witness = try! Election(configuration: configuration, nodeID: node(9), durable: .initial, logEnd: nil, seed: 3, now: .zero)
        _ = witness.start(now: .zero)
        let heartbeat = witness.received(
            .heartbeat(.init(epoch: 4, commit: LogEnd(nextOffset: 100, lastEpoch: 4), ranking: [node(2)])), from: node(1), now: .seconds(1))
        #expect(heartbeat == [
            .persist(ElectionDurableState(epoch: 4, votedFor: nil)),
            .becomeFollower(epoch: 4, primary: node(1)), .log(.following(epoch: 4, primary: node(1))),
            .send(.heartbeatResponse(.init(epoch: 4, logEnd: nil)), to: node(1)),
        ])
        func ask(_ next: UInt64, _ last: UInt64) -> ElectionMessage.VoteResponse? {
            let actions = witness.received(
                .voteRequest(.init(epoch: 5, logEnd: LogEnd(nextOffset: next, lastEpoch: last), preVote: true)), from: node(2), now: .seconds(3))
            return ElectionVotingTests.answer(actions)
        }
        #expect(ask(99, 4)?.reason == .logBehind)
        #expect(ask(120, 3)?.reason == .logBehind, "an older epoch's longer log diverged")
        #expect(ask(100, 4)?.granted == true)
        // Witnesses are not candidates, and their votes requests are refused.
        let fromWitness = ElectionVotingTests.answer(
            try! Election(configuration: configuration, nodeID: node(1), durable: .initial, logEnd: nil, seed: 1, now: .zero)
                .withStart { $0.received(.voteRequest(.init(epoch: 1, logEnd: LogEnd(nextOffset: 0, lastEpoch: nil), preVote: false)), from: node(9), now: .seconds(2)) })
        #expect(fromWitness?.reason == .notAVoter)
    }

    @Test func twoNodesTheStandbyPromotesItselfInAnEpochItOwns() {
        var cluster = ElectionCluster(voters: [1, 2]) { $0.twoNodeSelfPromotion = true }
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let first = cluster.currentPrimaries[0]
        let standby = first == node(1) ? node(2) : node(1)
        cluster.run(for: .seconds(1))
        cluster.crash(first)
        let took = cluster.run(until: { $0.currentPrimaries == [standby] }, step: .milliseconds(1))
        #expect(took != nil && took! <= .milliseconds(1100 + 20))
        let epoch = cluster.nodes[standby]!.epoch
        #expect(epoch % 2 == (standby == node(1) ? 0 : 1), "node 1 owns even epochs, node 2 odd ones")
        // The old primary returns and follows.
        cluster.restart(first)
        cluster.run(for: .seconds(1))
        #expect(cluster.currentPrimaries == [standby] && cluster.nodes[first]!.primary == standby)
        #expect(cluster.violations.isEmpty)
    }

    @Test func twoNodesAPartitionMakesTwoPrimariesInDifferentEpochsUntilItHeals() {
        var cluster = ElectionCluster(voters: [1, 2]) { $0.twoNodeSelfPromotion = true }
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.isolate(node(1))
        cluster.run(for: .seconds(3))
        // The documented split brain: no check-quorum, so both serve, in different epochs.
        #expect(cluster.currentPrimaries.count == 2)
        #expect(cluster.nodes[node(1)]!.epoch != cluster.nodes[node(2)]!.epoch)
        cluster.heal()
        cluster.run(for: .seconds(1))
        #expect(cluster.currentPrimaries.count == 1)
        #expect(cluster.violations.isEmpty)
    }

    @Test func switchoverHandsLeadershipToACaughtUpFollower() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let old = cluster.currentPrimaries[0]
        let target = cluster.ids.first { $0 != old }!
        let epoch = cluster.nodes[old]!.epoch
        let t = cluster.now
        cluster.call(old) { $0.logEndChanged(LogEnd(nextOffset: 30, lastEpoch: epoch), now: t) }
        cluster.call(old) { $0.transferLeadership(to: target, now: t) }
        #expect(cluster.history[old]!.contains(.pauseAppends))
        cluster.run(for: .milliseconds(300))
        #expect(cluster.currentPrimaries == [old], "the target is behind: no timeoutNow yet")
        // Replication catches the target up; the primary hears it through an ack.
        let t2 = cluster.now
        cluster.call(target) { $0.logEndChanged(LogEnd(nextOffset: 30, lastEpoch: epoch), now: t2) }
        cluster.call(old) { $0.followerHeard(target, logEnd: LogEnd(nextOffset: 30, lastEpoch: epoch), now: t2) }
        cluster.deliverAll()
        #expect(cluster.currentPrimaries == [target], "timeoutNow, vote, done: no waiting for a timeout")
        #expect(cluster.nodes[target]!.epoch == epoch + 1)
        #expect(cluster.history[old]!.contains(.stepDown(.leadershipTransferred(to: target, epoch: epoch + 1))))
        #expect(!cluster.history[old]!.contains(.resumeAppends))
        cluster.run(for: .seconds(3))
        #expect(cluster.currentPrimaries == [target])
        #expect(cluster.violations.isEmpty)
    }

    @Test func aSwitchoverThatCannotCompleteIsAbandonedAndAppendsResume() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let old = cluster.currentPrimaries[0]
        let target = cluster.ids.first { $0 != old }!
        let t = cluster.now
        cluster.call(old) { $0.logEndChanged(LogEnd(nextOffset: 30, lastEpoch: 1), now: t) }
        cluster.call(old) { $0.transferLeadership(to: target, now: t) }
        cluster.run(for: .milliseconds(1100))
        #expect(cluster.history[old]!.contains(.resumeAppends))
        #expect(cluster.currentPrimaries == [old])
        // Not primary: refused, and said so.
        let follower = cluster.ids.first { $0 != old && $0 != target }!
        cluster.call(follower) { $0.transferLeadership(to: target, now: t) }
        #expect(cluster.logs(follower).contains { if case .transferRefused = $0 { true } else { false } })
        #expect(cluster.violations.isEmpty)
    }
}

extension Election {
    /// Starts a fresh instance, then runs `body` on it (for one-line tests).
    func withStart(_ body: (inout Election) -> [Action]) -> [Action] {
        var copy = self
        _ = copy.start(now: .zero)
        return body(&copy)
    }
}

@Suite struct ElectionStatusTests {
    @Test func statusShowsRolePrimaryAndTheDetector() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries[0]
        let follower = cluster.ids.first { $0 != primary }!
        let status = cluster.nodes[follower]!.status(now: cluster.now)
        #expect(status.role == .follower && status.primary == primary && !status.suspected)
        #expect(status.silentFor != nil && status.silentFor! < .milliseconds(100))
        let later = cluster.nodes[follower]!.status(now: cluster.now + .seconds(2))
        #expect(later.suspected && later.phi == .infinity)
        let primaryStatus = cluster.nodes[primary]!.status(now: cluster.now)
        #expect(primaryStatus.role == .primary && primaryStatus.ranking.count == 2 && primaryStatus.silentFor == nil)
    }
}
