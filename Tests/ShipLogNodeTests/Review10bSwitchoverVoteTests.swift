import Foundation
import Logging
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A switchover while the third voter is down: the target's only other vote is the old
/// primary's, which steps down in granting it. That vote must reach the target, so it wins in
/// the switchover's own campaign (not after a failed round and a retry, with no primary meanwhile).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10bSwitchoverVoteTests {
    @Test func aSwitchoverWithTheThirdVoterDownWinsInItsOwnCampaign() async throws {
        // Slow timings (a 600 ms campaign round, a 3 s election timeout): on a loaded machine two
        // vote fsyncs must fit in the round, or even a delivered vote looks lost.
        let cluster = try await AutoCluster(heartbeat: .milliseconds(300), timeout: .seconds(3))
        let lines = Review10LogLines()
        var nodes: [NodeID: Node] = [:]
        defer { let all = nodes; Task { for (_, node) in all { try? await node.stop() } } }
        for id in cluster.ids {
            let node = Node(configuration: cluster.configuration(id), logger: Logger(label: "review10b") { _ in Review10LogHandler(lines: lines) })
            try await node.start()
            nodes[id] = node
        }
        var found: NodeID?
        try await waitUntil("a primary", timeout: .seconds(20)) {
            for (id, node) in nodes where try await node.status().role == "primary" { found = id }
            return found != nil
        }
        let primary = try #require(found)
        let others = cluster.ids.filter { $0 != primary }
        let (target, down) = (others[0], others[1])
        try await waitUntil("an append both followers hold", timeout: .seconds(5)) {
            (try? await nodes[primary]!.append([record(0)], mode: .sync(quorum: 2))) != nil
        }
        try await nodes[down]!.stopAsCrash()
        nodes[down] = nil
        let epoch = try await nodes[primary]!.status().epoch
        try await nodes[primary]!.transferLeadership(to: target, timeout: .seconds(5))
        let status = try await nodes[target]!.status()
        #expect(status.role == "primary")
        #expect(status.epoch == epoch + 1, "the target won in epoch \(status.epoch), not \(epoch + 1): a round failed")
        let promoted = lines.all.withLock { $0 }.filter { $0.contains("node=\(target.rawValue)") && $0.contains("promoted to primary") }
        #expect(promoted.last?.contains("leadershipTransfer") == true, "\(promoted)")
        for (_, node) in nodes { try await node.stop() }
        nodes = [:]
    }
}
