import Foundation
import Testing
import ShipLogProtocol

/// Many seeds of a hostile network (loss, duplication, reordering, partitions), crashes in the
/// middle of an action batch and restarts from what was persisted: never two primaries in one
/// epoch, never two votes in one epoch, never a persisted epoch going back.
@Suite struct ElectionPropertyTests {
    static let shapes: [(voters: [UInt64], witnesses: [UInt64], adjust: @Sendable (inout ElectionConfiguration) -> Void)] = [
        ([1, 2, 3], [], { _ in }),
        ([1, 2, 3, 4, 5], [], { _ in }),
        ([1, 2, 9], [9], { _ in }),
        ([1, 2], [], { $0.twoNodeSelfPromotion = true }),
        ([1, 2, 3], [], { $0.preVote = false; $0.checkQuorum = false }),
        ([1, 2, 3], [], {
            $0.heartbeatInterval = .milliseconds(50)
            $0.electionTimeout = .milliseconds(300)
            $0.detector = .phiAccrual(PhiAccrualSettings())
            $0.stagger = .milliseconds(25)
            $0.preVoteSilence = .milliseconds(100)
        }),
    ]

    /// 240 seeds in the suite; `ELECTION_SEEDS=100000 swift test --filter atMostOnePrimary` runs more.
    @Test func atMostOnePrimaryPerEpochOverManySeeds() {
        let seeds = ProcessInfo.processInfo.environment["ELECTION_SEEDS"].flatMap { UInt64($0) } ?? 240
        var elections = 0
        for seed in UInt64(1)...max(1, seeds) {
            let shape = Self.shapes[Int(seed) % Self.shapes.count]
            var cluster = ElectionCluster(voters: shape.voters, witnesses: shape.witnesses, seed: seed, shape.adjust)
            Self.simulate(&cluster, seed: seed, steps: 2_500)
            #expect(cluster.violations.isEmpty, "seed \(seed): \(cluster.violations)")
            if !cluster.violations.isEmpty { return }
            elections += cluster.primaries.count
        }
        #expect(elections > 240, "the runs elected primaries (\(elections)), so the check was not vacuous")
    }

    static func simulate(_ cluster: inout ElectionCluster, seed: UInt64, steps: Int) {
        var random = ElectionRandom(seed: seed ^ 0xA5A5_5A5A)
        func chance(_ percent: UInt64) -> Bool { random.next(upperBound: UInt64(1000)) < percent * 10 }
        func permille(_ p: UInt64) -> Bool { random.next(upperBound: UInt64(1000)) < p }
        let ids = cluster.ids
        let candidates = cluster.configuration.candidates
        for _ in 0..<steps {
            cluster.now += .milliseconds(Int64(random.next(upperBound: UInt64(12))))
            // Time passes for everyone.
            for id in ids { cluster.tick(id) }
            // Deliver some messages in random order; drop or duplicate some.
            var budget = Int(random.next(upperBound: UInt64(12)))
            while budget > 0, !cluster.queue.isEmpty {
                budget -= 1
                let index = Int(random.next(upperBound: UInt64(cluster.queue.count)))
                if permille(50) {
                    cluster.queue.remove(at: index)
                    continue
                }
                if permille(30) { cluster.queue.append(cluster.queue[index]) }
                let crashAfter = permille(30) ? Int(random.next(upperBound: UInt64(4))) : nil
                cluster.deliver(at: index, crashAfter: crashAfter)
            }
            // Logs grow on the primary and are copied by followers of the same epoch.
            for id in candidates where !cluster.down.contains(id) {
                guard let node = cluster.nodes[id] else { continue }
                if node.role == .primary, chance(5) {
                    var end = cluster.logEnds[id]!
                    end = LogEnd(nextOffset: end.nextOffset + random.next(upperBound: UInt64(5)) + 1, lastEpoch: node.epoch)
                    cluster.logEnds[id] = end
                    let now = cluster.now
                    cluster.call(id) { $0.logEndChanged(end, now: now) }
                } else if node.role == .follower, let p = node.primary, let primaryNode = cluster.nodes[p],
                    primaryNode.epoch == node.epoch, chance(5)
                {
                    let end = cluster.logEnds[p]!
                    cluster.logEnds[id] = end
                    let now = cluster.now
                    cluster.call(id) { $0.logEndChanged(end, now: now) }
                    cluster.call(p) { $0.followerHeard(id, logEnd: end, now: now) }
                }
                if node.role == .primary, permille(2) {
                    let target = candidates[Int(random.next(upperBound: UInt64(candidates.count)))]
                    let now = cluster.now
                    cluster.call(id) { $0.transferLeadership(to: target, now: now) }
                }
            }
            // Crashes, restarts, partitions and healing.
            if permille(10) { cluster.crash(ids[Int(random.next(upperBound: UInt64(ids.count)))]) }
            if permille(150), let id = cluster.down.sorted().first { cluster.restart(id) }
            if permille(6) {
                let a = ids[Int(random.next(upperBound: UInt64(ids.count)))]
                let b = ids[Int(random.next(upperBound: UInt64(ids.count)))]
                if a != b {
                    cluster.cut.insert([a, b])
                    if chance(50) { cluster.cut.insert([b, a]) }
                }
            }
            if permille(8) { cluster.heal() }
            if !cluster.violations.isEmpty { return }
        }
    }
}
