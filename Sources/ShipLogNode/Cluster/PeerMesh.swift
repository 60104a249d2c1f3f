import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol

/// What the mesh tells the node's driver, on the loop. A peer's new connection is reported only
/// after its previous one's `peerDisconnected`, and nothing of a connection reaches the driver
/// after that (format.md §14).
protocol PeerMeshDelegate: AnyObject {
    func peerConnected(_ peer: NodeID)
    func peerDisconnected(_ peer: NodeID)
    func received(_ frame: Frame, from peer: NodeID)
    /// The peer's connection drained its outbound buffer (after `isWritable` said no).
    func peerWritable(_ peer: NodeID)
    /// A frame from an authenticated connection that is not a voter's (an operator's tool):
    /// answer on `channel` or close it.
    func operatorFrame(_ frame: Frame, on channel: any Channel, from peer: NodeID)
}

/// One authenticated connection per peer over the existing handshake (`PipelineFactory`): of
/// two voters the one with the lower id dials the other, reconnecting after a loss with a delay
/// that doubles from `backoff.lowerBound` to `backoff.upperBound`; the listener accepts. The
/// delay starts over (the first retry is immediate) only after a connection that stayed up for
/// at least `backoff.lowerBound`: a peer that authenticates a connection and drops it at once
/// must not be redialled in a tight loop, each turn a handshake on both sides. When a peer's newer
/// connection authenticates, the older one is closed (the peer restarted, or the old one is
/// half-open). It decides nothing about roles. Confined to `loop`.
final class PeerMesh: SessionDelegate, @unchecked Sendable {
    let loop: any EventLoop
    let nodeID: NodeID
    private let voters: [NodeID: PeerAddress]
    private let pipeline: PipelineFactory
    private let backoff: ClosedRange<Duration>
    private let logger: Logger
    private let metrics: NodeMetrics
    weak var delegate: (any PeerMeshDelegate)?

    private struct Link { var connection: ConnectionID; var channel: any Channel }
    private struct Dialer {
        var address: PeerAddress
        var channel: (any Channel)?
        var dialing = false
        var failures = 0
        var retry: Scheduled<Void>?
        /// When the dialled connection authenticated (nil until it does).
        var authenticatedAt: NIODeadline?
    }
    /// The connection reported to the driver, per peer.
    private var current: [NodeID: Link] = [:]
    /// Every authenticated connection, voters' and operators'.
    private var sessions: [ConnectionID: (peer: NodeID, channel: any Channel)] = [:]
    private var dialers: [NodeID: Dialer] = [:]
    private var stopped = false

    init(loop: any EventLoop, nodeID: NodeID, voters: [NodeID: PeerAddress], pipeline: PipelineFactory,
         backoff: ClosedRange<Duration>, logger: Logger, metrics: NodeMetrics) {
        self.loop = loop
        self.nodeID = nodeID
        self.voters = voters
        self.pipeline = pipeline
        self.backoff = backoff
        self.logger = logger
        self.metrics = metrics
        for (peer, address) in voters where peer > nodeID { dialers[peer] = Dialer(address: address) }
    }

    /// Starts dialling the higher-numbered voters. Call on the loop.
    func start() {
        loop.preconditionInEventLoop()
        for peer in dialers.keys.sorted() { dial(peer) }
    }

    /// The connection the driver knows for `peer`, if any.
    func connection(to peer: NodeID) -> ConnectionID? { current[peer]?.connection }

    /// Whether `peer`'s current connection takes more without growing its buffer past the mark.
    func isWritable(_ peer: NodeID) -> Bool { current[peer]?.channel.isWritable ?? true }

    /// Whether `connection` is some peer's current connection.
    func isCurrent(_ connection: ConnectionID) -> Bool { current.values.contains { $0.connection == connection } }

    /// Switches reading on `connection` while it is open (`Channel.setReading`).
    func setReading(_ on: Bool, on connection: ConnectionID) {
        loop.preconditionInEventLoop()
        sessions[connection]?.channel.setReading(on)
    }

    /// A voter's connection reads at most `maxReadBytes` per turn of the loop (NIO's default:
    /// up to 4 reads of up to 4 MiB). A follower stops reading from its primary only once the
    /// frames read reach its driver (`ClusterDriver+ReadPause`), so what one turn reads lands in
    /// its queue past the mark, and writing that overshoot is a silence its failure detector
    /// sees: 16 MiB at a disk's 2 MiB/s is 8 s, past any election timeout
    /// (Review13SlowDiskElectionTests).
    static let maxReadBytes = 256 << 10
    private static func limitReads(on channel: any Channel) {
        guard let options = channel.syncOptions else { return }
        try? options.setOption(ChannelOptions.maxMessagesPerRead, value: 1)  // fails only once the channel closed
        try? options.setOption(ChannelOptions.recvAllocator,
                               value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 64 << 10, maximum: maxReadBytes))
    }

    /// Sends on `peer`'s current connection when it is still `connection`; drops it otherwise.
    func send(_ frame: Frame, to peer: NodeID, on connection: ConnectionID?) {
        guard let link = current[peer], link.connection == connection else { return }
        link.channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends a `batches` frame read by `ShipRead` (its head and its stored batches, as they are)
    /// on `peer`'s current connection when it is still `connection`; drops it otherwise.
    func send(_ read: ShipRead, epoch: UInt64, commitOffset: UInt64, to peer: NodeID, on connection: ConnectionID?) {
        guard let link = current[peer], link.connection == connection else { return }
        let (head, batches) = read.frame(epoch: epoch, commitOffset: commitOffset, allocator: link.channel.allocator)
        link.channel.writeEncodedFrame(head, batches)
    }

    /// Closes `peer`'s current connection with a goodbye; the driver's machine already treats it
    /// as gone, so its end is not reported again.
    func disconnect(_ peer: NodeID, reason: CloseReason, message: String) {
        guard let link = current.removeValue(forKey: peer) else { return }
        logger.info("closing connection: \(message)", metadata: [
            "peer": "\(peer)", "reason": "\(reason)", "connection": "\(link.connection.rawValue)"])
        metrics.closedConnection(reason: reason)
        link.channel.writeAndFlush(Frame.goodbye(.init(reason: reason, message: message)), promise: nil)
        link.channel.close(promise: nil)
    }

    /// Stops dialling and closes every connection: with a goodbye, or (`abruptly`, as a crash
    /// would) without one. Call on the loop.
    func stop(abruptly: Bool) {
        loop.preconditionInEventLoop()
        guard !stopped else { return }
        stopped = true
        for (peer, dialer) in dialers {
            dialer.retry?.cancel()
            dialer.channel?.close(promise: nil)
            dialers[peer]?.channel = nil
        }
        for (_, session) in sessions {
            if !abruptly {
                session.channel.writeAndFlush(Frame.goodbye(.init(reason: .shutdown, message: "\(nodeID) is stopping")), promise: nil)
            }
            session.channel.close(promise: nil)
        }
        sessions = [:]
        current = [:]
    }

    // MARK: Dialling

    private func dial(_ peer: NodeID) {
        // Not skipped while `current` still names the peer: the dialled connection's end may reach
        // here before its `sessionClosed`, and a skipped dial would never be retried.
        guard !stopped, var dialer = dialers[peer], !dialer.dialing, dialer.channel == nil else { return }
        dialer.dialing = true
        dialers[peer] = dialer
        let (pipeline, address) = (self.pipeline, dialer.address)
        let connection = ConnectionNumbers.next()
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: PipelineFactory.writeBufferWaterMark)
            .channelOption(.recvAllocator, value: PipelineFactory.receiveAllocator)
            .connectTimeout(.seconds(2))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try pipeline.install(on: channel, connection: connection, side: .connector, allowedPeers: [peer], delegate: self)
                }
            }
            .connect(host: address.host, port: address.port)
            .whenComplete { [self] result in
                dialers[peer]?.dialing = false
                switch result {
                case .success(let channel):
                    if stopped { channel.close(promise: nil); return }
                    dialers[peer]?.channel = channel
                    channel.closeFuture.whenComplete { [self] _ in
                        dialers[peer]?.channel = nil
                        if let since = dialers[peer]?.authenticatedAt,
                           NIODeadline.now() - since >= .nanoseconds(Int64(backoff.lowerBound.milliseconds * 1_000_000)) {
                            dialers[peer]?.failures = 0
                        }
                        dialers[peer]?.authenticatedAt = nil
                        redial(peer, after: "the connection to \(peer) at \(address) closed")
                    }
                case .failure(let error):
                    redial(peer, after: "connecting to \(peer) at \(address) failed: \(error)")
                }
            }
    }

    private func redial(_ peer: NodeID, after what: String) {
        guard !stopped, let dialer = dialers[peer] else { return }
        let failures = dialer.failures
        let delay = failures == 0 ? Duration.zero : min(backoff.upperBound, backoff.lowerBound * (1 << min(failures - 1, 20)))
        dialers[peer]?.failures = failures + 1
        if failures > 0 { metrics.reconnects.increment() }
        logger.debug("\(what); reconnecting in \(delay)")
        dialers[peer]?.retry = loop.scheduleTask(in: .nanoseconds(Int64(delay.milliseconds * 1_000_000))) { [self] in dial(peer) }
    }

    // MARK: SessionDelegate (called on the connection's loop, which is `loop`)

    func sessionAuthenticated(_ connection: ConnectionID, peer: NodeID, channel: any Channel) {
        loop.execute { [self] in
            if stopped { channel.close(promise: nil); return }
            sessions[connection] = (peer, channel)
            guard voters[peer] != nil, peer != nodeID else { return }  // an operator: status and switchover only
            Self.limitReads(on: channel)
            if let old = current.removeValue(forKey: peer) {
                // The peer restarted, or its old connection is half-open: the newer one wins.
                sessions[old.connection] = nil
                old.channel.writeAndFlush(Frame.goodbye(.init(reason: .shutdown, message: "replaced by a newer connection")), promise: nil)
                old.channel.close(promise: nil)
                delegate?.peerDisconnected(peer)
            }
            current[peer] = Link(connection: connection, channel: channel)
            if dialers[peer]?.channel === channel { dialers[peer]?.authenticatedAt = .now() }
            delegate?.peerConnected(peer)
        }
    }

    func sessionReceived(_ frame: Frame, from connection: ConnectionID) {
        loop.execute { [self] in
            guard !stopped, let session = sessions[connection] else { return }
            if current[session.peer]?.connection == connection {
                delegate?.received(frame, from: session.peer)
            } else if voters[session.peer] == nil || session.peer == nodeID {
                delegate?.operatorFrame(frame, on: session.channel, from: session.peer)
            }
            // Else a replaced connection: nothing of it reaches the machine.
        }
    }

    func sessionClosed(_ connection: ConnectionID) {
        loop.execute { [self] in
            guard let session = sessions.removeValue(forKey: connection) else { return }
            if current[session.peer]?.connection == connection {
                current[session.peer] = nil
                if !stopped { delegate?.peerDisconnected(session.peer) }
            }
        }
    }

    func sessionWritable(_ connection: ConnectionID) {
        loop.execute { [self] in
            guard !stopped, let session = sessions[connection], current[session.peer]?.connection == connection else { return }
            delegate?.peerWritable(session.peer)
        }
    }
}
