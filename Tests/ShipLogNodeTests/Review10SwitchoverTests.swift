import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Switchovers that must be refused at once and leave the primary accepting appends: to the
/// primary itself, to a node that is not in the cluster, to a witness, and asked of a follower.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10SwitchoverTests {
    @Test func impossibleSwitchoversAreRefusedAtOnceAndAppendsGoOn() async throws {
        // A 2 s election timeout: this test wants one stable primary, also on a loaded machine.
        let cluster = try await AutoCluster(voters: 4, witnesses: [NodeID(4)], heartbeat: .milliseconds(100), timeout: .seconds(2))
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let primary = try await cluster.waitForPrimary()
        let follower = cluster.ids.first { $0 != primary && $0 != NodeID(4) }!
        let node = cluster.node(primary)
        for target in [primary, NodeID(99), NodeID(4)] {
            let started = ContinuousClock.now
            do {
                try await node.transferLeadership(to: target, timeout: .seconds(20))
                Issue.record("a switchover to \(target) succeeded")
            } catch ClusterError.switchoverRefused(let refused, _) {
                #expect(refused == target)
            } catch {
                Issue.record("a switchover to \(target) failed with \(error) instead of being refused")
            }
            // At once: not after the caller's 20 s timeout (the wide margin is for a loaded
            // machine: 3.9 s was seen with the suite and two simulations sharing 2 cores).
            #expect(ContinuousClock.now - started < .seconds(10), "refusing \(target) took \(ContinuousClock.now - started)")
            _ = try await node.append([record(1)], mode: .sync(quorum: 1))
        }
        do {
            try await cluster.node(follower).transferLeadership(to: follower, timeout: .seconds(5))
            Issue.record("a follower handed over")
        } catch ClusterError.switchoverRefused(_, let reason) {
            #expect(reason.contains("the primary is \(primary)"), "\(reason)")
        }
        #expect(try await cluster.waitForPrimary() == primary)
        await cluster.stopAll()
    }

    /// A switchover while a writer appends in sync mode: every acknowledged append is in the new
    /// primary's log, and appends refused during the handover name the target.
    @Test func switchoverRacingAppendsLosesNothingAcknowledged() async throws {
        // A 2 s election timeout, so that only the switchover changes the primary on a loaded machine.
        let cluster = try await AutoCluster(heartbeat: .milliseconds(100), timeout: .seconds(2))
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let old = try await cluster.waitForPrimary()
        let target = cluster.ids.first { $0 != old }!
        let writer = ClusterWriter(cluster: cluster)
        let appends = Task {
            var acknowledged: [ClusterWriter.Acknowledged] = []
            for i in 0..<200 {
                if let ack = await writer.append(record(i), mode: .sync(quorum: 1), startingAt: old, deadline: .now + .seconds(5)) {
                    acknowledged.append(ack)
                }
            }
            return acknowledged
        }
        try await Task.sleep(for: .milliseconds(20))
        try await cluster.node(old).transferLeadership(to: target)
        let acknowledged = await appends.value
        #expect(try await cluster.waitForPrimary() == target)
        try await cluster.waitForEqualLogs(to: target)
        let held = Dictionary(try allRecords(cluster.node(target).log).map { ($0.offset, $0.bytes) }, uniquingKeysWith: { a, _ in a })
        #expect(acknowledged.count == 200)
        for ack in acknowledged {
            #expect(held[ack.offsets.lowerBound] == ack.record, "acknowledged append at \(ack.offsets) by \(ack.node) is missing")
        }
        await cluster.stopAll()
    }

    /// A started cluster whose primary (`node`) holds two records and one of whose followers
    /// (`target`) has been cut off from everyone before the second: it is behind and cannot catch up.
    func clusterWithACutOffFollower() async throws -> (cluster: AutoCluster, node: Node, primary: NodeID, target: NodeID) {
        let cluster = try await AutoCluster()
        do {
            try await cluster.startAll()
            let primary = try await cluster.waitForPrimary()
            let target = cluster.ids.first { $0 != primary }!
            let node = cluster.node(primary)
            _ = try await node.append([record(0)], mode: .sync(quorum: 1))
            let cut = try #require(try cluster.node(target).running().cluster)
            try await cut.loop.submit { cut.mesh.stop(abruptly: true) }.get()
            _ = try await node.append([record(1)], mode: .sync(quorum: 1))
            return (cluster, node, primary, target)
        } catch {
            await cluster.stopAll()
            throw error
        }
    }

    /// A switchover to a node that cannot catch up (cut off from everyone): appends meanwhile
    /// fail at once naming the target, the switchover fails after about an election timeout,
    /// and the primary takes appends again.
    @Test func switchoverToACutOffNodeFailsAndAppendsResume() async throws {
        let (cluster, node, _, target) = try await clusterWithACutOffFollower()
        defer { Task { await cluster.stopAll() } }
        let started = ContinuousClock.now
        let handover = Task { try await node.transferLeadership(to: target, timeout: .seconds(5)) }
        var refusedNamingTarget = false
        try await waitUntil("an append refused during the handover", timeout: .seconds(2)) {
            do {
                _ = try await node.append([record(2)], mode: .sync(quorum: 1))
                return false
            } catch NodeError.unavailable(_, .switchoverInProgress(let to)) {
                refusedNamingTarget = to == target
                return true
            } catch {
                return false
            }
        }
        #expect(refusedNamingTarget)
        await #expect(throws: ClusterError.self) { try await handover.value }
        // About an election timeout (300 ms); well under the caller's own 5 s timeout.
        #expect(ContinuousClock.now - started < .seconds(4), "the failed switchover took \(ContinuousClock.now - started)")
        try await waitUntil("appends on the primary again", timeout: .seconds(2)) {
            (try? await node.append([record(3)], mode: .sync(quorum: 1))) != nil
        }
        #expect(try await node.status().role == "primary")
        await cluster.stopAll()
    }

    /// An impossible switchover asked for while one is under way is refused on its own: it
    /// must not end the one under way (which then ends as the machine decides).
    @Test func anImpossibleRequestDoesNotCancelTheSwitchoverUnderWay() async throws {
        let (cluster, node, primary, target) = try await clusterWithACutOffFollower()
        defer { Task { await cluster.stopAll() } }
        let handover = Task { () -> String in
            do {
                try await node.transferLeadership(to: target, timeout: .seconds(5))
                return "succeeded"
            } catch {
                return "\(error)"
            }
        }
        try await waitUntil("the switchover to be under way", timeout: .seconds(2)) {
            try await node.status().election?.transferTarget == target.rawValue
        }
        await #expect(throws: ClusterError.self) { try await node.transferLeadership(to: primary, timeout: .seconds(5)) }
        #expect(try await node.status().election?.transferTarget == target.rawValue, "the machine still hands over")
        let outcome = await handover.value
        #expect(!outcome.contains("superseded"), "the switchover under way was reported as \(outcome)")
        #expect(outcome.contains("did not catch up"), "\(outcome)")
        await cluster.stopAll()
    }
}
