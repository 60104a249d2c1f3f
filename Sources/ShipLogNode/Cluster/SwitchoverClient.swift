import NIOCore
import NIOPosix
import ShipLogProtocol

/// Asks a running automatic-role primary to hand leadership to another node, as
/// `shiplog switchover --to NODE ADDRESS` does: connects, proves the cluster key as the
/// operator (`NodeStatusClient.operatorID`), sends `switchoverRequest` and waits for the
/// node's `statusReply` (sent once it follows the target) or its `goodbye` saying why not.
public enum NodeSwitchoverClient {
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case connectionFailed(PeerAddress, String)
        /// The node refused or could not finish: `reason` `notPrimary` names the primary in `message`.
        case refused(PeerAddress, CloseReason, String)
        case closedWithoutReply(PeerAddress)
        case timedOut(PeerAddress, Duration)
        case badReply(PeerAddress, String)

        public var description: String {
            switch self {
            case .connectionFailed(let address, let message): "cannot connect to \(address): \(message)"
            case .refused(let address, let reason, let message): "\(address) refused (\(reason)): \(message)"
            case .closedWithoutReply(let address): "\(address) closed the connection without a reply (wrong cluster key?)"
            case .timedOut(let address, let timeout): "no reply from \(address) within \(timeout)"
            case .badReply(let address, let message): "\(address) sent a reply that is not a status document: \(message)"
            }
        }
    }

    /// Returns the primary's status after the handover (it now follows `target`).
    public static func request(_ target: NodeID, from address: PeerAddress, clusterKey: [UInt8], timeout: Duration = .seconds(10),
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NodeStatus {
        let loop = group.next()
        let reply = loop.makePromise(of: [UInt8].self)
        let handshake = Handshake(side: .connector, nodeID: NodeStatusClient.operatorID, clusterKey: clusterKey, nonce: makeNonce())
        let nanoseconds = Int64(timeout.milliseconds * 1_000_000)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.nanoseconds(nanoseconds))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20)),
                            MessageToByteHandler(FrameEncoder()),
                            OperatorRequestHandler(handshake: handshake, request: .switchoverRequest(target: target),
                                                   address: address, reply: reply),
                        ])
                    }
                }
                .connect(host: address.host, port: address.port).get()
        } catch {
            reply.fail(Failure.connectionFailed(address, "\(error)"))
            throw Failure.connectionFailed(address, "\(error)")
        }
        let timer = loop.scheduleTask(in: .nanoseconds(nanoseconds)) { reply.fail(Failure.timedOut(address, timeout)) }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        let json = try await reply.futureResult.get()
        do {
            return try NodeStatus.decode(json: json)
        } catch {
            throw Failure.badReply(address, "\(error)")
        }
    }
}

/// Runs the connector's handshake, sends one request, and completes with the `statusReply`.
private final class OperatorRequestHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame
    private var handshake: Handshake
    private var authenticated = false
    private let request: Frame
    private let address: PeerAddress
    private let reply: EventLoopPromise<[UInt8]>

    init(handshake: Handshake, request: Frame, address: PeerAddress, reply: EventLoopPromise<[UInt8]>) {
        self.handshake = handshake
        self.request = request
        self.address = address
        self.reply = reply
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(handshake.start(), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .goodbye(let goodbye) = frame {
            reply.fail(NodeSwitchoverClient.Failure.refused(address, goodbye.reason, goodbye.message))
            context.close(promise: nil)
        } else if authenticated {
            if case .statusReply(let status) = frame { reply.succeed(status.json) }
        } else {
            perform(handshake.received(frame), context: context)
        }
    }

    private func perform(_ actions: [Handshake.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let frame):
                context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            case .authenticated:
                authenticated = true
                context.writeAndFlush(wrapOutboundOut(request), promise: nil)
            case .close(let reason, let message):
                reply.fail(NodeSwitchoverClient.Failure.refused(address, reason, "handshake: \(message)"))
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reply.fail(NodeSwitchoverClient.Failure.closedWithoutReply(address))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reply.fail(NodeSwitchoverClient.Failure.refused(address, .malformedFrame, "\(error)"))
        context.close(promise: nil)
    }
}
