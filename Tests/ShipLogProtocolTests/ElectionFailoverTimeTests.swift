import Testing
import ShipLogProtocol

/// The issue's target for the election part of MTTR: from the primary's death to a new primary
/// within the detection timeout plus 200 ms, at every seed (no split-vote tail), at the bench's
/// settings (50 ms / 300 ms) and the defaults (100 ms / 1 s), with three and five voters.
@Suite struct ElectionFailoverTimeTests {
    @Test(arguments: [
        (heartbeat: 50, timeout: 300, voters: [UInt64(1), 2, 3]),
        (heartbeat: 100, timeout: 1000, voters: [1, 2, 3]),
        (heartbeat: 50, timeout: 300, voters: [1, 2, 3, 4, 5]),
    ])
    func failoverWithinDetectionTimeoutPlus200Milliseconds(heartbeat: Int, timeout: Int, voters: [UInt64]) {
        var worst = Duration.zero
        for seed in UInt64(1)...40 {
            var cluster = ElectionCluster(voters: voters, seed: seed) {
                $0.heartbeatInterval = .milliseconds(heartbeat)
                $0.electionTimeout = .milliseconds(timeout)
                $0.detector = .fixedTimeout(.milliseconds(timeout))
                $0.stagger = max(.milliseconds(heartbeat) / 2, .milliseconds(20))
                $0.preVoteSilence = .milliseconds(heartbeat * 2)
            }
            cluster.run(until: { $0.currentPrimaries.count == 1 }, step: .milliseconds(1))
            // Kill at a seed-dependent phase of the heartbeat cycle.
            cluster.run(for: .milliseconds(500 + Int64(seed * 7) % Int64(heartbeat)), step: .milliseconds(1))
            let old = cluster.currentPrimaries[0]
            cluster.crash(old)
            guard let took = cluster.run(until: { $0.currentPrimaries.count == 1 }, limit: .seconds(5), step: .milliseconds(1)) else {
                Issue.record("seed \(seed): no new primary")
                continue
            }
            worst = max(worst, took)
            let campaigners = cluster.ids.filter { $0 != old && cluster.campaigned($0) }
            #expect(campaigners.count <= 1 || took <= .milliseconds(timeout + 200), "seed \(seed)")
            #expect(cluster.violations.isEmpty)
        }
        #expect(worst <= .milliseconds(timeout + 200), "worst failover \(worst)")
        #expect(worst <= .milliseconds(timeout + heartbeat + 25), "in practice: at most the last heartbeat's age plus a jitter")
    }
}
