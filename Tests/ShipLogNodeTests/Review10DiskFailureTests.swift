import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A failed fdatasync poisons a log (it refuses every later write). A primary whose log is
/// poisoned can never acknowledge again, so it must not stay primary: the cluster has to fail
/// over to a node that can write.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10DiskFailureTests {
    @Test func aPrimaryWhoseFsyncFailsStopsAndAnotherNodeTakesOver() async throws {
        let nodes = try await Review10Nodes()
        defer { Task { await nodes.stopAll() } }
        let old = try await nodes.startWithStreamingPrimary()
        let ids = nodes.cluster.ids
        nodes.fileSystems[old]!.failSyncs.withLock { $0 = true }
        await #expect(throws: (any Error).self) { try await nodes.nodes[old]!.append([record(1)], mode: .sync(quorum: 1)) }
        // Another node must become primary and acknowledge a sync append within a few seconds.
        let others = ids.filter { $0 != old }
        var acknowledged = false
        try await waitUntil("another node to acknowledge a sync append", timeout: .seconds(8)) {
            guard let next = await nodes.primary(among: others) else { return false }
            acknowledged = (try? await nodes.nodes[next]!.append([record(2)], mode: .sync(quorum: 1))) != nil
            return acknowledged
        }
        #expect(acknowledged)
        let status = try await nodes.nodes[old]!.status()
        #expect(status.role == "failed" && status.primary == nil, "the node with the failed log says it is \(status.role)")
        #expect(status.election?.failure?.contains("refuses writes") == true, "\(status.election?.failure ?? "no failure")")
        await #expect(throws: ClusterError.self) { try await nodes.nodes[old]!.append([record(3)], mode: .async) }
        await nodes.stopAll()
    }

    /// The election state file cannot be written (its fsync fails) when a switchover asks the
    /// target to campaign: the target stops taking part before its vote or epoch leaves it, the
    /// switchover fails, and the old primary goes on acknowledging.
    @Test func aNodeThatCannotPersistItsEpochStopsAndTheSwitchoverFails() async throws {
        let nodes = try await Review10Nodes()
        defer { Task { await nodes.stopAll() } }
        let old = try await nodes.startWithStreamingPrimary()
        let target = nodes.cluster.ids.first { $0 != old }!
        nodes.fileSystems[target]!.failSyncs.withLock { $0 = true }
        // A switchover aborted because the target lagged (a loaded machine) persists nothing:
        // ask again, a bounded number of times, until the target was told to campaign.
        var status = try await nodes.nodes[target]!.status()
        for _ in 0..<5 where status.role != "failed" {
            await #expect(throws: ClusterError.self) { try await nodes.nodes[old]!.transferLeadership(to: target, timeout: .seconds(3)) }
            status = try await nodes.nodes[target]!.status()
        }
        #expect(status.role == "failed", "\(status.role)")
        try await waitUntil("the old primary to acknowledge again", timeout: .seconds(5)) {
            (try? await nodes.nodes[old]!.append([record(1)], mode: .sync(quorum: 1))) != nil
        }
        #expect(await nodes.primary(among: nodes.cluster.ids) == old)
        await nodes.stopAll()
    }
}
