import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A measurement, not a check (runs only when SHIPLOG_MEASURE_MB is set): the anonymous memory
/// (RssAnon) this process gains while a restarted automatic-role follower of three in-process
/// nodes catches up SHIPLOG_MEASURE_MB MiB, with `maxUnwrittenBytes` SHIPLOG_MEASURE_UNWRITTEN
/// (default 32 MiB; 1099511627776 never pauses, as before `ClusterReadPause`). RssAnon, not VmHWM:
/// the logs' pages and the backlog's generation would hide the follower's share. Compare runs
/// as alternating pairs:
///
///     SHIPLOG_MEASURE_MB=256 SHIPLOG_MEASURE_UNWRITTEN=1099511627776 swift test --skip-build --filter ClusterCatchUpMemory
@Suite(.serialized)
struct ClusterCatchUpMemoryMeasurement {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// A `/proc/self/status` figure in kB (-1 when absent).
    static func status(_ key: String) -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Int(line.split(whereSeparator: \.isWhitespace)[1]) ?? -1
        }
        return -1
    }

    @Test(.enabled(if: environment["SHIPLOG_MEASURE_MB"] != nil, "a measurement, run only when SHIPLOG_MEASURE_MB is set"),
          .timeLimit(.minutes(10)))
    func catchUpMemory() async throws {
        let megabytes = try #require(Int(Self.environment["SHIPLOG_MEASURE_MB"] ?? ""))
        var replication = ReplicationConfiguration()
        replication.maxUnwrittenBytes = Int(Self.environment["SHIPLOG_MEASURE_UNWRITTEN"] ?? "") ?? replication.maxUnwrittenBytes
        let cluster = try await AutoCluster(voters: 3, heartbeat: .milliseconds(100), timeout: .seconds(1), replication: replication)
        do {
            try await Self.measure(cluster, megabytes: megabytes)
        } catch {
            await cluster.stopAll()
            throw error
        }
        await cluster.stopAll()
    }

    static func measure(_ cluster: AutoCluster, megabytes: Int) async throws {
        try await cluster.startAll()
        let primary = try await cluster.waitForPrimary()
        let follower = cluster.ids.first { $0 != primary }!
        try await cluster.crash(follower)
        // Records are 1 KiB slices of 4 MiB of random bytes: a 256-record batch is 256 KiB LZ4
        // cannot shrink.
        var block = [UInt8](repeating: 0, count: 4 << 20)
        var generator = SystemRandomNumberGenerator()
        block.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: generator.next() as UInt64, toByteOffset: i, as: UInt64.self) }
        }
        let node = cluster.node(primary)
        var written = 0
        for _ in 0..<(megabytes * 8) where try node.log.totalBytes < Int64(megabytes << 20) {
            let records = (0..<256).map { j -> [UInt8] in
                let start = ((written + j) * 1024) % block.count
                return Array(block[start..<start + 1024])
            }
            written += records.count
            _ = try await node.append(records, mode: .async)
        }
        let end = try node.log.nextOffset
        // Offsets only: reading every record to compare would dwarf what is measured.
        try await waitUntil("the third node to catch up", timeout: .seconds(300)) {
            try cluster.nodes.values.allSatisfy { try $0.log.nextOffset == end }
        }
        let before = status("RssAnon:")
        let sampler = Task { () -> Int in
            var peak = 0
            for _ in 0..<200_000 where !Task.isCancelled {
                peak = max(peak, status("RssAnon:"))
                try? await Task.sleep(for: .milliseconds(5))
            }
            return peak
        }
        let started = ContinuousClock.now
        let restarted = try await cluster.start(follower)
        try await waitUntil("the follower to catch up", timeout: .seconds(300)) { try restarted.log.nextOffset == end }
        let took = ContinuousClock.now - started
        sampler.cancel()
        let peak = await sampler.value
        let pause = try await ClusterReadPauseTests.readPause(of: restarted)
        let epoch = try await cluster.node(primary).status().epoch
        print("MEASURE maxUnwrittenBytes \(cluster.replication.maxUnwrittenBytes): catch-up of \(megabytes) MiB in \(took), "
            + "RssAnon \(before) kB before, peak \(peak) kB (+\((peak - before) >> 10) MiB), \(pause.pauses) pauses (the longest \(pause.longestPause)), epoch \(epoch)")
        #expect(epoch == 1)
    }
}
