import Metrics
import ShipLogProtocol
import ShipLogStorage

/// A host and port another node listens on.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    /// Parses `HOST:PORT` (`[::1]:PORT` for IPv6); nil when it is not that shape.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Everything a `Node` needs: who it is, where its log lives, whom it talks to and how.
public struct NodeConfiguration: Sendable {
    /// What the node does: a fixed role, or chosen by election among the cluster's voters.
    public enum Role: Sendable, Equatable, CustomStringConvertible {
        case primary
        case follower(of: NodeID)
        /// The role changes by election (issue 10): see `ClusterConfiguration`.
        case automatic(ClusterConfiguration)
        public var description: String {
            switch self {
            case .primary: "primary"
            case .follower(let primary): "follower of \(primary)"
            case .automatic(let cluster): "automatic, voters \(cluster.voters.keys.sorted().map(\.rawValue))"
            }
        }
    }

    public var id: NodeID
    public var logDirectory: String
    /// The address to listen on: `127.0.0.1` or `::1` for tests; port 0 picks a free port
    /// (read it back from `Node.listeningPort`).
    public var listenHost: String = "127.0.0.1"
    public var listenPort: Int = 0
    /// Where the other nodes listen. A follower connects to its primary's entry; a primary
    /// accepts as followers the nodes named here (any other node with the key may only ask
    /// for status).
    public var peers: [NodeID: PeerAddress] = [:]
    /// The shared secret every node proves before any log data flows (HMAC-SHA256).
    public var clusterKey: [UInt8]
    public var role: Role
    /// When empty on a primary, `replication.followers` becomes every peer.
    public var replication: ReplicationConfiguration = ReplicationConfiguration()
    public var logOptions: LogOptions = LogOptions()
    /// The primary's leader epoch; nil picks one above every epoch in its log.
    public var epoch: UInt64?
    /// Between two ticks of the state machine's clock; nil means a quarter of the heartbeat interval.
    public var tickInterval: Duration?
    /// Reconnect delays of a follower after losing its primary: doubling from the first to the last.
    public var reconnectBackoff: ClosedRange<Duration> = .milliseconds(50) ... .seconds(1)
    /// A connection whose peer has not proved the cluster key within this long is closed, so
    /// peers without the key cannot hold connections open (until then frames are limited to 1 KiB).
    public var handshakeTimeout: Duration = .seconds(5)
    /// Where an automatic-role node's election counters go; nil: the process's bootstrapped
    /// `MetricsSystem` (tests count through their own factory without bootstrapping one).
    var clusterMetricsFactory: (any MetricsFactory)?

    public init(id: NodeID, logDirectory: String, clusterKey: [UInt8], role: Role) {
        self.id = id
        self.logDirectory = logDirectory
        self.clusterKey = clusterKey
        self.role = role
    }
}

/// Why a node refused or failed a request; each case says what and names the node or offsets.
public enum NodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Appends go to the primary; this node follows `primary`.
    case notPrimary(node: NodeID, primary: NodeID)
    /// The records were written locally at `offsets` but the followers did not acknowledge them;
    /// `followers` says where each configured follower stood at that moment.
    case replicationFailed(offsets: Range<UInt64>, ReplicationError, followers: String)
    /// The node is not running (never started, or stopped).
    case notRunning(node: NodeID)
    /// The configuration cannot work (a follower without its primary's address, say).
    case invalidConfiguration(String)
    /// The local log refused the append.
    case logFailure(offsets: Range<UInt64>?, message: String)
    /// An automatic-role node that cannot take the append now and knows no primary to send it
    /// to: an election is under way (`.notPrimary(primary: nil)`), it is becoming primary, or a
    /// switchover is handing leadership to another node. Retry shortly.
    case unavailable(node: NodeID, NodeAppendError)

    public var description: String {
        switch self {
        case .notPrimary(let node, let primary):
            "\(node) is a follower: send appends to its primary, \(primary)"
        case .replicationFailed(let offsets, let error, let followers):
            "offsets \(offsets.lowerBound)..<\(offsets.upperBound) are in the primary's log but not acknowledged: \(error.explained)"
                + (followers.isEmpty ? "" : " (\(followers))")
        case .notRunning(let node):
            "\(node) is not running"
        case .invalidConfiguration(let message):
            "invalid node configuration: \(message)"
        case .logFailure(let offsets, let message):
            "the local log failed\(offsets.map { " at offsets \($0.lowerBound)..<\($0.upperBound)" } ?? ""): \(message)"
        case .unavailable(let node, .becomingPrimary):
            "\(node) won an election and starts accepting appends in a moment: retry"
        case .unavailable(let node, .switchoverInProgress(let target)):
            "\(node) is handing leadership to \(target): retry there"
        case .unavailable(let node, let reason):
            "\(node) knows no primary now (an election is under way): retry shortly (\(reason))"
        }
    }
}

extension ReplicationError {
    var explained: String {
        switch self {
        case .notEnoughFollowers(let inSync, let required):
            "\(inSync) follower(s) in sync, \(required) required"
        case .timedOut(let through, let acknowledgedBy, let required):
            "timed out waiting for offsets below \(through): acknowledged by \(acknowledgedBy) follower(s), \(required) required"
        case .notPrimary:
            "this node stopped being primary before the followers acknowledged"
        }
    }
}
