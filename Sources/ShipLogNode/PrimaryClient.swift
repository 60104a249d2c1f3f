import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol

/// A follower's connection to its primary: connects, and after a refused connection or a
/// disconnect connects again after a delay that doubles from `backoff.lowerBound` up to
/// `backoff.upperBound` (starting over once a connection authenticates). What happens on the
/// connection is the `FollowerDriver`'s business. Confined to the driver's event loop.
final class PrimaryClient: @unchecked Sendable {
    let loop: any EventLoop
    private let address: PeerAddress
    private let pipeline: PipelineFactory
    private let driver: FollowerDriver
    private let primaryID: NodeID
    private let backoff: ClosedRange<Duration>
    private let logger: Logger
    private let metrics: NodeMetrics
    private var failures = 0
    private var stopped = false
    private var channel: (any Channel)?
    private var retry: Scheduled<Void>?

    init(loop: any EventLoop, address: PeerAddress, primaryID: NodeID, pipeline: PipelineFactory, driver: FollowerDriver,
         backoff: ClosedRange<Duration>, logger: Logger, metrics: NodeMetrics) {
        self.loop = loop
        self.address = address
        self.primaryID = primaryID
        self.pipeline = pipeline
        self.driver = driver
        self.backoff = backoff
        self.logger = logger
        self.metrics = metrics
    }

    /// Call on the loop.
    func start() {
        loop.preconditionInEventLoop()
        connect()
    }

    /// The connection authenticated: the next disconnect retries after the shortest delay.
    func authenticated() {
        loop.preconditionInEventLoop()
        failures = 0
    }

    private func connect() {
        // A follower whose log failed stops asking for more of the primary's log.
        guard !stopped, !driver.failedLocally else { return }
        let connection = ConnectionNumbers.next()
        driver.connectingToPrimary(connection)
        let pipeline = self.pipeline
        let primaryID = self.primaryID
        let driver = self.driver
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: PipelineFactory.writeBufferWaterMark)
            .channelOption(.recvAllocator, value: PipelineFactory.receiveAllocator)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try pipeline.install(on: channel, connection: connection, side: .connector,
                                         allowedPeers: [primaryID], delegate: driver)
                }
            }
            .connect(host: address.host, port: address.port)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    if stopped { channel.close(promise: nil); return }
                    self.channel = channel
                    channel.closeFuture.whenComplete { [self] _ in
                        self.channel = nil
                        scheduleReconnect(after: "the connection to \(primaryID) at \(address) closed")
                    }
                case .failure(let error):
                    scheduleReconnect(after: "connecting to \(primaryID) at \(address) failed: \(error)")
                }
            }
    }

    private func scheduleReconnect(after what: String) {
        guard !stopped else { return }
        let delay = min(backoff.upperBound, backoff.lowerBound * (1 << min(failures, 20)))
        failures += 1
        metrics.reconnects.increment()
        logger.info("\(what); reconnecting in \(delay)")
        let nanoseconds = Int64(delay.milliseconds * 1_000_000)
        retry = loop.scheduleTask(in: .nanoseconds(nanoseconds)) { [self] in connect() }
    }

    /// Stops reconnecting and closes the connection. Call on the loop.
    func stop() {
        loop.preconditionInEventLoop()
        stopped = true
        retry?.cancel()
        channel?.close(promise: nil)
        channel = nil
    }
}

/// Builds the handlers of a node-to-node connection: frame decoder and encoder, then the
/// handshake and session handler.
struct PipelineFactory: Sendable {
    /// NIO's default (32/64 KiB) makes a channel unwritable after every 1 MiB `batches` frame,
    /// so the primary read the next frame only once the last had drained: catch-up ran at
    /// 60-140 MB/s. With room for a few frames, reads and sends overlap; a stalled follower
    /// still costs at most this plus `maxInFlightBytesPerFollower`.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1 << 20, high: 4 << 20)
    /// Reads of up to 4 MiB instead of NIO's 64 KiB. A `batches` frame is a little over
    /// `maxShipBytes` (1 MiB), so with reads of at most 1 MiB every frame spanned two reads and
    /// was copied whole into the decoder's buffer; a read that takes several frames at once
    /// hands the decoder the whole ones in place (only a frame cut by the read's end is copied).
    /// The allocator grows to it only while reads fill their buffers (a follower behind).
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 64 << 10, maximum: 4 << 20)

    var nodeID: NodeID
    var clusterKey: [UInt8]
    var maxFrameBytes: Int
    /// A connection not authenticated within this long is closed.
    var handshakeTimeout: Duration
    var logger: Logger
    var metrics: NodeMetrics

    func install(on channel: any Channel, connection: ConnectionID, side: Handshake.Side, allowedPeers: Set<NodeID>?,
                 delegate: any SessionDelegate) throws {
        let handshake = Handshake(side: side, nodeID: nodeID, clusterKey: clusterKey, nonce: makeNonce(), allowedPeers: allowedPeers)
        let limit = FrameLimit(maxFrameBytes: min(maxFrameBytes, FrameLimit.handshakeFrameBytes))
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(FrameDecoder(limit: limit)),
            MessageToByteHandler(FrameEncoder()),
            PeerHandler(connection: connection, handshake: handshake, delegate: delegate, logger: logger, metrics: metrics,
                        frameLimit: limit, maxFrameBytes: maxFrameBytes, handshakeTimeout: handshakeTimeout),
        ])
    }

    /// Listens on `host:port` on `loop`, every accepted connection with this pipeline (the
    /// peer proves itself in the handshake) and `delegate`.
    func listen(on loop: any EventLoop, host: String, port: Int, delegate: any SessionDelegate) async throws -> any Channel {
        try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: Self.writeBufferWaterMark)
            .childChannelOption(.recvAllocator, value: Self.receiveAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try install(on: channel, connection: ConnectionNumbers.next(), side: .listener, allowedPeers: nil, delegate: delegate)
                }
            }
            .bind(host: host, port: port).get()
    }
}
