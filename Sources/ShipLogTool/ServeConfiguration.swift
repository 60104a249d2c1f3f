import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage

/// `shiplog serve --config FILE`: the same settings as the flags, as JSON. Flags given on the
/// command line override the file's values. The cluster key is never in the file's text
/// itself: `keyFile` names a file holding it (or the environment has SHIPLOG_CLUSTER_KEY).
///
///     {"id": 1, "logDirectory": "/var/lib/shiplog/1", "listen": "127.0.0.1:7001",
///      "peers": {"2": "127.0.0.1:7002", "3": "127.0.0.1:7003"},
///      "role": "primary", "keyFile": "/etc/shiplog/key", "ackLevel": "written"}
struct ServeSettings: Codable, Sendable {
    var id: UInt64?
    var logDirectory: String?
    /// HOST:PORT; port 0 picks a free one (printed on the "listening on" line).
    var listen: String?
    /// Node id (as a string, JSON keys being strings) to HOST:PORT.
    var peers: [String: String]?
    /// "primary", "follower" or "automatic" (elected; `peers` are the other voters).
    var role: String?
    /// The primary a follower follows.
    var primary: UInt64?
    /// The followers a primary accepts (default: every peer).
    var followers: [UInt64]?
    var keyFile: String?
    var ackLevel: AckLevel?
    var minSyncFollowers: Int?
    var minSyncFollowersTimeoutMs: Int?
    var syncTimeoutMs: Int?
    var heartbeatIntervalMs: Int?
    var inSyncLagTimeoutMs: Int?
    /// A follower closes its connection when its primary has sent nothing for this long.
    var primaryTimeoutMs: Int?
    /// A peer that has not authenticated within this long is disconnected.
    var handshakeTimeoutMs: Int?
    /// "buffered", "os" or "fsync": the durability of the log's appends.
    var durability: String?
    var segmentBytes: Int?
    var epoch: UInt64?
    var metricsPort: Int?
    /// Automatic role: this node only votes and keeps no log (implies role "automatic").
    var witness: Bool?
    /// Automatic role: the voters that are witnesses (this node too when `witness`).
    var witnesses: [UInt64]?
    /// Automatic role: the failure detector's timeout and check-quorum's (default 1000).
    var electionTimeoutMs: Int?
    /// Automatic role, exactly two voters and no witness: the standby promotes itself alone.
    var twoNodeSelfPromotion: Bool?
    /// Automatic role: suspect the primary only when the detector fires, not when its connection closes.
    var timeoutOnlyDetection: Bool?

    /// Fills in what `self` lacks from `other`.
    func overriding(_ base: ServeSettings) -> ServeSettings {
        ServeSettings(
            id: id ?? base.id, logDirectory: logDirectory ?? base.logDirectory, listen: listen ?? base.listen,
            peers: peers ?? base.peers, role: role ?? base.role, primary: primary ?? base.primary, followers: followers ?? base.followers,
            keyFile: keyFile ?? base.keyFile, ackLevel: ackLevel ?? base.ackLevel,
            minSyncFollowers: minSyncFollowers ?? base.minSyncFollowers,
            minSyncFollowersTimeoutMs: minSyncFollowersTimeoutMs ?? base.minSyncFollowersTimeoutMs,
            syncTimeoutMs: syncTimeoutMs ?? base.syncTimeoutMs, heartbeatIntervalMs: heartbeatIntervalMs ?? base.heartbeatIntervalMs,
            inSyncLagTimeoutMs: inSyncLagTimeoutMs ?? base.inSyncLagTimeoutMs,
            primaryTimeoutMs: primaryTimeoutMs ?? base.primaryTimeoutMs, handshakeTimeoutMs: handshakeTimeoutMs ?? base.handshakeTimeoutMs,
            durability: durability ?? base.durability,
            segmentBytes: segmentBytes ?? base.segmentBytes, epoch: epoch ?? base.epoch, metricsPort: metricsPort ?? base.metricsPort,
            witness: witness ?? base.witness, witnesses: witnesses ?? base.witnesses,
            electionTimeoutMs: electionTimeoutMs ?? base.electionTimeoutMs,
            twoNodeSelfPromotion: twoNodeSelfPromotion ?? base.twoNodeSelfPromotion,
            timeoutOnlyDetection: timeoutOnlyDetection ?? base.timeoutOnlyDetection)
    }

    static func load(_ path: String) throws -> ServeSettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ToolFailure.usage("cannot read the configuration file \(path)")
        }
        do {
            return try JSONDecoder().decode(ServeSettings.self, from: data)
        } catch {
            throw ToolFailure.usage("the configuration file \(path) is not valid: \(error)")
        }
    }

    /// The node's configuration; every missing or malformed setting is a usage error naming it.
    func nodeConfiguration(clusterKey: [UInt8]) throws -> NodeConfiguration {
        guard let id else { throw ToolFailure.usage("serve needs the node's id (--id)") }
        guard let logDirectory else { throw ToolFailure.usage("serve needs a log directory (--log-dir)") }
        var parsedPeers: [NodeID: PeerAddress] = [:]
        for (key, value) in peers ?? [:] {
            guard let peerID = UInt64(key), let address = PeerAddress(parsing: value) else {
                throw ToolFailure.usage("peer \(key)=\(value) is not ID=HOST:PORT")
            }
            parsedPeers[NodeID(peerID)] = address
        }
        var role: NodeConfiguration.Role
        switch self.role ?? (witness == true ? "automatic" : "primary") {
        case "automatic":
            role = .automatic(ClusterConfiguration(voters: [:]))  // filled in below, once the listen address is known
        case "primary": role = .primary
        case "follower":
            guard let primary else { throw ToolFailure.usage("a follower needs its primary's id (--primary)") }
            guard parsedPeers[NodeID(primary)] != nil else {
                throw ToolFailure.usage("the primary, node \(primary), needs an address among the peers (--peer \(primary)=HOST:PORT)")
            }
            role = .follower(of: NodeID(primary))
        case let other: throw ToolFailure.usage("role \(other) is not primary, follower or automatic")
        }
        var configuration = NodeConfiguration(id: NodeID(id), logDirectory: logDirectory, clusterKey: clusterKey, role: role)
        configuration.peers = parsedPeers
        if let listen {
            guard let address = PeerAddress(parsing: listen) else { throw ToolFailure.usage("--listen \(listen) is not HOST:PORT") }
            configuration.listenHost = address.host
            configuration.listenPort = address.port
        }
        if let followers { configuration.replication.followers = followers.map(NodeID.init) }
        if let ackLevel { configuration.replication.ackLevel = ackLevel }
        if let minSyncFollowers { configuration.replication.minSyncFollowers = minSyncFollowers }
        if let ms = minSyncFollowersTimeoutMs { configuration.replication.minSyncFollowersTimeout = .milliseconds(ms) }
        if let ms = syncTimeoutMs { configuration.replication.syncTimeout = .milliseconds(ms) }
        if let ms = heartbeatIntervalMs { configuration.replication.heartbeatInterval = .milliseconds(ms) }
        if let ms = inSyncLagTimeoutMs { configuration.replication.inSyncLagTimeout = .milliseconds(ms) }
        if let ms = primaryTimeoutMs { configuration.replication.primaryTimeout = .milliseconds(ms) }
        if let ms = handshakeTimeoutMs { configuration.handshakeTimeout = .milliseconds(ms) }
        for (name, ms) in [("min-sync-followers-timeout-ms", minSyncFollowersTimeoutMs), ("sync-timeout-ms", syncTimeoutMs),
                           ("heartbeat-interval-ms", heartbeatIntervalMs), ("in-sync-lag-timeout-ms", inSyncLagTimeoutMs),
                           ("primary-timeout-ms", primaryTimeoutMs), ("handshake-timeout-ms", handshakeTimeoutMs),
                           ("election-timeout-ms", electionTimeoutMs)] {
            let mayBeZero = name == "min-sync-followers-timeout-ms"
            if let ms, ms < 0 || (ms == 0 && !mayBeZero) { throw ToolFailure.usage("--\(name) \(ms) must be above 0") }
        }
        if case .automatic = role {
            configuration.role = .automatic(try cluster(id: NodeID(id), peers: parsedPeers, listen: configuration))
        } else if witness == true || witnesses != nil || electionTimeoutMs != nil || twoNodeSelfPromotion != nil
                    || timeoutOnlyDetection != nil {
            throw ToolFailure.usage(
                "--witness, --witness-id, --election-timeout-ms, --two-node and --timeout-only-detection need --role automatic")
        }
        if let durability {
            switch durability {
            case "buffered": configuration.logOptions.durability = .buffered
            case "os": configuration.logOptions.durability = .os
            case "fsync": configuration.logOptions.durability = .fsync
            default: throw ToolFailure.usage("durability \(durability) is not buffered, os or fsync")
            }
        }
        if let segmentBytes { configuration.logOptions.segmentBytes = segmentBytes }
        configuration.epoch = epoch
        return configuration
    }
}

extension ServeSettings {
    /// The automatic role's cluster: this node (at its listen address) and the peers vote.
    func cluster(id: NodeID, peers: [NodeID: PeerAddress], listen: NodeConfiguration) throws -> ClusterConfiguration {
        guard peers[id] == nil else { throw ToolFailure.usage("--peer \(id.rawValue) names this node itself") }
        guard !peers.isEmpty else { throw ToolFailure.usage("an automatic-role node needs the other voters (--peer ID=HOST:PORT)") }
        var voters = peers
        voters[id] = PeerAddress(host: listen.listenHost, port: listen.listenPort)
        var witnessIDs = Set((witnesses ?? []).map(NodeID.init))
        if witness == true { witnessIDs.insert(id) }
        for witness in witnessIDs where voters[witness] == nil {
            throw ToolFailure.usage("witness \(witness.rawValue) is not a voter (give it as --peer \(witness.rawValue)=HOST:PORT)")
        }
        let heartbeat = Duration.milliseconds(heartbeatIntervalMs ?? 100)
        let timeout = Duration.milliseconds(electionTimeoutMs ?? 1000)
        let cluster = ClusterConfiguration(voters: voters, witnesses: witnessIDs, heartbeatInterval: heartbeat,
                                           electionTimeout: timeout, twoNodeSelfPromotion: twoNodeSelfPromotion ?? false,
                                           suspectOnConnectionClose: !(timeoutOnlyDetection ?? false))
        do {
            try cluster.election.validate()
        } catch {
            throw ToolFailure.usage("the election settings cannot work: \(error)")
        }
        return cluster
    }
}

/// The cluster key: the bytes of `--key-file` (a trailing newline dropped), else the
/// environment's SHIPLOG_CLUSTER_KEY. Never a command-line value, which `ps` would show.
func loadClusterKey(keyFile: String?) throws -> [UInt8] {
    var key: [UInt8]
    if let keyFile {
        guard let data = FileManager.default.contents(atPath: keyFile) else {
            throw ToolFailure.usage("cannot read the key file \(keyFile)")
        }
        key = [UInt8](data)
        while let last = key.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { key.removeLast() }
    } else if let text = ProcessInfo.processInfo.environment["SHIPLOG_CLUSTER_KEY"] {
        key = Array(text.utf8)
    } else {
        throw ToolFailure.usage("no cluster key: give --key-file FILE or set SHIPLOG_CLUSTER_KEY")
    }
    guard !key.isEmpty else { throw ToolFailure.usage("the cluster key is empty") }
    return key
}

/// Runs async work from the tool's synchronous `main`, blocking the main thread until it ends
/// (signal handling and the event loops run on threads of their own).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { outcome.set(.success(try await body())) } catch { outcome.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try outcome.get()
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    func set(_ value: Result<T, any Error>) { lock.withLock { result = value } }
    func get() throws -> T { try lock.withLock { result! }.get() }
}
