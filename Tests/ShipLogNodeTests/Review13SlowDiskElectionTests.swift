import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Review 13: the automatic-role follower's read pause must not make followers whose disks are
/// slower than the primary's load lose sight of a healthy primary. Reading paused, the
/// primary's heartbeats wait behind up to `maxInFlightBytesPerFollower` (8 MiB) of its batches
/// in the connection, drained at the follower's disk rate: at 256 KiB/s, 1 MiB of them is 4 s, longer
/// than the election timeout (1 s) and far longer than `preVoteSilence` (200 ms). With two such
/// followers each suspects the primary and grants the other's pre-vote (neither heard the
/// primary within the silence window), and one of them deposes it.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct Review13SlowDiskElectionTests {
    @Test(.enabled(if: Review13Nodes.slowDiskTestsEnabled, Review13Nodes.slowDiskTestsReason))
    func twoFollowersOnSlowDisksDoNotDeposeAHealthyPrimary() async throws {
        var replication = ReplicationConfiguration()
        replication.maxUnwrittenBytes = 1 << 20  // as ClusterReadPauseTests: pauses start early
        // Frames of 256 KiB: at 2 MiB/s one is written every 125 ms, well inside the election
        // timeout even when this process's shared thread pool makes the slow writes queue.
        replication.maxShipBytes = 256 << 10
        let nodes = try await Review13Nodes(replication: replication)
        do {
            let (primary, node) = try await nodes.startWithPrimary()
            let epoch = try await node.status().epoch
            // Both followers' disks now write 2 MiB/s; the primary's stays fast.
            for id in nodes.cluster.ids where id != primary { nodes.fileSystems[id]!.bytesPerSecond.withLock { $0 = 2 << 20 } }
            // 64 records LZ4 cannot shrink, made once: a debug build makes them slower than a disk writes.
            let records = (0..<64).map { FollowerReadPauseTests.incompressible($0) }
            // Async appends (the primary does not wait for the followers) from 16 writers for 6 s, at
            // most 48 MiB: many writers, so that its log writes are few and large (the nodes share
            // this process's thread pool with the followers' slow writes).
            let writeUntil = ContinuousClock.now + .seconds(6)
            let outcomes = await withTaskGroup(of: (Int, (any Error)?).self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        var appended = 0
                        for _ in 0..<10_000 where ContinuousClock.now < writeUntil && appended < 3 << 10 {
                            do {
                                _ = try await node.append(records, mode: .async)
                            } catch {
                                return (appended, error)
                            }
                            appended += records.count
                        }
                        return (appended, nil)
                    }
                }
                var all: [(Int, (any Error)?)] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            let written = outcomes.reduce(0) { $0 + $1.0 }
            let refused = outcomes.lazy.compactMap { $0.1 }.first
            // The followers stay behind for a while yet: give a false suspicion time to act.
            for _ in 0..<30 {
                try await Task.sleep(for: .milliseconds(100))
                if try await node.status().role != "primary" { break }
            }
            let status = try await node.status()
            let highest = await nodes.highestEpoch()
            print("Review13: \(written) records of 1 KiB appended; primary \(primary) now \(status.role) in epoch \(status.epoch), highest epoch \(highest)")
            #expect(refused == nil, "an append on the healthy primary was refused: \(String(describing: refused))")
            #expect(status.role == "primary", "the healthy primary was deposed")
            #expect(highest == epoch, "an election ran (epoch \(epoch) -> \(highest)) while the primary was healthy")
        } catch {
            await nodes.stopAll()
            throw error
        }
        await nodes.stopAll()
    }
}
