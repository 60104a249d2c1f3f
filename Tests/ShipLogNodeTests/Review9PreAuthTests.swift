import Foundation
import NIOCore
import NIOPosix
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Review of issue 9 (review9): what an unauthenticated peer (no cluster key) can make a node hold.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review9PreAuthTests {
    /// A handshake frame is under 100 bytes, but before authentication the decoder accepts any
    /// length up to `maxFrameBytes` (64 MiB): a peer without the key announces a 48 MiB `hello`
    /// and trickles its body, and the node buffers it. A hundred such connections hold
    /// gigabytes. Expected: a length no handshake frame can have is refused at once.
    @Test func anUnauthenticatedPeerCannotAnnounceAMultiMegabyteFrame() async throws {
        let cluster = try await LocalCluster(followers: 1)
        do {
            let length = UInt32(48 << 20)
            let header: [UInt8] = (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * UInt32($0))) } + [1]
            let body = [UInt8](repeating: 0x41, count: 1 << 20)
            #expect(try await nodeCloses(cluster.primaryAddress, after: header + body, timeout: .seconds(3)),
                    "the node keeps buffering a 48 MiB hello from a peer that proved nothing")
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    /// Slowloris: a peer connects and never completes the handshake (here: two bytes of a frame
    /// header, then silence). Nothing times the handshake out, so the connection is held for
    /// ever; enough of them exhaust the node's descriptors. Expected: closed after a bounded time.
    @Test func aConnectionThatNeverAuthenticatesIsClosed() async throws {
        let cluster = try await LocalCluster(followers: 1)
        do {
            #expect(try await nodeCloses(cluster.primaryAddress, after: [40, 0], timeout: .seconds(12)),
                    "an unauthenticated connection was still open after 12 s")
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }
}
