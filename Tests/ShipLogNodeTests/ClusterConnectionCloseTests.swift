import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import Testing

/// Through the NIO shell: when the primary crashes its connections close, and the followers
/// elect a new primary long before the failure detector's timeout would fire.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClusterConnectionCloseTests {
    @Test func aCrashedPrimarysClosedConnectionsElectANewOneWellBeforeTheTimeout() async throws {
        // A 5 s detector timeout: only the closed connections can explain a failover within 3 s.
        let cluster = try await AutoCluster(heartbeat: .milliseconds(100), timeout: .seconds(5))
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let old = try await cluster.waitForPrimary(timeout: .seconds(20))
        let oldEpoch = try await cluster.node(old).status().epoch
        try await cluster.crash(old)
        let crashedAt = ContinuousClock.now
        let new = try await cluster.waitForPrimary(timeout: .seconds(3), excluding: old)
        let took = ContinuousClock.now - crashedAt
        #expect(took < .seconds(3), "took \(took); the 5 s timeout cannot have fired")
        #expect(new != old)
        // Usually one election; on a loaded machine the second-ranked follower may campaign too.
        #expect(try await cluster.node(new).status().epoch > oldEpoch)
        await cluster.stopAll()
    }
}
