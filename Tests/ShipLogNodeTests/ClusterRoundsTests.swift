import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization
import Testing

/// Repeated failovers through the NIO shell, a pair with a witness, and the election state file.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClusterRoundsTests {
    /// Three rounds of: crash the primary while a writer appends in sync(quorum: 1), a new
    /// primary acknowledges within a second, restart the crashed node, all logs become equal and
    /// hold every acknowledged append at the offset it was acknowledged at.
    @Test func threeRoundsOfPrimaryCrashAndRejoinLoseNoAcknowledgedAppend() async throws {
        let cluster = try await AutoCluster()
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let writer = ClusterWriter(cluster: cluster)
        var acknowledged: [ClusterWriter.Acknowledged] = []
        var next = 0
        var times: [Duration] = []
        for round in 0..<3 {
            let primary = try await cluster.waitForPrimary()
            for _ in 0..<20 {
                let ack = await writer.append(record(next), mode: .sync(quorum: 1), startingAt: primary, deadline: .now + .seconds(5))
                #expect(ack != nil, "round \(round): append \(next) not acknowledged")
                if let ack { acknowledged.append(ack) }
                next += 1
            }
            let crashedAt = ContinuousClock.now
            try await cluster.crash(primary)
            let survivor = cluster.ids.first { $0 != primary }!
            let ack = await writer.append(record(next), mode: .sync(quorum: 1), startingAt: survivor, deadline: .now + .seconds(5))
            next += 1
            let after = try #require(ack, "round \(round): no append acknowledged after the crash")
            #expect(after.node != primary)
            acknowledged.append(after)
            times.append(after.at - crashedAt)
            try await cluster.start(primary)
            let current = try await cluster.waitForPrimary()
            try await cluster.waitForEqualLogs(to: current)
            let held = Dictionary(try allRecords(cluster.node(current).log).map { ($0.offset, $0.bytes) }, uniquingKeysWith: { a, _ in a })
            for ack in acknowledged {
                #expect(held[ack.offsets.lowerBound] == ack.record, "round \(round): acknowledged append at \(ack.offsets) is missing")
            }
        }
        print("failover rounds: crash to first acknowledged append \(times.map { "\($0)" }.joined(separator: ", "))")
        // About 0.3 s each when the machine is quiet; a liveness bound, not a speed check
        // (shiplog-bench's `failover` measures MTTR), generous for a loaded CI machine.
        #expect(times.allSatisfy { $0 < .seconds(15) })
        await cluster.stopAll()
    }

    /// A primary, a standby and a witness: the standby takes over when the primary crashes (the
    /// witness's vote is the majority), accepts async appends alone, and the old primary rejoins.
    @Test func pairWithAWitnessFailsOverAndRejoins() async throws {
        let cluster = try await AutoCluster(voters: 3, witnesses: [NodeID(3)])
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let primary = try await cluster.waitForPrimary()
        #expect(primary != NodeID(3))
        let standby = primary == NodeID(1) ? NodeID(2) : NodeID(1)
        let writer = ClusterWriter(cluster: cluster)
        for i in 0..<10 {
            #expect(await writer.append(record(i), mode: .sync(quorum: 1), startingAt: primary, deadline: .now + .seconds(5))?.node == primary)
        }
        let witnessStatus = try await cluster.node(NodeID(3)).status()
        #expect(witnessStatus.role == "witness" && witnessStatus.primary == primary.rawValue)
        try await cluster.crash(primary)
        #expect(try await cluster.waitForPrimary(timeout: .seconds(5)) == standby)
        // Alone, the standby can only acknowledge what needs no follower.
        let ack = await writer.append(record(10), mode: .async, startingAt: standby, deadline: .now + .seconds(5))
        #expect(ack?.node == standby)
        try await cluster.start(primary)
        #expect(try await cluster.waitForPrimary() == standby)
        #expect(await writer.append(record(11), mode: .sync(quorum: 1), startingAt: standby, deadline: .now + .seconds(5))?.node == standby)
        try await cluster.waitForEqualLogs(to: standby)
        // Every record once, in order, but a retried append can repeat one (an append refused
        // for want of in-sync followers stays in the log, as `NodeError.replicationFailed` says).
        let stored = try allRecords(cluster.node(primary).log).map(\.bytes)
        var distinct: [[UInt8]] = []
        for bytes in stored where distinct.last != bytes { distinct.append(bytes) }
        #expect(distinct == (0..<12).map { record($0) }, "\(stored.map { String(decoding: $0.prefix(10), as: UTF8.self) })")
        await cluster.stopAll()
    }

    /// `shiplog switchover`'s request (format.md §11.1, type 35): a follower refuses naming the
    /// primary; the primary hands over and answers with its status, now following the target.
    @Test func switchoverRequestOverTheWire() async throws {
        let cluster = try await AutoCluster()
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let old = try await cluster.waitForPrimary()
        let target = cluster.ids.first { $0 != old }!
        let follower = cluster.ids.first { $0 != old && $0 != target }!
        do {
            _ = try await NodeSwitchoverClient.request(target, from: cluster.cluster.voters[follower]!, clusterKey: testKey)
            Issue.record("a follower handed over")
        } catch NodeSwitchoverClient.Failure.refused(_, let reason, let message) {
            #expect(reason == .notPrimary && message.contains("the primary is \(old)"), "\(message)")
        }
        let status = try await NodeSwitchoverClient.request(target, from: cluster.cluster.voters[old]!, clusterKey: testKey)
        #expect(status.node == old.rawValue && status.role == "follower" && status.primary == target.rawValue)
        #expect(try await cluster.waitForPrimary() == target)
        await cluster.stopAll()
    }

    /// The vote survives a restart in the election state file, and a damaged file stops the node
    /// from starting (it must not forget a vote).
    @Test func electionStateFileKeepsTheEpochAndADamagedOneRefusesToStart() async throws {
        let cluster = try await AutoCluster()
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let primary = try await cluster.waitForPrimary()
        let epoch = try await cluster.node(primary).status().epoch
        #expect(epoch >= 1)
        await cluster.stopAll()
        let store = ElectionStateStore(directory: cluster.directory.sub("\(primary.rawValue)"), fileSystem: PosixFileSystem())
        let saved = try store.load()
        #expect(saved.epoch == epoch && saved.votedFor == primary)

        var bytes = try #require(FileManager.default.contents(atPath: store.path))
        bytes[13] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: store.path))
        await #expect(throws: ClusterError.self) { try await cluster.start(primary) }
        // Restarted intact, the node comes back in at least that epoch.
        try store.save(saved)
        try await cluster.startAll()
        _ = try await cluster.waitForPrimary()
        #expect(try await cluster.node(primary).status().epoch >= epoch)
        await cluster.stopAll()
    }
}
