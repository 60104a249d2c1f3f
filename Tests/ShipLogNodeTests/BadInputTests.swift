import Foundation
import NIOCore
import NIOPosix
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Connections that fail authentication or send bytes that are not frames are closed, change
/// nothing, and the node keeps serving.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct BadInputTests {
    func expectStillServing(_ cluster: LocalCluster) async throws {
        let status = try await NodeStatusClient.fetch(from: cluster.primaryAddress, clusterKey: testKey)
        #expect(status.role == "primary")
        let offsets = try await cluster.primary.append([record(99)], mode: .sync(quorum: 1))
        try await cluster.waitForFollowers()
        #expect(try cluster.followers[0].log.record(at: offsets.lowerBound).bytes == record(99))
    }

    @Test func garbageBytesAreDisconnected() async throws {
        let cluster = try await LocalCluster(followers: 1)
        do {
            try await cluster.primary.append([record(0)], mode: .sync(quorum: 1))
            let before = try allRecords(cluster.primary.log)
            var generator = SystemRandomNumberGenerator()
            let garbage = (0..<512).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // A small length with an unknown type byte, then random bytes.
            #expect(try await nodeCloses(cluster.primaryAddress, after: [9, 0, 0, 0, 0xEE] + garbage))
            #expect(try allRecords(cluster.primary.log) == before)
            try await expectStillServing(cluster)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    @Test func aFrameClaimingFourGigabytesIsDisconnectedBeforeItsBody() async throws {
        let cluster = try await LocalCluster(followers: 1)
        do {
            // Length 0xFFFFFFFF, type hello, and no body: the header alone must close it.
            #expect(try await nodeCloses(cluster.primaryAddress, after: [0xFF, 0xFF, 0xFF, 0xFF, 1]))
            try await expectStillServing(cluster)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    @Test func aWrongKeyIsClosedAndChangesNothing() async throws {
        let cluster = try await LocalCluster(followers: 1)
        do {
            try await cluster.primary.append([record(0)], mode: .sync(quorum: 1))
            let wrongKey = Array("not the cluster key".utf8)
            await #expect(throws: NodeStatusClient.Failure.self) {
                _ = try await NodeStatusClient.fetch(from: cluster.primaryAddress, clusterKey: wrongKey, timeout: .seconds(5))
            }
            // A follower with the wrong key receives nothing, and the primary does not count it.
            let impostor = cluster.makeFollower(NodeID(3), key: wrongKey)
            try await impostor.start()
            for i in 1..<20 { try await cluster.primary.append([record(i)], mode: .async) }
            try await Task.sleep(for: .milliseconds(300))  // time for reconnect attempts to fail
            #expect(try impostor.log.nextOffset == 0)
            let status = try await cluster.primary.status()
            #expect(!status.followers.contains { $0.node == 3 && $0.connected })
            try await impostor.stop()
            try await expectStillServing(cluster)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }
}
