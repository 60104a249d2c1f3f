import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Review 13: ClusterReadPauseTests check the pause's bookkeeping (it counted pauses) but not
/// that reading stopped: with `PeerMesh.setReading` a no-op they still pass. Here the bound
/// itself: a follower restarted behind 12 marks of backlog never holds more than the mark, one
/// frame and one read (`PeerMesh.maxReadBytes`) of batches waiting for its log. Its disk is
/// slowed to 4 MiB/s so that the primary's backlog arrives faster than it is written.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct Review13ReadPauseBoundTests {
    @Test func aCatchingUpFollowerHoldsAtMostTheMarkAFrameAndOneRead() async throws {
        var replication = ReplicationConfiguration()
        replication.maxUnwrittenBytes = 1 << 20
        let nodes = try await Review13Nodes(replication: replication)
        do {
            let (primary, node) = try await nodes.startWithPrimary()
            let follower = nodes.cluster.ids.first { $0 != primary }!
            let restarted = try await nodes.restart(follower) {
                // Behind by 12 marks when it comes back.
                let records = (0..<64).map { FollowerReadPauseTests.incompressible($0) }
                for _ in 0..<1000 where try node.log.totalBytes < Int64(12 * replication.maxUnwrittenBytes) {
                    _ = try await node.append(records, mode: .async)
                }
            }
            nodes.fileSystems[follower]!.bytesPerSecond.withLock { $0 = 4 << 20 }
            let expected = try node.log.nextOffset
            try await waitUntil("the follower to catch up", timeout: .seconds(60)) {
                try restarted.log.nextOffset >= expected
            }
            let pause = try await ClusterReadPauseTests.readPause(of: restarted)
            let bound = replication.maxUnwrittenBytes + replication.maxShipBytes + 4096 + PeerMesh.maxReadBytes
            print("Review13: \(pause.pauses) pauses, peak \(pause.peakWaitingBytes) bytes waiting (bound \(bound))")
            #expect(pause.pauses > 0)
            #expect(pause.peakWaitingBytes <= bound, "\(pause.peakWaitingBytes) bytes waited for the log")
        } catch {
            await nodes.stopAll()
            throw error
        }
        await nodes.stopAll()
    }
}
