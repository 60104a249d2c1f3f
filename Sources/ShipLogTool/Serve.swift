import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import ShipLogNode
import ShipLogProtocol

/// `shiplog serve`: runs one replication node until SIGTERM or SIGINT, then stops it
/// gracefully (closing the log, which writes its clean-shutdown marker) and exits 0.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a replication node (primary or follower) until SIGTERM or SIGINT.",
        discussion: """
            Prints "listening on HOST:PORT" on standard output once it accepts connections. \
            The cluster key comes from --key-file or the environment variable SHIPLOG_CLUSTER_KEY. \
            --config FILE reads the same settings as JSON (field names as the flags', camel case: \
            id, logDirectory, listen, peers {"2": "HOST:PORT"}, role, primary, keyFile, ackLevel, \
            minSyncFollowers, minSyncFollowersTimeoutMs, syncTimeoutMs, heartbeatIntervalMs, \
            inSyncLagTimeoutMs, durability, segmentBytes, epoch, metricsPort, witness, witnesses, \
            electionTimeoutMs, twoNodeSelfPromotion, timeoutOnlyDetection); flags override it. \
            With --role automatic the node and its --peer nodes elect the primary among themselves \
            (every node must be given the same voters and witnesses); --witness runs a vote-only node.
            """)

    @Option(help: "A JSON file with the node's settings.") var config: String?
    @Option(help: "This node's id.") var id: UInt64?
    @Option(name: .customLong("log-dir"), help: "The log directory.") var logDirectory: String?
    @Option(help: "HOST:PORT to listen on (port 0 picks one).") var listen: String?
    @Option(name: .customLong("peer"), help: "Another node: ID=HOST:PORT (repeat for each).") var peers: [String] = []
    @Option(help: "primary, follower or automatic.") var role: String?
    @Option(help: "The id of the primary a follower follows.") var primary: UInt64?
    @Option(name: .customLong("follower"), help: "A follower the primary accepts (repeat; default: every peer).")
    var followers: [UInt64] = []
    @Option(name: .customLong("key-file"), help: "A file holding the cluster key.") var keyFile: String?
    @Option(name: .customLong("ack-level"), help: "received, written or durable.") var ackLevel: AckLevel?
    @Option(name: .customLong("min-sync-followers")) var minSyncFollowers: Int?
    @Option(name: .customLong("min-sync-followers-timeout-ms"),
            help: "How long a sync append waits for enough followers (default: fail at once).")
    var minSyncFollowersTimeoutMs: Int?
    @Option(name: .customLong("sync-timeout-ms")) var syncTimeoutMs: Int?
    @Option(name: .customLong("heartbeat-interval-ms")) var heartbeatIntervalMs: Int?
    @Option(name: .customLong("in-sync-lag-timeout-ms"), help: "A follower further behind than this is out of sync.")
    var inSyncLagTimeoutMs: Int?
    @Option(name: .customLong("primary-timeout-ms"), help: "A follower reconnects when its primary is silent this long.")
    var primaryTimeoutMs: Int?
    @Option(name: .customLong("handshake-timeout-ms"), help: "A peer must authenticate within this long.")
    var handshakeTimeoutMs: Int?
    @Option(help: "The log's append durability: buffered, os or fsync.") var durability: String?
    @Option(name: .customLong("segment-bytes")) var segmentBytes: Int?
    @Option(help: "The primary's leader epoch (default: one above its log's).") var epoch: UInt64?
    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics at http://127.0.0.1:PORT/metrics.")
    var metricsPort: Int?
    @Flag(help: "Automatic role: this node only votes and keeps no log.") var witness = false
    @Option(name: .customLong("witness-id"), help: "Automatic role: a voter that is a witness (repeat).") var witnessIDs: [UInt64] = []
    @Option(name: .customLong("election-timeout-ms"), help: "Automatic role: failure detection timeout (default 1000).")
    var electionTimeoutMs: Int?
    @Flag(name: .customLong("two-node"), help: "Automatic role, two voters and no witness: the standby promotes itself alone.")
    var twoNode = false
    @Flag(name: .customLong("timeout-only-detection"),
          help: "Automatic role: suspect the primary only after --election-timeout-ms of silence, not soon after its connection closes.")
    var timeoutOnlyDetection = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.") var logLevel: String = "info"
    /// For tests and benchmarks: each line of standard input is appended as one record with this
    /// mode (async, sync:N or sync-all), answered by "ack FIRST END" or "error MESSAGE" on standard output.
    @Option(name: .customLong("stdin-appends"), help: .hidden) var stdinAppends: String?

    func run() throws {
        ServeMemory.keepFreedMemory()
        var fromFlags = ServeSettings(
            id: id, logDirectory: logDirectory, listen: listen, peers: nil, role: role, primary: primary,
            followers: followers.isEmpty ? nil : followers, keyFile: keyFile,
            ackLevel: ackLevel, minSyncFollowers: minSyncFollowers, minSyncFollowersTimeoutMs: minSyncFollowersTimeoutMs,
            syncTimeoutMs: syncTimeoutMs, heartbeatIntervalMs: heartbeatIntervalMs, inSyncLagTimeoutMs: inSyncLagTimeoutMs,
            primaryTimeoutMs: primaryTimeoutMs, handshakeTimeoutMs: handshakeTimeoutMs, durability: durability,
            segmentBytes: segmentBytes, epoch: epoch, metricsPort: metricsPort,
            witness: witness ? true : nil, witnesses: witnessIDs.isEmpty ? nil : witnessIDs, electionTimeoutMs: electionTimeoutMs,
            twoNodeSelfPromotion: twoNode ? true : nil, timeoutOnlyDetection: timeoutOnlyDetection ? true : nil)
        if !peers.isEmpty {
            var parsed: [String: String] = [:]
            for peer in peers {
                let parts = peer.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ToolFailure.usage("--peer \(peer) is not ID=HOST:PORT") }
                parsed[parts[0]] = parts[1]
            }
            fromFlags.peers = parsed
        }
        let settings = try config.map { fromFlags.overriding(try ServeSettings.load($0)) } ?? fromFlags
        let key = try loadClusterKey(keyFile: settings.keyFile)
        let configuration = try settings.nodeConfiguration(clusterKey: key)
        guard let level = Logger.Level(rawValue: logLevel) else { throw ToolFailure.usage("--log-level \(logLevel) is not a level") }

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let metricsPort = settings.metricsPort
        let appendMode = try stdinAppends.map(Self.parseMode)
        try runBlocking {
            try await Self.serve(configuration, metricsPort: metricsPort, registry: registry, appendMode: appendMode)
        }
    }

    static func parseMode(_ text: String) throws -> ReplicationMode {
        if text == "async" { return .async }
        if text == "sync-all" { return .syncAll }
        if text.hasPrefix("sync:"), let quorum = Int(text.dropFirst(5)), quorum >= 0 { return .sync(quorum: quorum) }
        throw ToolFailure.usage("append mode \(text) is not async, sync:N or sync-all")
    }

    private static func serve(_ configuration: NodeConfiguration, metricsPort: Int?, registry: PrometheusCollectorRegistry,
                              appendMode: ReplicationMode?) async throws {
        let logger = Logger(label: "shiplog.serve")
        let node = Node(configuration: configuration, logger: Logger(label: "shiplog.node"))
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: NodeService(node: node, appendMode: appendMode), successTerminationBehavior: .gracefullyShutdownGroup,
                  serviceName: "node"),
        ]
        if let metricsPort {
            services.append(.init(service: MetricsServer(host: configuration.listenHost, port: metricsPort, registry: registry, logger: logger),
                                  serviceName: "metrics"))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            throw ToolFailure.failed("serve: \(error)")
        }
    }
}

/// The node as a service: starts it, announces the address, and on graceful shutdown stops it.
struct NodeService: Service {
    let node: Node
    let appendMode: ReplicationMode?

    func run() async throws {
        try await node.start()
        let port = node.listeningPort ?? node.configuration.listenPort
        let address = PeerAddress(host: node.configuration.listenHost, port: port)
        // Tests and benchmarks wait for this exact line.
        FileHandle.standardOutput.write(Data("listening on \(address)\n".utf8))
        if let appendMode { StdinAppender.start(node: node, mode: appendMode) }
        // Returns at SIGTERM/SIGINT (graceful shutdown) or throws when the group is cancelled:
        // either way the node stops and closes its log cleanly.
        try? await gracefulShutdown()
        try await node.stop()
    }
}

extension AckLevel: ExpressibleByArgument {}
