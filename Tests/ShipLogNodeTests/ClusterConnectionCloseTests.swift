import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import Synchronization
import Testing

/// Through the NIO shell: when the primary crashes its connections close, and the followers
/// elect a new primary long before the failure detector's timeout would fire.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClusterConnectionCloseTests {
    @Test func aCrashedPrimarysClosedConnectionsElectANewOneWellBeforeTheTimeout() async throws {
        // A 6 s detector timeout: only the closed connections can explain a promotion within 4 s
        // (about 0.2 s on a quiet machine; the margin is for a loaded one).
        let cluster = try await AutoCluster(heartbeat: .milliseconds(100), timeout: .seconds(6))
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let old = try await cluster.waitForPrimary(timeout: .seconds(30))
        let oldEpoch = try await cluster.node(old).status().epoch
        let promotedAt = FirstInstant()
        var watchers: [Task<Void, Never>] = []
        for id in cluster.ids where id != old {
            let node = cluster.node(id)
            watchers.append(Task {
                for await change in node.roleChanges where change.role == .primary && change.epoch > oldEpoch {
                    promotedAt.note()
                    return
                }
            })
        }
        defer { for watcher in watchers { watcher.cancel() } }
        try await cluster.crash(old)
        let crashedAt = ContinuousClock.now
        let new = try await cluster.waitForPrimary(timeout: .seconds(5), excluding: old)
        let promoted = try #require(promotedAt.instant, "no survivor's role stream showed the promotion")
        #expect(promoted - crashedAt < .seconds(4), "promoted \(promoted - crashedAt) after the crash; the 6 s timeout cannot have fired")
        #expect(new != old)
        // Usually one election; on a loaded machine the second-ranked follower may campaign too.
        #expect(try await cluster.node(new).status().epoch > oldEpoch)
        await cluster.stopAll()
    }
}

/// The first time `note()` was called.
final class FirstInstant: Sendable {
    private let first = Mutex<ContinuousClock.Instant?>(nil)
    func note() { first.withLock { if $0 == nil { $0 = .now } } }
    var instant: ContinuousClock.Instant? { first.withLock { $0 } }
}
