import Foundation
import NIOCore
import NIOPosix
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Authenticates as `identity`, sends `frame`, and returns the goodbye the node answers with
/// (nil: the connection closed without one, or nothing came within 5 s).
func review10SendAfterHandshake(_ frame: Frame, as identity: NodeID, to address: PeerAddress) async throws -> Frame.Goodbye? {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let answer = loop.makePromise(of: Frame.Goodbye?.self)
    let handshake = Handshake(side: .connector, nodeID: identity, clusterKey: testKey, nonce: makeNonce())
    let channel = try await ClientBootstrap(group: loop)
        .connectTimeout(.seconds(5))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20)),
                    MessageToByteHandler(FrameEncoder()),
                    Review10OneFrameHandler(handshake: handshake, frame: frame, answer: answer),
                ])
            }
        }
        .connect(host: address.host, port: address.port).get()
    let timer = loop.scheduleTask(in: .seconds(5)) { answer.succeed(nil) }
    defer {
        timer.cancel()
        channel.close(promise: nil)
    }
    return try await answer.futureResult.get()
}

private final class Review10OneFrameHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame
    private var handshake: Handshake
    private var authenticated = false
    private let frame: Frame
    private let answer: EventLoopPromise<Frame.Goodbye?>

    init(handshake: Handshake, frame: Frame, answer: EventLoopPromise<Frame.Goodbye?>) {
        self.handshake = handshake
        self.frame = frame
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(handshake.start(), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let received = unwrapInboundIn(data)
        if case .goodbye(let goodbye) = received {
            answer.succeed(goodbye)
        } else if !authenticated {
            perform(handshake.received(received), context: context)
        }
    }

    private func perform(_ actions: [Handshake.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let frame): context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            case .authenticated:
                authenticated = true
                context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            case .close: answer.succeed(nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.succeed(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.succeed(nil)
        context.close(promise: nil)
    }
}

/// Frames on the cluster port that no honest peer sends: each gets a goodbye naming why, and
/// the cluster goes on (one primary, appends acknowledged).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10BadFrameTests {
    @Test func garbageElectionFramesAndOperatorsSendingClusterFramesAreTurnedAway() async throws {
        let cluster = try await AutoCluster()
        defer { Task { await cluster.stopAll() } }
        try await cluster.startAll()
        let primary = try await cluster.waitForPrimary()
        let address = cluster.cluster.voters[primary]!
        let garbage = Frame.election([0xff, 0x00, 0x13, 0x37])
        // An operator's connection may only ask for status and switchover.
        let toOperator = try await review10SendAfterHandshake(garbage, as: NodeStatusClient.operatorID, to: address)
        #expect(toOperator?.reason == .unexpectedFrame, "\(String(describing: toOperator))")
        // A voter (it holds the key) sending an election message that does not decode.
        let voter = cluster.ids.first { $0 != primary }!
        let toVoter = try await review10SendAfterHandshake(garbage, as: voter, to: address)
        #expect(toVoter?.reason == .malformedFrame, "\(String(describing: toVoter))")
        let empty = try await review10SendAfterHandshake(.election([]), as: voter, to: address)
        #expect(empty?.reason == .malformedFrame, "\(String(describing: empty))")
        // A node that is not a voter of this cluster, with the key.
        let stranger = try await review10SendAfterHandshake(garbage, as: NodeID(77), to: address)
        #expect(stranger?.reason == .unexpectedFrame, "\(String(describing: stranger))")

        let now = try await cluster.waitForPrimary()
        let writer = ClusterWriter(cluster: cluster)
        #expect(await writer.append(record(0), mode: .sync(quorum: 1), startingAt: now, deadline: .now + .seconds(5)) != nil)
        await cluster.stopAll()
    }
}
