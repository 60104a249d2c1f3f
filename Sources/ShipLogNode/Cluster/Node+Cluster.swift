import Metrics
import Foundation
import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage

/// Starting, stopping and asking an automatic-role node (`NodeConfiguration.Role.automatic`).
extension Node {
    /// The node's role changes, each as (role, epoch, primary): the role at the time of the call
    /// first, then every change, until the node stops. Each access makes a new stream. A node
    /// with a fixed role, or one not running, gives a stream that ends at once.
    public var roleChanges: AsyncStream<NodeRoleChange> {
        guard let driver = try? running().cluster else { return AsyncStream { $0.finish() } }
        return driver.roles.subscribe()
    }

    /// Switchover (`shiplog switchover --to`): hands leadership to `target` once it has caught
    /// up (appends pause meanwhile and fail with `NodeError.unavailable(_, .switchoverInProgress)`),
    /// and returns when this node follows `target`. Throws `ClusterError.switchoverRefused` when
    /// this node is not the primary or `target` cannot be one, `.switchoverFailed` when the target
    /// did not take over within `timeout` (default: three election timeouts; appends resume here).
    public func transferLeadership(to target: NodeID, timeout: Duration? = nil) async throws {
        let running = try running()
        guard let driver = running.cluster else {
            throw ClusterError.switchoverRefused(target: target, reason: "\(configuration.id) has a fixed role")
        }
        try await driver.transferLeadership(to: target, timeout: timeout ?? driver.cluster.electionTimeout * 3).get()
    }

    /// Stops the node as a crash would, for tests: connections drop without a goodbye and the log
    /// is left without its clean-shutdown marker (what the kernel holds stays, as after kill -9).
    func stopAsCrash() async throws {
        if let running = try? running(), let driver = running.cluster {
            _ = try await running.loop.submit { driver.stop(abruptly: true) }.get()
        }
        try await stop()
    }

    /// Opens the log and the election state, starts listening, then the machine and the mesh.
    func startCluster(_ cluster: ClusterConfiguration, logger: Logger, group: any EventLoopGroup) async throws -> Running {
        let configuration = self.configuration
        guard cluster.voters[configuration.id] != nil else {
            throw NodeError.invalidConfiguration("\(configuration.id) is not among the voters \(cluster.voters.keys.sorted())")
        }
        do {
            try cluster.election.validate()
        } catch {
            throw NodeError.invalidConfiguration("election settings: \(error)")
        }
        let machineConfiguration = cluster.machineConfiguration(replication: configuration.replication)
        try Self.check(configuration, replication: machineConfiguration.replication)
        let isWitness = cluster.witnesses.contains(configuration.id)
        var logOptions = configuration.logOptions
        // A witness keeps no records: its log directory only holds the election state (and an
        // empty log, so that `Node.log` still has something to show).
        if isWitness { logOptions.preallocateSegments = false }
        let options = logOptions
        let log = try await NIOThreadPool.singleton.runIfActive {
            try SegmentLog.open(directory: configuration.logDirectory, options: options)
        }
        do {
            let store = ElectionStateStore(directory: configuration.logDirectory, fileSystem: configuration.logOptions.fileSystem)
            let durable = try await NIOThreadPool.singleton.runIfActive { try store.load() }
            let clock = NodeClock()
            let machine: NodeMachine
            do {
                machine = try NodeMachine(configuration: machineConfiguration, nodeID: configuration.id, durable: durable,
                                          log: isWitness ? nil : ClusterLogWork.nodeLog(log),
                                          seed: cluster.seed ?? UInt64.random(in: .min ... .max), now: clock.now())
            } catch {
                throw NodeError.invalidConfiguration("election settings: \(error)")
            }
            let loop = group.next()
            let metrics = NodeMetrics(node: configuration.id)
            let factory = PipelineFactory(nodeID: configuration.id, clusterKey: configuration.clusterKey,
                                          maxFrameBytes: machineConfiguration.replication.maxFrameBytes,
                                          handshakeTimeout: configuration.handshakeTimeout, logger: logger, metrics: metrics)
            let mesh = PeerMesh(loop: loop, nodeID: configuration.id, voters: cluster.voters, pipeline: factory,
                                backoff: configuration.reconnectBackoff, logger: logger, metrics: metrics)
            let driver = ClusterDriver(loop: loop, cluster: cluster, machine: machine, log: isWitness ? nil : log, store: store,
                                       pool: NIOThreadPool.singleton, clock: clock, mesh: mesh, logger: logger,
                                       metrics: ClusterMetrics(node: configuration.id,
                                                                      factory: configuration.clusterMetricsFactory ?? MetricsSystem.factory))
            try await loop.submit { driver.start() }.get()
            let server: any Channel
            do {
                server = try await factory.listen(on: loop, host: configuration.listenHost, port: configuration.listenPort,
                                                  delegate: mesh)
            } catch {
                try? await loop.submit { driver.stop(abruptly: false) }.get().get()
                throw NodeError.invalidConfiguration("cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error)")
            }
            try await loop.submit { driver.connect() }.get()
            let role = isWitness ? "witness" : "voter"
            logger.info("listening on \(server.localAddress.map { "\($0)" } ?? "?") as \(role) of \(cluster.voters.keys.sorted().map(\.rawValue)), epoch \(durable.epoch), log offsets \(log.firstOffset)..<\(log.nextOffset)")
            return Running(log: log, loop: loop, server: server, primary: nil, follower: nil, client: nil, cluster: driver)
        } catch {
            try? await log.close()
            throw error
        }
    }

    /// Stops the machine and the connections, waits for the log operations queued, closes the
    /// log; after `stopAsCrash` removes the clean-shutdown marker, so the next open recovers.
    func shutDownCluster(_ running: Running, _ driver: ClusterDriver) async throws {
        let drained = try await running.loop.submit { driver.stop(abruptly: false) }.get()
        try? await running.server.close()
        try? await drained.get()
        try await running.log.close()
        if driver.crashed {
            let marker = running.log.directory + "/" + Format.cleanMarkerName
            try? configuration.logOptions.fileSystem.removeFile(marker)
        }
    }
}
