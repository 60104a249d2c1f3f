import Testing
import ShipLogProtocol

/// Adversarial checks of the closed-connection fast path (`suspectOnConnectionClose`): it must
/// never cost an election while the primary lives and its other voters hear it.
@Suite struct Review10bConnectionCloseTests {
    /// Cuts `primary` → `victim` (heartbeats lost) and tells `victim` its connection closed.
    func breakLink(_ cluster: inout ElectionCluster, primary: NodeID, victim: NodeID) {
        cluster.cut.insert([primary, victim])
        cluster.cut.insert([victim, primary])
        let now = cluster.now
        cluster.call(victim) { $0.peerDisconnected(primary, now: now) }
    }

    /// Without pre-vote and check-quorum no voter refuses for "primary alive", so the fast path
    /// would depose a healthy primary 200 ms after one follower's connection broke (the
    /// detector alone needs a whole election timeout of silence). It must not apply there.
    @Test func withoutTheLeaseAClosedConnectionDoesNotElectBeforeTheTimeout() {
        var cluster = ElectionCluster(voters: [1, 2, 3]) { $0.preVote = false; $0.checkQuorum = false }
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.run(for: .seconds(1))
        let primary = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[primary]!.epoch
        let victim = cluster.ids.first { $0 != primary }!
        breakLink(&cluster, primary: primary, victim: victim)
        // Less than the election timeout (1 s) after the last heartbeat.
        cluster.run(for: .milliseconds(700))
        let campaigned = cluster.campaigned(victim)
        let epochs = cluster.ids.map { cluster.nodes[$0]!.epoch }
        #expect(!campaigned, "a follower whose connection merely broke campaigned")
        #expect(epochs.allSatisfy { $0 == epoch }, "the healthy primary's epoch \(epoch) was ended: \(epochs)")
        #expect(cluster.violations.isEmpty)
    }

    /// A primary, a standby and a witness: the standby's connection breaks and stays broken; the
    /// witness hears the primary, so the standby's pre-votes are refused and no epoch is bumped.
    @Test func aStandbyWithABrokenConnectionIsRefusedByAWitnessThatHearsThePrimary() {
        var cluster = ElectionCluster(voters: [1, 2, 3], witnesses: [3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.run(for: .seconds(1))
        let primary = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[primary]!.epoch
        let standby = cluster.ids.first { $0 != primary && $0 != NodeID(3) }!
        breakLink(&cluster, primary: primary, victim: standby)
        cluster.run(for: .seconds(5))
        #expect(cluster.campaigned(standby))
        #expect(cluster.currentPrimaries == [primary])
        #expect(cluster.ids.allSatisfy { cluster.nodes[$0]!.epoch == epoch })
        #expect(cluster.violations.isEmpty)
    }

    /// A connection that flaps every 150 ms (each time back before the next heartbeat): never a
    /// campaign.
    @Test func aFlappingConnectionNeverCampaigns() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries.first!
        let victim = cluster.ids.first { $0 != primary }!
        for _ in 0..<40 {
            let now = cluster.now
            cluster.call(victim) { $0.peerDisconnected(primary, now: now) }
            cluster.run(for: .milliseconds(150))
        }
        #expect(!cluster.campaigned(victim))
        #expect(cluster.currentPrimaries == [primary])
        #expect(cluster.violations.isEmpty)
    }

    /// Every follower's connection closes at once while the primary lives but stays cut off
    /// for longer than preVoteSilence (the primary's connections all dropped): an election
    /// happens, but one primary per epoch, and the old one steps down once it hears the new epoch.
    @Test func allConnectionsDroppingElectsOnceAndTheOldPrimaryStepsDown() {
        var cluster = ElectionCluster(voters: [1, 2, 3, 4, 5])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.run(for: .seconds(1))
        let old = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[old]!.epoch
        for id in cluster.ids where id != old { breakLink(&cluster, primary: old, victim: id) }
        cluster.run(until: { $0.currentPrimaries.contains { $0 != old } }, limit: .seconds(2), step: .milliseconds(1))
        cluster.heal()
        cluster.run(for: .seconds(2))
        #expect(cluster.currentPrimaries.count == 1 && cluster.currentPrimaries != [old])
        let new = cluster.currentPrimaries.first!
        #expect(cluster.nodes[new]!.epoch == epoch + 1, "no split vote, no epoch storm: \(cluster.nodes[new]!.epoch)")
        #expect(cluster.violations.isEmpty)
    }
}

/// A heartbeat from the primary this node already follows, carrying a newer epoch (the primary
/// was re-elected without this node's vote), is contact like any other: it must clear a
/// closed-connection suspicion and count as hearing the primary.
@Suite struct Review10bNewerEpochHeartbeatTests {
    @Test func aNewerEpochHeartbeatFromTheSamePrimaryCountsAsContact() throws {
        let configuration = ElectionConfiguration(voters: [NodeID(1), NodeID(2), NodeID(3)])
        var follower = try Election(configuration: configuration, nodeID: NodeID(2), durable: .initial,
                                    logEnd: LogEnd(nextOffset: 0, lastEpoch: nil), seed: 7, now: .zero)
        _ = follower.start(now: .zero)
        func beat(_ epoch: UInt64, at now: Duration) -> [Election.Action] {
            follower.received(.heartbeat(.init(epoch: epoch, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: [NodeID(2), NodeID(3)])),
                              from: NodeID(1), now: now)
        }
        _ = beat(1, at: .milliseconds(100))
        _ = beat(1, at: .milliseconds(200))
        _ = follower.peerDisconnected(NodeID(1), now: .milliseconds(250))
        // Reconnected: the primary, re-elected in epoch 2 meanwhile, heartbeats in it.
        _ = beat(2, at: .milliseconds(400))
        var actions: [Election.Action] = []
        var now = Duration.milliseconds(400)
        for _ in 0..<19 {  // up to 495 ms: before the next heartbeat would be late
            now += .milliseconds(5)
            actions += follower.tick(now: now)
        }
        let suspected = actions.contains { if case .log(.primarySuspected) = $0 { true } else { false } }
        let campaigned = actions.contains { if case .log(.campaignStarted) = $0 { true } else { false } }
        #expect(!suspected && !campaigned, "suspected a primary heard \(now - .milliseconds(400)) ago")
        #expect(follower.status(now: now).silentFor == now - .milliseconds(400))
    }
}
