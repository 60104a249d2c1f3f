@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Catch-up through the primary's read-ahead: with ships far smaller than the log and an
/// in-flight cap of a few ships, a follower stopped and restarted at several points (so its
/// stream starts at several offsets, inside and across segments) ends with exactly the
/// primary's records.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct CatchUpTests {
    @Test func aFollowerCatchingUpFromManyOffsetsGetsExactlyThePrimarysRecords() async throws {
        var replication = ReplicationConfiguration()
        // Ships of a few batches and a cap of about three of them: reads ahead are trimmed,
        // the cap stops shipping, and most ships come from disk.
        replication.maxShipBytes = 6000
        replication.maxInFlightBytesPerFollower = 20_000
        let cluster = try await LocalCluster(followers: 1, replication: replication)
        do {
            var written = 0
            for round in 0..<4 {
                let follower = cluster.followers[0]
                try await follower.stop()
                // Batches of 1 to 7 records of 100 to 2,900 bytes while the follower is down.
                for i in 0..<(150 + round * 40) {
                    let records = (0..<(i % 7 + 1)).map { record(written + $0, size: 100 + (written + $0) * 53 % 2800) }
                    written += records.count
                    try await cluster.primary.append(records, mode: .async)
                }
                let restarted = cluster.makeFollower(follower.configuration.id)
                try await restarted.start()
                cluster.followers[0] = restarted
                try await cluster.waitForFollowers()
                #expect(try allRecords(restarted.log) == allRecords(cluster.primary.log), "round \(round)")
            }
            #expect(try allRecords(cluster.followers[0].log).count == written)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }
}
