import Foundation
import NIOCore
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Two switchovers asked of one primary back to back: whichever target ends up primary, the
/// caller who asked for it must be told it succeeded, and the other caller that it failed.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10bSwitchoverRaceTests {
    /// The first target is caught up, so the primary sends it `timeoutNow` at once; the second
    /// is cut off (behind), so the second request only replaces the machine's transfer. The
    /// first target then takes over: its caller must not be told "superseded".
    @Test func theCallerWhoseTargetWinsIsToldItSucceeded() async throws {
        // A 2 s election timeout: only the switchover changes the primary on a loaded machine.
        let cluster = try await AutoCluster(heartbeat: .milliseconds(100), timeout: .seconds(2))
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let primary = try await cluster.waitForPrimary()
        let others = cluster.ids.filter { $0 != primary }
        let (first, second) = (others[0], others[1])
        let node = cluster.node(primary)
        // Both followers in sync first (just after the election one may still be connecting).
        try await waitUntil("an append both followers hold", timeout: .seconds(5)) {
            (try? await node.append([record(0)], mode: .sync(quorum: 2))) != nil
        }
        let cut = try #require(try cluster.node(second).running().cluster)
        try await cut.loop.submit { cut.mesh.stop(abruptly: true) }.get()
        _ = try await node.append([record(1)], mode: .sync(quorum: 1))
        let driver = try #require(try node.running().cluster)
        // Both on the loop, in this order, before either can finish.
        let (a, b) = try await driver.loop.submit {
            (driver.transferLeadership(to: first, timeout: .seconds(6)), driver.transferLeadership(to: second, timeout: .seconds(6)))
        }.get()
        func outcome(_ future: EventLoopFuture<Void>) async -> String {
            do {
                try await future.get()
                return "succeeded"
            } catch {
                return "\(error)"
            }
        }
        let (firstOutcome, secondOutcome) = (await outcome(a), await outcome(b))
        var winner: NodeID?
        try await waitUntil("a primary among the connected nodes", timeout: .seconds(10)) {
            for id in [primary, first] where try await cluster.node(id).status().role == "primary" {
                winner = id
                return true
            }
            return false
        }
        if winner == first {
            #expect(firstOutcome == "succeeded", "\(first) took over, but its caller was told: \(firstOutcome)")
            #expect(secondOutcome != "succeeded")
        } else {
            #expect(firstOutcome != "succeeded" && secondOutcome != "succeeded", "\(firstOutcome) / \(secondOutcome)")
        }
        await cluster.stopAll()
    }
}
