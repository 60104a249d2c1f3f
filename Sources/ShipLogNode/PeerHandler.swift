import Logging
import NIOCore
import ShipLogProtocol

/// What a node does with an authenticated connection. Called on the connection's event loop;
/// the delegate hops to its state machine's loop (the same loop in `Node`, which binds every
/// channel to it, so the primary and follower drivers run these at once: `runNowOrExecute`).
/// A delegate may be called re-entrantly: closing a channel from within a call fires
/// `sessionClosed` before that call returns.
protocol SessionDelegate: AnyObject, Sendable {
    func sessionAuthenticated(_ connection: ConnectionID, peer: NodeID, channel: any Channel)
    func sessionReceived(_ frame: Frame, from connection: ConnectionID)
    func sessionClosed(_ connection: ConnectionID)
    func sessionWritable(_ connection: ConnectionID)
}

extension EventLoop {
    /// Runs `body` at once when called on this loop, else queues it (`execute`). The drivers'
    /// session callbacks all come from channel handlers on the node's one loop, so they run
    /// in the order the connection saw them either way; at once, each frame skips a queued
    /// task (a lock, an allocation and a later turn of the loop) before its acknowledgement.
    func runNowOrExecute(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}

/// One TCP connection between nodes (or from `shiplog status`): runs the `Handshake` first and
/// passes nothing on before the peer has proved the cluster key; then hands every frame to the
/// delegate. Bad input (a frame the decoder refuses, a failed handshake) closes the connection
/// with a logged reason naming the peer.
final class PeerHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private enum State {
        case handshaking(Handshake)
        case authenticated(NodeID)
        case closed
    }

    let connection: ConnectionID
    private var state: State
    private let delegate: any SessionDelegate
    private let logger: Logger
    private let metrics: NodeMetrics
    private var peerDescription = "unknown peer"
    /// The decoder's limit, raised to `maxFrameBytes` once the peer has proved the key.
    private let frameLimit: FrameLimit
    private let maxFrameBytes: Int
    private let handshakeTimeout: Duration
    private var handshakeDeadline: Scheduled<Void>?

    init(connection: ConnectionID, handshake: Handshake, delegate: any SessionDelegate, logger: Logger, metrics: NodeMetrics,
         frameLimit: FrameLimit, maxFrameBytes: Int, handshakeTimeout: Duration) {
        self.frameLimit = frameLimit
        self.maxFrameBytes = maxFrameBytes
        self.handshakeTimeout = handshakeTimeout
        self.connection = connection
        self.state = .handshaking(handshake)
        self.delegate = delegate
        self.logger = logger
        self.metrics = metrics
    }

    func channelActive(context: ChannelHandlerContext) {
        peerDescription = context.remoteAddress.map { "\($0)" } ?? "unknown peer"
        guard case .handshaking(var handshake) = state else { return }
        // Slowloris: a peer that never finishes the handshake must not hold the connection.
        let timeout = handshakeTimeout
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeDeadline = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.milliseconds * 1_000_000))) {
            let (handler, context) = loopBound.value
            guard case .handshaking = handler.state else { return }
            handler.close(context: context, reason: .authenticationFailed, message: "not authenticated within \(timeout)")
        }
        let actions = handshake.start()
        state = .handshaking(handshake)
        perform(actions, context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch state {
        case .handshaking(var handshake):
            let actions = handshake.received(frame)
            state = .handshaking(handshake)
            perform(actions, context: context)
        case .authenticated:
            delegate.sessionReceived(frame, from: connection)
        case .closed:
            break
        }
    }

    private func perform(_ actions: [Handshake.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let frame):
                context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            case .authenticated(let peer):
                guard case .handshaking = state else { continue }
                state = .authenticated(peer)
                handshakeDeadline?.cancel()
                handshakeDeadline = nil
                frameLimit.maxFrameBytes = maxFrameBytes
                logger.debug("authenticated", metadata: ["peer": "\(peer)", "address": "\(peerDescription)", "connection": "\(connection.rawValue)"])
                delegate.sessionAuthenticated(connection, peer: peer, channel: context.channel)
            case .close(let reason, let message):
                if reason == .authenticationFailed { metrics.authenticationFailures.increment() }
                close(context: context, reason: reason, message: "handshake: \(message)")
                return
            }
        }
    }

    /// Sends `goodbye` (so the peer can log why) and closes; every refusal goes through here.
    func close(context: ChannelHandlerContext, reason: CloseReason, message: String) {
        if case .closed = state { return }
        let peer: String
        if case .authenticated(let id) = state { peer = "\(id) at \(peerDescription)" } else { peer = peerDescription }
        logger.warning("closing connection: \(message)", metadata: [
            "peer": "\(peer)", "reason": "\(reason)", "connection": "\(connection.rawValue)",
        ])
        metrics.closedConnection(reason: reason)
        let wasAuthenticated: Bool
        if case .authenticated = state { wasAuthenticated = true } else { wasAuthenticated = false }
        state = .closed
        context.writeAndFlush(wrapOutboundOut(.goodbye(.init(reason: reason, message: message))), promise: nil)
        context.close(promise: nil)
        if wasAuthenticated { delegate.sessionClosed(connection) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        if case .authenticated = state { delegate.sessionClosed(connection) }
        state = .closed
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .authenticated = state { delegate.sessionWritable(connection) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decoding = error as? FrameDecodingError {
            close(context: context, reason: decoding.error.reason, message: "invalid frame: \(decoding.error.message)")
        } else if error is ByteToMessageDecoderError {
            // Bytes that arrived after a refused frame: the connection is already closing.
            context.close(promise: nil)
        } else {
            close(context: context, reason: .localFailure, message: "connection error: \(error)")
        }
    }
}
