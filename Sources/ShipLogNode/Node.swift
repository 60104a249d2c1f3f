import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage
import Synchronization

/// A ShipLog node an application embeds: its log, a listener for the other nodes, and the
/// replication state machine of its role, driven by a SwiftNIO shell on one event loop.
///
///     let node = Node(configuration: NodeConfiguration(id: NodeID(1), logDirectory: dir,
///                                                      clusterKey: key, role: .primary))
///     try await node.start()
///     let offsets = try await node.append([record], mode: .sync(quorum: 1))
///     try await node.stop()
public final class Node: Sendable {
    public let configuration: NodeConfiguration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let phase: Mutex<Phase> = Mutex(.idle)

    private enum Phase {
        case idle
        case starting
        /// `stop()` was called while starting: each waiting `stop()` resumes once `start()` has
        /// stopped what it started, so a returned `stop()` always means a closed log.
        case stopping([CheckedContinuation<Void, Never>])
        case running(Running)
        case stopped
    }

    struct Running: @unchecked Sendable {
        var log: SegmentLog
        var loop: any EventLoop
        var server: any Channel
        var primary: PrimaryDriver?
        var follower: FollowerDriver?
        var client: PrimaryClient?
        /// An automatic-role node's shell (Cluster/): then `primary`, `follower` and `client` are nil.
        var cluster: ClusterDriver? = nil
        /// Runs tasks on `loop` (stateless: one per call is fine).
        var executor: EventLoopTaskExecutor { EventLoopTaskExecutor(loop: loop) }
    }

    /// - Parameter eventLoopGroup: where the node's connections and state machine run; by
    ///   default NIO's shared group. The node uses one loop of it.
    public init(configuration: NodeConfiguration, logger: Logger = Logger(label: "shiplog.node"),
                eventLoopGroup: (any EventLoopGroup)? = nil) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.id.rawValue)"
        self.logger = logger
        self.group = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
    }

    /// Opens the log, starts listening and, on a follower, connects to the primary. A node
    /// starts at most once: after `stop()` (even one called before or during `start()`) it
    /// throws `NodeError.notRunning`.
    public func start() async throws {
        try phase.withLock { phase in
            if case .stopped = phase { throw NodeError.notRunning(node: configuration.id) }
            guard case .idle = phase else { throw NodeError.invalidConfiguration("\(configuration.id) was already started") }
            phase = .starting
        }
        do {
            let running = try await startRunning()
            let stopWaiters = phase.withLock { phase -> [CheckedContinuation<Void, Never>]? in
                if case .stopping(let waiters) = phase {
                    phase = .stopped
                    return waiters
                }
                phase = .running(running)
                return nil
            }
            if let stopWaiters {
                defer { for waiter in stopWaiters { waiter.resume() } }
                try await shutDown(running)
                throw NodeError.notRunning(node: configuration.id)
            }
        } catch {
            let stopWaiters = phase.withLock { phase -> [CheckedContinuation<Void, Never>] in
                switch phase {
                case .starting:
                    phase = .idle
                case .stopping(let waiters):
                    phase = .stopped
                    return waiters
                default:
                    break
                }
                return []
            }
            for waiter in stopWaiters { waiter.resume() }
            throw error
        }
    }

    private func startRunning() async throws -> Running {
        let configuration = self.configuration
        if case .automatic(let cluster) = configuration.role { return try await startCluster(cluster, logger: logger, group: group) }
        var replication = configuration.replication
        if replication.followers.isEmpty {
            replication.followers = configuration.peers.keys.filter { $0 != configuration.id }.sorted()
        }
        let replicationSettings = replication
        var primaryAddress = PeerAddress(host: "", port: 0)
        if case .follower(let primary) = configuration.role {
            guard let address = configuration.peers[primary] else {
                throw NodeError.invalidConfiguration("\(configuration.id) follows \(primary), whose address is not among the peers")
            }
            primaryAddress = address
        }
        let followerPrimaryAddress = primaryAddress
        try Self.check(configuration, replication: replicationSettings)
        let log = try await NIOThreadPool.singleton.runIfActive {
            try SegmentLog.open(directory: configuration.logDirectory, options: configuration.logOptions)
        }
        if case .primary = configuration.role, let epoch = configuration.epoch {
            // Records appended in an epoch the log already holds could sit at offsets a follower
            // holds other records of that epoch at (a primary that lost its unsynced tail):
            // epoch matching would call them equal. A new primary term needs a new epoch.
            let last = max(log.lastEpoch, log.epochHistory.lastEpoch ?? 0)
            guard epoch > last else {
                try? await log.close()
                throw NodeError.invalidConfiguration(
                    "epoch \(epoch) is not above the log's last epoch \(last): a primary must start with a new epoch "
                        + "(leave it unset to pick \(last + 1))")
            }
        }
        let loop = group.next()
        let clock = NodeClock()
        let metrics = NodeMetrics(node: configuration.id)
        let tick = configuration.tickInterval ?? replication.heartbeatInterval / 4
        let factory = PipelineFactory(nodeID: configuration.id, clusterKey: configuration.clusterKey,
                                      maxFrameBytes: replication.maxFrameBytes, handshakeTimeout: configuration.handshakeTimeout,
                                      logger: logger, metrics: metrics)
        let logger = self.logger

        let setUp: EventLoopFuture<(PrimaryDriver?, FollowerDriver?, PrimaryClient?, any SessionDelegate)> = loop.submit {
            switch configuration.role {
            case .primary:
                let epoch = configuration.epoch ?? (max(log.lastEpoch, log.epochHistory.lastEpoch ?? 0) + 1)
                let driver = PrimaryDriver(loop: loop, log: log, configuration: configuration, replication: replicationSettings,
                                           epoch: epoch, pool: NIOThreadPool.singleton, clock: clock, logger: logger, metrics: metrics)
                driver.start(tickInterval: tick)
                logger.info("primary at epoch \(epoch), log offsets \(log.firstOffset)..<\(log.nextOffset)")
                return (driver, nil, nil, driver)
            case .follower(let primaryID):
                let driver = FollowerDriver(loop: loop, log: log, configuration: configuration, replication: replicationSettings,
                                            primaryID: primaryID, pool: NIOThreadPool.singleton, clock: clock,
                                            logger: logger, metrics: metrics)
                let client = PrimaryClient(loop: loop, address: followerPrimaryAddress, primaryID: primaryID, pipeline: factory,
                                           driver: driver, backoff: configuration.reconnectBackoff, logger: logger, metrics: metrics)
                driver.onPrimaryAuthenticated = { client.authenticated() }
                driver.start(tickInterval: tick)
                return (nil, driver, client, driver)
            case .automatic:
                preconditionFailure("an automatic-role node starts in startCluster")
            }
        }
        let (primary, follower, client, delegate) = try await setUp.get()
        let server: any Channel
        do {
            server = try await factory.listen(on: loop, host: configuration.listenHost, port: configuration.listenPort,
                                              delegate: delegate)
        } catch {
            try? await loop.submit { primary?.stop(); _ = follower?.stop() }.get()
            try? await log.close()
            throw NodeError.invalidConfiguration("cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error)")
        }
        if let client { try await loop.submit { client.start() }.get() }
        logger.info("listening on \(server.localAddress.map { "\($0)" } ?? "?") as \(configuration.role)")
        return Running(log: log, loop: loop, server: server, primary: primary, follower: follower, client: client)
    }

    func running() throws -> Running {
        try phase.withLock { phase in
            guard case .running(let running) = phase else { throw NodeError.notRunning(node: configuration.id) }
            return running
        }
    }

    /// The port the node listens on (useful with port 0); nil unless running.
    public var listeningPort: Int? { (try? running())?.server.localAddress?.port }

    /// Runs tasks on the event loop the node replicates on. An application task that appends
    /// under this preference (`withTaskExecutorPreference(node.appendExecutor) { ... }`) saves
    /// a hop to the loop and one back on every sync append; see `EventLoopTaskExecutor`.
    /// Throws unless running.
    public var appendExecutor: EventLoopTaskExecutor {
        get throws { try running().executor }
    }

    /// The node's log, for reads (appends go through `append` on a primary). Throws unless running.
    public var log: SegmentLog {
        get throws { try running().log }
    }

    /// Appends `records` as one batch to the primary's log, then waits as `mode` says: not at
    /// all (`.async`), or until enough followers hold them at the configured ack level.
    /// Throws `NodeError.notPrimary` on a follower, `.replicationFailed` (the records stay in
    /// the log) when the followers do not acknowledge, `.logFailure` when the local log refuses.
    @discardableResult
    public func append(_ records: [[UInt8]], mode: ReplicationMode) async throws -> Range<UInt64> {
        let running = try running()
        if let cluster = running.cluster { return try await cluster.append(records, mode: mode).get() }
        guard let primary = running.primary else {
            guard case .follower(let primaryID) = configuration.role else { throw NodeError.notRunning(node: configuration.id) }
            throw NodeError.notPrimary(node: configuration.id, primary: primaryID)
        }
        let log = running.log
        // With fsync durability the batch is shipped as soon as it is written, and the local
        // fdatasync runs while the followers write theirs: one fdatasync's time, not two in a
        // row. The append still returns only when both are done.
        let overlapSync = log.options.durability == .fsync
        let offsets: Range<UInt64>
        let stored: [UInt8]
        do {
            // The log hands back the batch it stored, which the primary ships from memory
            // (reading it back cost a cursor and a pread on every append).
            (offsets, stored) = try await log.appendKeepingBytes(records, epoch: primary.epoch,
                                                                  durability: overlapSync ? .os : log.options.durability)
        } catch {
            throw NodeError.logFailure(offsets: nil, message: "\(error)")
        }
        let replicated = primary.startReplicating(offsets, stored: stored, mode: mode)
        if overlapSync {
            do {
                try await log.sync()
            } catch {
                throw NodeError.logFailure(offsets: offsets, message: "\(error)")
            }
        }
        try await replicated?.wait()
        return offsets
    }

    /// Deletes the oldest sealed segments as `policy` says (see `SegmentLog.enforceRetention`) and,
    /// on a primary, tells replication: a follower that still needs them gets a full resync.
    /// Returns the paths removed.
    @discardableResult
    public func enforceRetention(_ policy: RetentionPolicy) async throws -> [String] {
        let running = try running()
        let before = running.log.totalBytes
        let removed = try await running.log.enforceRetention(policy)
        if let cluster = running.cluster { try await running.loop.submit { cluster.noteRetained() }.get() }
        if let primary = running.primary {
            let bytes = max(0, before - running.log.totalBytes)
            try await running.loop.submit { primary.noteRetained(bytesRemoved: bytes) }.get()
        }
        return removed
    }

    /// The node's role, epoch, offsets and (on a primary) each follower's progress and lag.
    public func status() async throws -> NodeStatus {
        let running = try running()
        if let cluster = running.cluster { return try await running.loop.submit { cluster.status() }.get() }
        if let primary = running.primary { return try await running.loop.submit { primary.status() }.get() }
        let follower = running.follower!
        return try await running.loop.submit { follower.status() }.get()
    }

    /// Stops replication (waiting sync appends fail with `.replicationFailed(.notPrimary)`),
    /// closes every connection and closes the log cleanly (it writes its clean-shutdown marker).
    /// Called during `start()`, it returns once what `start()` had started is stopped.
    public func stop() async throws {
        var running: Running?
        await withCheckedContinuation { (stopped: CheckedContinuation<Void, Never>) in
            phase.withLock { phase in
                switch phase {
                case .running(let started):
                    phase = .stopped
                    running = started
                    stopped.resume()
                case .starting:
                    // `start()` finishes, sees this, stops what it started and resumes us.
                    phase = .stopping([stopped])
                case .stopping(let waiters):
                    phase = .stopping(waiters + [stopped])
                case .idle, .stopped:
                    // A node stopped before it started never starts: `start()` after this fails.
                    phase = .stopped
                    stopped.resume()
                }
            }
        }
        guard let running else { return }
        try await shutDown(running)
    }

    private func shutDown(_ running: Running) async throws {
        if let cluster = running.cluster { return try await shutDownCluster(running, cluster) }
        let drained = try await running.loop.submit { () -> EventLoopFuture<Void> in
            running.client?.stop()
            running.primary?.stop()
            return running.follower?.stop() ?? running.loop.makeSucceededVoidFuture()
        }.get()
        try? await running.server.close()
        try? await drained.get()
        try await running.log.close()
        logger.info("stopped; log closed at offsets \(running.log.firstOffset)..<\(running.log.nextOffset)")
    }
}
