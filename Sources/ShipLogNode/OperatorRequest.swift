import NIOCore
import NIOPosix
import ShipLogProtocol

/// Why an operator's request to a node (`shiplog status`, `shiplog switchover`) got no answer;
/// each case names the node's address.
public enum OperatorRequestFailure: Error, Sendable, CustomStringConvertible {
    case connectionFailed(PeerAddress, String)
    /// The node closed the connection saying why (`goodbye`); for a switchover `notPrimary`
    /// names the primary in the message.
    case refused(PeerAddress, CloseReason, String)
    case closedWithoutReply(PeerAddress)
    case timedOut(PeerAddress, Duration)
    case badReply(PeerAddress, String)

    public var description: String {
        switch self {
        case .connectionFailed(let address, let message): "cannot connect to \(address): \(message)"
        case .refused(let address, let reason, let message): "\(address) closed the connection (\(reason)): \(message)"
        case .closedWithoutReply(let address): "\(address) closed the connection without a reply (wrong cluster key?)"
        case .timedOut(let address, let timeout): "no reply from \(address) within \(timeout)"
        case .badReply(let address, let message): "\(address) sent a reply that is not a status document: \(message)"
        }
    }
}

/// One operator request: connect, prove the cluster key as the operator
/// (`NodeStatusClient.operatorID`), send `request`, and decode the node's `statusReply`, or
/// fail with its `goodbye`.
func operatorRequest(_ request: Frame, to address: PeerAddress, clusterKey: [UInt8], timeout: Duration, maxFrameBytes: Int,
                     group: any EventLoopGroup) async throws -> NodeStatus {
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
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)),
                        MessageToByteHandler(FrameEncoder()),
                        OperatorRequestHandler(handshake: handshake, request: request, address: address, reply: reply),
                    ])
                }
            }
            .connect(host: address.host, port: address.port).get()
    } catch {
        reply.fail(OperatorRequestFailure.connectionFailed(address, "\(error)"))
        throw OperatorRequestFailure.connectionFailed(address, "\(error)")
    }
    let timer = loop.scheduleTask(in: .nanoseconds(nanoseconds)) { reply.fail(OperatorRequestFailure.timedOut(address, timeout)) }
    defer {
        timer.cancel()
        channel.close(promise: nil)
    }
    let json = try await reply.futureResult.get()
    do {
        return try NodeStatus.decode(json: json)
    } catch {
        throw OperatorRequestFailure.badReply(address, "\(error)")
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
            reply.fail(OperatorRequestFailure.refused(address, goodbye.reason, goodbye.message))
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
                reply.fail(OperatorRequestFailure.refused(address, reason, "handshake: \(message)"))
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reply.fail(OperatorRequestFailure.closedWithoutReply(address))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reply.fail(OperatorRequestFailure.refused(address, .malformedFrame, "\(error)"))
        context.close(promise: nil)
    }
}
