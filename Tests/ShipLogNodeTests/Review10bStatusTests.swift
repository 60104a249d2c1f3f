import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// What `status` says of a node that stopped taking part because its election state file could
/// not be written: the epoch it shows must be one the node will come back in, not the one it
/// failed to persist.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10bStatusTests {
    @Test func aNodeThatFailedToPersistAnEpochDoesNotShowIt() async throws {
        let nodes = try await Review10Nodes()
        defer { Task { await nodes.stopAll() } }
        let old = try await nodes.startWithStreamingPrimary()
        let target = nodes.cluster.ids.first { $0 != old }!
        nodes.fileSystems[target]!.failSyncs.withLock { $0 = true }
        // The primary crashes: the target's next epoch (its own campaign's, or the winner's)
        // cannot be written, and it stops taking part.
        try await nodes.crash(old)
        var status = try await nodes.nodes[target]!.status()
        try await waitUntil("the target to fail", timeout: .seconds(10)) {
            status = try await nodes.nodes[target]!.status()
            return status.role == "failed"
        }
        let failure = status.election?.failure ?? ""
        try #require(failure.contains(ElectionStateFile.fileName), "it failed for another reason: \(failure)")
        let directory = nodes.cluster.directory.sub("\(target.rawValue)")
        let onDisk = try ElectionStateStore(directory: directory, fileSystem: PosixFileSystem()).load()
        #expect(status.epoch == onDisk.epoch, "status shows epoch \(status.epoch); the ELECTION file holds \(onDisk.epoch)")
        await nodes.stopAll()
    }
}
