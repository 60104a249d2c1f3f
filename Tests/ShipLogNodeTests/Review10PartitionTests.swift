import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization
import Testing

/// The primary cut off from everyone (its mesh stops: every connection drops and new ones are
/// refused, as a partition would): it must stop acknowledging (check-quorum), the others elect a
/// new primary that keeps every acknowledged append, and the old primary, restarted, throws away
/// what it wrote alone and ends with the new primary's log.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10PartitionTests {
    @Test func anIsolatedPrimaryStepsDownAndItsLonelyWritesAreDiscardedOnRejoin() async throws {
        let cluster = try await AutoCluster()
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let old = try await cluster.waitForPrimary()
        let writer = ClusterWriter(cluster: cluster)
        var acknowledged: [ClusterWriter.Acknowledged] = []
        for i in 0..<20 {
            let ack = try #require(await writer.append(record(i), mode: .sync(quorum: 1), startingAt: old, deadline: .now + .seconds(5)))
            acknowledged.append(ack)
        }
        let roles = cluster.node(old).roleChanges
        let isolated = try #require(try cluster.node(old).running().cluster)
        try await isolated.loop.submit { isolated.mesh.stop(abruptly: true) }.get()

        // Appends on the isolated primary: written locally, never acknowledged.
        var lonely: [[UInt8]] = []
        for i in 0..<5 {
            let bytes = Array("lonely \(i)".utf8)
            lonely.append(bytes)
            let result = try? await cluster.node(old).append([bytes], mode: .sync(quorum: 1))
            #expect(result == nil, "the isolated primary acknowledged a sync append at \(result.map { "\($0)" } ?? "")")
        }
        // It steps down within about an election timeout (check-quorum), announcing it.
        let seen = Mutex<[NodeRoleChange]>([])
        let watcher = Task { for await change in roles { seen.withLock { $0.append(change) } } }
        defer { watcher.cancel() }
        try await waitUntil("the isolated primary to announce it is no longer primary", timeout: .seconds(3)) {
            seen.withLock { $0.contains { $0.role != .primary } }
        }
        #expect(try await cluster.node(old).status().role != "primary")
        let others = cluster.ids.filter { $0 != old }
        let after = try #require(await writer.append(record(20), mode: .sync(quorum: 1), startingAt: others[0], deadline: .now + .seconds(5)))
        #expect(after.node != old)
        acknowledged.append(after)

        try await cluster.crash(old)
        try await cluster.start(old)
        let current = try await cluster.waitForPrimary()
        try await cluster.waitForEqualLogs(to: current)
        for id in cluster.ids {
            let stored = try allRecords(cluster.node(id).log)
            let held = Dictionary(stored.map { ($0.offset, $0.bytes) }, uniquingKeysWith: { a, _ in a })
            for ack in acknowledged {
                #expect(held[ack.offsets.lowerBound] == ack.record, "\(id) lost acknowledged append at \(ack.offsets)")
            }
            for bytes in lonely { #expect(!stored.contains { $0.bytes == bytes }, "\(id) kept an unacknowledged lonely write") }
        }
        await cluster.stopAll()
    }
}
