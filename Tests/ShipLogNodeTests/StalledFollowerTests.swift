import NIOCore
import NIOPosix
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A follower that authenticates, asks to follow, and then never reads again: the primary's
/// writes to it back up (the channel turns unwritable and ships wait), while the other
/// follower keeps acknowledging and appends keep completing.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct StalledFollowerTests {
    /// Runs the connector's handshake, sends `follow` from offset 0, then stops reading.
    final class StallingFollower: ChannelInboundHandler {
        typealias InboundIn = Frame
        typealias OutboundOut = Frame
        var handshake: Handshake
        var authenticated = false
        let following: EventLoopPromise<Void>
        init(id: NodeID, following: EventLoopPromise<Void>) {
            handshake = Handshake(side: .connector, nodeID: id, clusterKey: testKey, nonce: Array(repeating: 7, count: 32))
            self.following = following
        }
        func channelActive(context: ChannelHandlerContext) { perform(handshake.start(), context) }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // After authentication only batches and heartbeats come, until reading stops.
            guard !authenticated else { return }
            perform(handshake.received(unwrapInboundIn(data)), context)
        }
        func perform(_ actions: [Handshake.Action], _ context: ChannelHandlerContext) {
            for action in actions {
                switch action {
                case .send(let frame): context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
                case .authenticated:
                    authenticated = true
                    context.writeAndFlush(wrapOutboundOut(.follow(.init(logEnd: LogEnd(nextOffset: 0, lastEpoch: nil), knownEpoch: 0))),
                                          promise: nil)
                    context.channel.setOption(ChannelOptions.autoRead, value: false).cascade(to: following)
                case .close(_, let message): following.fail(TimedOut(what: "a handshake that failed: \(message)"))
                }
            }
        }
    }

    @Test func aStalledFollowerHoldsUpNeitherAppendsNorTheOtherFollower() async throws {
        let cluster = try await LocalCluster(followers: 1, replication: {
            var replication = ReplicationConfiguration()
            replication.minSyncFollowers = 1
            replication.inSyncLagTimeout = .milliseconds(500)
            return replication
        }(), expecting: [NodeID(2), NodeID(9)], waitFor: [NodeID(2)])
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let following = loop.makePromise(of: Void.self)
        let stalled = try await ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 64 << 10)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 26)), MessageToByteHandler(FrameEncoder()),
                        StallingFollower(id: NodeID(9), following: following),
                    ])
                }
            }
            .connect(host: cluster.primaryAddress.host, port: cluster.primaryAddress.port).get()
        do {
            try await following.futureResult.get()
            // 24 MiB of incompressible records, far beyond what the sockets and one frame hold:
            // 128 KiB windows into 1 MiB of random words (filled 8 bytes at a time; debug builds are slow).
            var generator = SystemRandomNumberGenerator()
            let random = (0..<(128 << 10)).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
            for i in 0..<192 {
                let start = (i * 4099) % (random.count - (128 << 10))
                let payload = Array(random[start..<(start + (128 << 10))])
                try await cluster.primary.append([payload], mode: i % 2 == 0 ? .async : .sync(quorum: 1))
            }
            try await cluster.waitForFollowers()
            try await waitUntil("the stalled follower to fall out of sync") {
                try await cluster.primary.status().followers.contains { $0.node == 9 && !$0.inSync }
            }
            let status = try await cluster.primary.status()
            let stalledStatus = try #require(status.followers.first { $0.node == 9 })
            #expect(stalledStatus.connected && stalledStatus.lagRecords > 0, "\(stalledStatus)")
            #expect(stalledStatus.received < 192, "the stalled follower cannot have received everything: \(stalledStatus)")
            #expect(status.followers.first { $0.node == 2 }?.lagRecords == 0)
        } catch {
            stalled.close(promise: nil)
            try? await cluster.stop()
            throw error
        }
        try? await stalled.close()
        try await cluster.stop()
    }
}
