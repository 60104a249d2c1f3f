import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Review 13: the batches a paused follower still drains from a crashed primary's connection
/// keep its own detector quiet (`Election.primaryFrame`) but must not make it refuse the
/// failover's pre-votes: the healthy follower is elected within about an election timeout.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct Review13SlowFollowerFailoverTests {
    @Test(.enabled(if: Review13Nodes.slowDiskTestsEnabled, Review13Nodes.slowDiskTestsReason))
    func aSlowFollowerDrainingACrashedPrimarysBatchesDoesNotHoldUpTheFailover() async throws {
        var replication = ReplicationConfiguration()
        replication.maxUnwrittenBytes = 1 << 20
        replication.maxShipBytes = 256 << 10
        let nodes = try await Review13Nodes(replication: replication)
        do {
            let (primary, node) = try await nodes.startWithPrimary()
            let others = nodes.cluster.ids.filter { $0 != primary }
            let (slow, healthy) = (others[0], others[1])
            nodes.fileSystems[slow]!.bytesPerSecond.withLock { $0 = 1 << 20 }
            // 3 s of async appends from 8 writers: the slow follower falls seconds behind.
            let records = (0..<64).map { FollowerReadPauseTests.incompressible($0) }
            let writeUntil = ContinuousClock.now + .seconds(3)
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        for _ in 0..<10_000 where ContinuousClock.now < writeUntil {
                            guard (try? await node.append(records, mode: .async)) != nil else { return }
                        }
                    }
                }
            }
            let behind = try node.log.nextOffset - nodes.nodes[slow]!.log.nextOffset
            try await nodes.crash(primary)
            let crashed = ContinuousClock.now
            var next: NodeID?
            try await waitUntil("a new primary", timeout: .seconds(20)) {
                next = await nodes.primary()
                return next != nil
            }
            let took = ContinuousClock.now - crashed
            print("Review13: the slow follower was \(behind) records behind; \(next!) primary \(took) after the crash")
            #expect(next == healthy)
            #expect(took < .seconds(3), "the failover took \(took)")
        } catch {
            await nodes.stopAll()
            throw error
        }
        await nodes.stopAll()
    }
}
