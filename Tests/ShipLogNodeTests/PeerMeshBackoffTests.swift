import Foundation
import NIOCore
import NIOPosix
@testable import ShipLogNode
import ShipLogProtocol
import Synchronization
import Testing

/// A peer that authenticates each connection and drops it at once must be redialled with the
/// growing delay, not in a tight loop. Seen: two orphaned nodes of a crashed test spent 40% of
/// a CPU each on handshakes (2,400 nonces a second) for half an hour.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct PeerMeshBackoffTests {
    @Test func aPeerThatDropsEveryConnectionAfterTheHandshakeIsRedialledWithBackoff() async throws {
        let cluster = try await AutoCluster()
        let fakePeer = NodeID(2)
        let accepted = AuthenticatedCount()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20)),
                        MessageToByteHandler(FrameEncoder()),
                        AuthenticateThenDropHandler(handshake: Handshake(side: .listener, nodeID: fakePeer, clusterKey: testKey,
                                                                         nonce: makeNonce()),
                                                    accepted: accepted),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: cluster.cluster.voters[fakePeer]!.port).get()
        // Node 1 dials node 2 (the lower id dials); node 3 is not running.
        let node = try await cluster.start(NodeID(1))
        try await Task.sleep(for: .milliseconds(1500))
        try await node.stop()
        try await server.close()
        let count = accepted.value.withLock { $0 }
        // Backoff 50 ms doubling to 1 s: immediate, then 50, 100, 200, 400, 800 ms: 6 or 7 in 1.5 s.
        #expect(count >= 2, "the node never redialled (\(count) authenticated connections)")
        #expect(count <= 12, "\(count) authenticated connections in 1.5 s: redialled without backoff")
    }
}

/// The listener side of the handshake; once the dialler is authenticated, closes the connection.
private final class AuthenticateThenDropHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame
    private var handshake: Handshake
    private let accepted: AuthenticatedCount

    init(handshake: Handshake, accepted: AuthenticatedCount) {
        self.handshake = handshake
        self.accepted = accepted
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for action in handshake.received(unwrapInboundIn(data)) {
            switch action {
            case .send(let frame): context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            case .authenticated:
                accepted.value.withLock { $0 += 1 }
                context.close(promise: nil)
            case .close: context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

private final class AuthenticatedCount: Sendable {
    let value = Mutex(0)
}
