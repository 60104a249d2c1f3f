@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A follower stops reading from its primary while `FollowerReadPause.maxBytes` of received
/// batches wait for its log, and reads again when a write takes them; a catch-up many times
/// that size (so reading stops and starts again along the way) still ends with exactly the
/// primary's records.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct FollowerReadPauseTests {
    @Test func readingStopsAtTheThresholdAndStartsWhenAWriteTakesWhatWaits() {
        var pause = FollowerReadPause(maxBytes: 1000)
        // Each step: the bytes that arrive (nil: a write takes what waits), and whether the
        // step switches reading (off for an arrival, on for a write).
        let steps: [(bytes: Int?, switches: Bool, paused: Bool, waiting: Int)] = [
            (400, false, false, 400),
            (599, false, false, 999),    // below the threshold
            (1, true, true, 1000),       // at it: reading stops
            (5000, false, true, 6000),   // already stopped: nothing to switch
            (nil, true, false, 0),       // a write took them: reading starts again
            (nil, false, false, 0),      // reading already on
            (2000, true, true, 2000),
        ]
        for (i, step) in steps.enumerated() {
            let switched = if let bytes = step.bytes { pause.waiting(bytes) } else { pause.taken() }
            #expect(switched == step.switches, "step \(i)")
            #expect(pause.paused == step.paused, "step \(i)")
            #expect(pause.waitingBytes == step.waiting, "step \(i)")
        }
        #expect(pause.pauses == 2)
        // A new connection reads from its start; what still waits counts towards its next stop.
        pause.connectionChanged()
        #expect(!pause.paused && pause.waitingBytes == 2000)
        let stopsAgain = pause.waiting(1)
        #expect(stopsAgain && pause.pauses == 3)
    }

    @Test func aCatchUpManyTimesTheThresholdEndsWithThePrimarysRecords() async throws {
        // A 2 MiB threshold (32 MiB by default) keeps the log small.
        var replication = ReplicationConfiguration()
        replication.maxUnwrittenBytes = 2 << 20
        let cluster = try await LocalCluster(followers: 1, replication: replication)
        do {
            let follower = cluster.followers[0]
            try await follower.stop()
            // About 8 times the threshold, in batches of 64 records of 1 KiB that LZ4 cannot
            // shrink, while the follower is down.
            let target = replication.maxUnwrittenBytes * 8
            var written = 0
            for _ in 0..<1000 where try cluster.primary.log.totalBytes < Int64(target) {
                let records = (0..<64).map { Self.incompressible(written + $0) }
                written += records.count
                try await cluster.primary.append(records, mode: .async)
            }
            #expect(try cluster.primary.log.totalBytes >= Int64(target))
            let restarted = cluster.makeFollower(follower.configuration.id)
            try await restarted.start()
            cluster.followers[0] = restarted
            try await cluster.waitForFollowers(timeout: .seconds(60))
            #expect(try allRecords(restarted.log) == allRecords(cluster.primary.log))
            #expect(try allRecords(restarted.log).count == written)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    /// 1 KiB of xorshift output seeded by `i`: distinct records LZ4 cannot shrink.
    static func incompressible(_ i: Int) -> [UInt8] {
        var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<1024).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }
}
