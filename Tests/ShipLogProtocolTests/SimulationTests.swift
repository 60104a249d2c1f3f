import Foundation
import ShipLogSimulation
import Testing

/// The deterministic cluster simulation (issue 10) over a bounded set of seeds: every scenario
/// (3 nodes, 5 nodes, primary + standby + witness, two nodes; ack level durable with power
/// losses, written with process kills). `SIM_SEEDS=N` runs more; `shiplog-simulate` runs many
/// in release.
@Suite struct SimulationTests {
    static let seeds = ProcessInfo.processInfo.environment["SIM_SEEDS"].flatMap { UInt64($0) } ?? 36

    @Test func guaranteesHoldOverTheSuiteSeeds() {
        var total = SimulationStatistics()
        for seed in UInt64(1)...Self.seeds {
            let simulator = Simulator(seed: seed)
            let violation = simulator.run()
            #expect(violation == nil, "\(violation.map { "\($0)" } ?? "")")
            if violation != nil { return }
            total.add(simulator.statistics)
        }
        // The checks were not vacuous: elections happened, both kinds of append were
        // acknowledged, nodes crashed and the network partitioned.
        #expect(total.promotions > Int(Self.seeds))
        #expect(total.syncAcknowledged > 100 && total.asyncAcknowledged > 20)
        #expect(total.crashes > 0 && total.partitions > 0)
    }

    /// Seeds that once found a bug (each fixed in its own commit): 2 and 9 (decideFollow cut
    /// matching committed records), 3883 (a promotion reported another primary's range).
    @Test(arguments: [UInt64(2), 9, 3883])
    func seedsThatOnceFailedPass(seed: UInt64) {
        let violation = Simulator(seed: seed).run()
        #expect(violation == nil, "\(violation.map { "\($0)" } ?? "")")
    }

    /// A seed replays exactly: the same steps, the same trace, the same statistics.
    @Test func aSeedReplaysExactly() {
        var options = SimulationOptions()
        options.steps = 800
        options.quiescenceEvery = 400
        let first = Simulator(seed: 7, options: options)
        let second = Simulator(seed: 7, options: options)
        first.run()
        second.run()
        #expect(first.traceLines == second.traceLines)
        #expect(first.statistics.promotions == second.statistics.promotions)
        #expect(first.statistics.syncAcknowledged == second.statistics.syncAcknowledged)
        #expect(!first.traceLines.isEmpty)
    }
}
