import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Issue 10: "in async mode, the lost range is reported in the log". A primary cut off from
/// everyone acknowledges async appends until check-quorum steps it down; nobody else ever saw
/// them, so the only place their loss can be reported is the old primary when it rejoins and
/// cuts them away: that line must name a range covering every one of them.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10AsyncLossTests {
    @Test func asyncAppendsOfAnIsolatedPrimaryAreReportedWhenDiscarded() async throws {
        // A 2 s election timeout: the isolated primary must still be primary (check-quorum not
        // yet fired) when it takes the async appends, also on a loaded machine; the others elect
        // a new one as soon as its connections close.
        let nodes = try await Review10Nodes(heartbeat: .milliseconds(100), timeout: .seconds(2))
        defer { Task { await nodes.stopAll() } }
        let old = try await nodes.startWithStreamingPrimary()
        let ids = nodes.cluster.ids
        let isolated = try #require(try nodes.nodes[old]!.running().cluster)
        try await isolated.loop.submit { isolated.mesh.stop(abruptly: true) }.get()
        var lost: [Range<UInt64>] = []
        for i in 0..<3 {
            if let offsets = try? await nodes.nodes[old]!.append([record(100 + i)], mode: .async) { lost.append(offsets) }
        }
        #expect(!lost.isEmpty, "the isolated primary acknowledged no async append")
        let others = ids.filter { $0 != old }
        var next: NodeID?
        try await waitUntil("a new primary acknowledging", timeout: .seconds(5)) {
            guard let candidate = await nodes.primary(among: others) else { return false }
            next = candidate
            for i in 0..<5 { _ = try? await nodes.nodes[candidate]!.append([record(200 + i)], mode: .sync(quorum: 1)) }
            return true
        }
        // The others elect at once (its connections closed unannounced); it steps down only at
        // its check-quorum, an election timeout after it last heard a majority.
        try await waitUntil("the isolated primary to step down", timeout: .seconds(10)) {
            try await nodes.nodes[old]!.status().role != "primary"
        }
        try await nodes.crash(old)
        try await nodes.start(old)
        let reported = try #require(await waitForLine(nodes, containing: "discarded offsets", node: old))
        for range in lost { #expect(covers(reported, range), "the discard line \(reported) does not cover \(range)") }
        let discarded = nodes.metrics.value("shiplog_divergent_records_discarded_total", node: old)
        #expect(discarded >= Int64(lost.count), "counted \(discarded) discarded records, \(lost.count) async appends were lost")
        // The new primary's promotion was counted as an election and a failover.
        let promoted = try #require(next)
        #expect(nodes.metrics.value("shiplog_failovers_total", node: promoted) >= 1)
        #expect(nodes.metrics.value("shiplog_elections_total", node: promoted) >= 1)
        // The isolated primary stepped down (check-quorum), counted.
        #expect(nodes.metrics.value("shiplog_step_downs_total", node: old) >= 1)
        await nodes.stopAll()
    }

    /// Whether the line's "discarded offsets A..<B" covers `range`.
    func covers(_ line: String, _ range: Range<UInt64>) -> Bool {
        guard let start = line.range(of: "discarded offsets ") else { return false }
        let words = line[start.upperBound...].split(separator: " ")
        let bounds = words.first?.components(separatedBy: "..<").compactMap { UInt64($0) } ?? []
        return bounds.count == 2 && bounds[0] <= range.lowerBound && range.upperBound <= bounds[1]
    }

    func waitForLine(_ nodes: Review10Nodes, containing text: String, node: NodeID) async -> String? {
        var found: String?
        try? await waitUntil("a log line with \(text) from node \(node)", timeout: .seconds(5)) {
            found = nodes.lines.all.withLock { $0.first { $0.contains(text) && $0.contains("node=\(node.rawValue) ") } }
            return found != nil
        }
        return found
    }
}
