import Testing
import ShipLogProtocol

/// The fast path of failure detection: a follower whose connection to the primary closes
/// suspects it `preVoteSilence` later (200 ms at the default 100 ms heartbeats) instead of a
/// whole election timeout (1 s), and that costs no election when the primary is in fact alive.
@Suite struct ElectionConnectionCloseTests {
    /// Crashes the primary the way kill -9 does: every peer's connection to it closes at once.
    func killPrimary(_ cluster: inout ElectionCluster) -> (old: NodeID, epoch: UInt64) {
        let old = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[old]!.epoch
        cluster.crash(old)
        let now = cluster.now
        for id in cluster.ids where id != old { cluster.call(id) { $0.peerDisconnected(old, now: now) } }
        return (old, epoch)
    }

    @Test func aClosedConnectionToADeadPrimaryElectsWithinPreVoteSilenceAndOneStagger() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.run(for: .seconds(1))
        let (old, oldEpoch) = killPrimary(&cluster)
        let took = cluster.run(until: { $0.currentPrimaries.count == 1 }, step: .milliseconds(1))
        // preVoteSilence (200 ms) + the first rank's jitter (< stagger / 2 = 25 ms) + a tick or two;
        // the detector alone would take 900–1000 ms.
        #expect(took != nil && took! >= .milliseconds(200) && took! <= .milliseconds(230), "took \(String(describing: took))")
        let new = cluster.currentPrimaries.first!
        #expect(new != old && cluster.nodes[new]!.epoch == oldEpoch + 1, "one election, no split vote")
        #expect(cluster.logs(new).contains(.primaryConnectionClosed(old, epoch: oldEpoch)))
        #expect(cluster.violations.isEmpty)
    }

    @Test func aConnectionThatClosesWhileThePrimaryLivesCostsNoElection() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[primary]!.epoch
        let follower = cluster.ids.first { $0 != primary }!
        // The connection dropped and came straight back: heartbeats keep arriving.
        let now = cluster.now
        cluster.call(follower) { $0.peerDisconnected(primary, now: now) }
        cluster.run(for: .seconds(5))
        #expect(!cluster.campaigned(follower), "a heartbeat within preVoteSilence cancels the suspicion")
        #expect(cluster.currentPrimaries == [primary] && cluster.ids.allSatisfy { cluster.nodes[$0]!.epoch == epoch })
        #expect(cluster.violations.isEmpty)
    }

    @Test func aFollowerWhoseConnectionStaysClosedAsksButIsRefusedByVotersThatHearThePrimary() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[primary]!.epoch
        let victim = cluster.ids.first { $0 != primary }!
        cluster.cutLink(primary, victim)
        let now = cluster.now
        cluster.call(victim) { $0.peerDisconnected(primary, now: now) }
        cluster.run(for: .milliseconds(400))
        #expect(cluster.campaigned(victim), "it suspected after preVoteSilence, not after the 1 s timeout")
        cluster.run(for: .seconds(5))
        #expect(cluster.currentPrimaries == [primary])
        #expect(cluster.ids.allSatisfy { cluster.nodes[$0]!.epoch == epoch }, "pre-votes refused: no epoch was bumped")
        #expect(cluster.violations.isEmpty)
    }

    @Test func turnedOffOnlyTheDetectorDecides() {
        var cluster = ElectionCluster(voters: [1, 2, 3]) { $0.suspectOnConnectionClose = false }
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.run(for: .seconds(1))
        let (old, _) = killPrimary(&cluster)
        let took = cluster.run(until: { $0.currentPrimaries.count == 1 }, step: .milliseconds(1))
        #expect(took != nil && took! >= .milliseconds(800), "took \(String(describing: took))")
        #expect(!cluster.logs(cluster.currentPrimaries.first!).contains(.primaryConnectionClosed(old, epoch: 1)))
        #expect(cluster.violations.isEmpty)
    }

    @Test func aWitnessNeverCampaignsOnAClosedConnection() {
        var cluster = ElectionCluster(voters: [1, 2, 3], witnesses: [3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries.first!
        let now = cluster.now
        cluster.call(NodeID(3)) { $0.peerDisconnected(primary, now: now) }
        cluster.run(for: .seconds(2))
        #expect(!cluster.campaigned(NodeID(3)))
        #expect(!cluster.logs(NodeID(3)).contains { if case .primaryConnectionClosed = $0 { true } else { false } })
        #expect(cluster.violations.isEmpty)
    }
}

/// Two-node self-promotion has no voter to refuse a standby whose connection merely broke, so
/// there a closed connection changes nothing: only the detector's timeout promotes.
@Suite struct ElectionConnectionCloseTwoNodeTests {
    @Test func aPairsStandbyWaitsForTheWholeTimeoutDespiteAClosedConnection() {
        var cluster = ElectionCluster(voters: [1, 2]) { $0.twoNodeSelfPromotion = true }
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.run(for: .seconds(1))
        let old = cluster.currentPrimaries.first!
        let standby = cluster.ids.first { $0 != old }!
        cluster.crash(old)
        let now = cluster.now
        cluster.call(standby) { $0.peerDisconnected(old, now: now) }
        let took = cluster.run(until: { $0.currentPrimaries.count == 1 }, step: .milliseconds(1))
        #expect(took != nil && took! >= .milliseconds(800), "took \(String(describing: took))")
        #expect(!cluster.logs(standby).contains(.primaryConnectionClosed(old, epoch: cluster.nodes[standby]!.epoch)))
        #expect(cluster.violations.isEmpty)
    }
}
