import Testing
import ShipLogProtocol

/// Elections in a controlled three-node cluster: who wins, when, and who must not disturb whom.
@Suite struct ElectionTests {
    @Test func aClusterElectsOnePrimaryAtStartupAndKeepsIt() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        let took = cluster.run(until: { $0.currentPrimaries.count == 1 })
        #expect(took != nil)
        let first = cluster.currentPrimaries.first!
        cluster.run(for: .seconds(10))
        #expect(cluster.currentPrimaries == [first])
        #expect(cluster.primaries.count == 1, "no further elections while the primary is healthy")
        for id in cluster.ids where id != first {
            #expect(cluster.nodes[id]?.primary == first)
            #expect(cluster.nodes[id]?.epoch == cluster.nodes[first]?.epoch)
        }
        #expect(cluster.violations.isEmpty)
    }

    @Test func aFollowerIsElectedWhenThePrimaryFallsSilent() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        cluster.run(for: .seconds(1))
        let old = cluster.currentPrimaries.first!
        let oldEpoch = cluster.nodes[old]!.epoch
        cluster.crash(old)
        let took = cluster.run(until: { $0.currentPrimaries.count == 1 }, step: .milliseconds(1))
        // Detection (1 s fixed timeout) plus at most the last heartbeat's age plus ranked delay.
        #expect(took != nil && took! <= .milliseconds(1000 + 100 + 200))
        let new = cluster.currentPrimaries.first!
        #expect(new != old && cluster.nodes[new]!.epoch > oldEpoch)
        let promoted = cluster.logs(new).compactMap { event -> Duration? in
            if case .promoted(_, .primarySuspected(old), let detection?, _) = event { detection } else { nil }
        }
        #expect(promoted.count == 1 && promoted[0] >= .milliseconds(900) && promoted[0] <= .milliseconds(1000))
        #expect(cluster.violations.isEmpty)
    }

    @Test func aFollowerCutOffFromThePrimaryOnlyDoesNotDisruptIt() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[primary]!.epoch
        let victim = cluster.ids.first { $0 != primary }!
        cluster.cutLink(primary, victim)
        cluster.run(for: .seconds(10))
        #expect(cluster.campaigned(victim), "it suspects and asks, but...")
        #expect(cluster.currentPrimaries == [primary])
        for id in cluster.ids where id != victim { #expect(cluster.nodes[id]!.epoch == epoch) }
        #expect(cluster.nodes[victim]!.epoch == epoch, "pre-votes were refused, so it never bumped its epoch")
        #expect(cluster.violations.isEmpty)
    }

    @Test func withoutPreVoteTheSamePartitionDisruptsThePrimary() {
        var cluster = ElectionCluster(voters: [1, 2, 3]) {
            $0.preVote = false
            $0.checkQuorum = false
        }
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries.first!
        let epoch = cluster.nodes[primary]!.epoch
        let victim = cluster.ids.first { $0 != primary }!
        cluster.cutLink(primary, victim)
        cluster.run(for: .seconds(10))
        #expect(cluster.primaries.count > 1 || cluster.nodes[victim]!.epoch > epoch, "the control: the guard matters")
        #expect(cluster.violations.isEmpty)
    }

    @Test func anIsolatedPrimaryStepsDownWithinTheElectionTimeout() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries.count == 1 })
        let old = cluster.currentPrimaries.first!
        cluster.isolate(old)
        let isolatedAt = cluster.now
        cluster.run(until: { $0.nodes[old]!.role != .primary }, step: .milliseconds(1))
        #expect(cluster.now - isolatedAt <= .milliseconds(1000 + 5))
        let stepDowns = (cluster.history[old] ?? []).filter { if case .stepDown(.lostQuorum) = $0 { true } else { false } }
        #expect(stepDowns.count == 1)
        cluster.run(until: { c in c.currentPrimaries.contains { $0 != old } })
        #expect(cluster.currentPrimaries.count == 1)
        cluster.heal()
        cluster.run(for: .seconds(3))
        let new = cluster.currentPrimaries
        #expect(new.count == 1 && new[0] != old && cluster.nodes[old]!.primary == new[0], "the old primary rejoins as a follower")
        #expect(cluster.violations.isEmpty)
    }

    @Test func rankedTimeoutsLetTheMostUpToDateFollowerCampaignAlone() {
        for aheadIndex in [0, 1] {
            var cluster = ElectionCluster(voters: [1, 2, 3])
            cluster.run(until: { $0.currentPrimaries.count == 1 })
            let primary = cluster.currentPrimaries[0]
            let others = cluster.ids.filter { $0 != primary }
            let (ahead, behind) = (others[aheadIndex], others[1 - aheadIndex])
            let epoch = cluster.nodes[primary]!.epoch
            let t = cluster.now
            // Replication brought the followers to different places; heartbeat responses tell the primary.
            cluster.call(primary) { $0.logEndChanged(LogEnd(nextOffset: 50, lastEpoch: epoch), now: t) }
            cluster.call(ahead) { $0.logEndChanged(LogEnd(nextOffset: 50, lastEpoch: epoch), now: t) }
            cluster.call(behind) { $0.logEndChanged(LogEnd(nextOffset: 40, lastEpoch: epoch), now: t) }
            cluster.run(for: .seconds(1))
            cluster.crash(primary)
            let took = cluster.run(until: { $0.currentPrimaries.count == 1 }, step: .milliseconds(1))
            #expect(cluster.currentPrimaries == [ahead])
            #expect(took != nil && took! <= .milliseconds(1000 + 100 + 20))
            #expect(!cluster.campaigned(behind), "the second-ranked follower heard the new primary before its turn")
            #expect(cluster.violations.isEmpty)
        }
    }

    @Test func aFollowerBehindIsRefusedAndTheNextRankWins() {
        var cluster = ElectionCluster(voters: [1, 2, 3])
        cluster.run(until: { $0.currentPrimaries == [node(1)] || $0.currentPrimaries.count == 1 })
        let primary = cluster.currentPrimaries[0]
        let others = cluster.ids.filter { $0 != primary }
        let t = cluster.now
        // The ranking (from empty progress) lists the others in id order; make the second more up to date.
        cluster.call(others[1]) { $0.logEndChanged(LogEnd(nextOffset: 9, lastEpoch: $0.epoch), now: t) }
        cluster.crash(primary)
        cluster.run(until: { $0.currentPrimaries.count == 1 }, step: .milliseconds(1))
        #expect(cluster.currentPrimaries == [others[1]])
        #expect(cluster.campaigned(others[0]), "the stale first rank tried and was refused at pre-vote")
        #expect(cluster.violations.isEmpty)
    }
}

