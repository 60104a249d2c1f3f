import ShipLogProtocol

/// An automatic-role cluster (issue 10): every node runs an election and the nodes choose the
/// primary among themselves; a follower promotes itself when the primary goes quiet. Used as
/// `NodeConfiguration.Role.automatic(_:)`. Every node of the cluster must be given the same
/// `voters`, `witnesses` and `twoNodeSelfPromotion`; the timings should agree too.
///
///     let cluster = ClusterConfiguration(voters: [NodeID(1): a1, NodeID(2): a2, NodeID(3): a3],
///                                        heartbeatInterval: .milliseconds(50),
///                                        electionTimeout: .milliseconds(300))
///     let node = Node(configuration: NodeConfiguration(id: NodeID(1), logDirectory: dir,
///                                                      clusterKey: key, role: .automatic(cluster)))
public struct ClusterConfiguration: Sendable, Equatable {
    /// Every voter, this node and witnesses included, with the address it listens on. The node's
    /// own entry is not dialled (it listens on `NodeConfiguration.listenHost`/`listenPort`); of
    /// two nodes, the one with the lower id dials the other.
    public var voters: [NodeID: PeerAddress]
    /// Voters that only vote and store no log (`shiplog serve --witness`).
    public var witnesses: Set<NodeID>
    /// How often the primary sends heartbeats (election and replication alike).
    public var heartbeatInterval: Duration
    /// The fixed failure detector's timeout, and how long a primary may go without hearing a
    /// majority before it steps down (check-quorum).
    public var electionTimeout: Duration
    /// How a follower decides the primary is down; nil: a fixed timeout of `electionTimeout`.
    public var detector: FailureDetectorKind?
    /// Exactly two voters and no witness: the standby promotes itself alone (see
    /// `ElectionConfiguration.twoNodeSelfPromotion` for what a partition can then do).
    public var twoNodeSelfPromotion: Bool
    /// Suspect the primary soon after its connection closes (two heartbeat intervals), not only
    /// when the detector fires; see `ElectionConfiguration.suspectOnConnectionClose`.
    public var suspectOnConnectionClose: Bool
    /// Seeds the election's random choices; nil draws one from the system's generator.
    public var seed: UInt64?

    public init(voters: [NodeID: PeerAddress], witnesses: Set<NodeID> = [], heartbeatInterval: Duration = .milliseconds(100),
                electionTimeout: Duration = .seconds(1), detector: FailureDetectorKind? = nil,
                twoNodeSelfPromotion: Bool = false, suspectOnConnectionClose: Bool = true, seed: UInt64? = nil) {
        self.voters = voters
        self.witnesses = witnesses
        self.heartbeatInterval = heartbeatInterval
        self.electionTimeout = electionTimeout
        self.detector = detector
        self.twoNodeSelfPromotion = twoNodeSelfPromotion
        self.suspectOnConnectionClose = suspectOnConnectionClose
        self.seed = seed
    }

    /// The election settings every node derives alike.
    public var election: ElectionConfiguration {
        ElectionConfiguration(voters: Set(voters.keys), witnesses: witnesses, heartbeatInterval: heartbeatInterval,
                              electionTimeout: electionTimeout, detector: detector, twoNodeSelfPromotion: twoNodeSelfPromotion,
                              suspectOnConnectionClose: suspectOnConnectionClose)
    }

    /// The node machine's settings: `replication` with this cluster's heartbeat interval.
    func machineConfiguration(replication base: ReplicationConfiguration) -> NodeMachineConfiguration {
        var replication = base
        replication.heartbeatInterval = heartbeatInterval
        replication.followers = []
        return NodeMachineConfiguration(election: election, replication: replication)
    }

    /// How often the machine is ticked: its election's suggestion, and at least four times per
    /// replication heartbeat.
    var tickInterval: Duration { min(election.suggestedTickInterval, heartbeatInterval / 4) }
}

/// Why an automatic-role node stopped or refused a request; each case names what and where.
public enum ClusterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The election state file exists but cannot be trusted (format.md §13.2): the node does not
    /// start, since treating it as "never voted" could let it vote twice in one epoch.
    case damagedElectionState(path: String, reason: String)
    /// Writing the election state file, or a log operation the state machine has no failure event
    /// for (a truncate, reset or fdatasync), failed, or the log refuses every write after an
    /// append failed (`LogError.failed`): the node stopped taking part (fail-stop).
    case nodeFailed(node: NodeID, reason: String)
    /// `transferLeadership(to:)` was refused (this node is not primary, or the target cannot be).
    case switchoverRefused(target: NodeID, reason: String)
    /// The target did not take over within the allowed time (the primary resumed appends).
    case switchoverFailed(target: NodeID, reason: String)

    public var description: String {
        switch self {
        case .damagedElectionState(let path, let reason):
            "the election state file \(path) is damaged (\(reason)); remove it only if this node never voted"
        case .nodeFailed(let node, let reason): "\(node) stopped: \(reason)"
        case .switchoverRefused(let target, let reason): "switchover to \(target) refused: \(reason)"
        case .switchoverFailed(let target, let reason): "switchover to \(target) failed: \(reason)"
        }
    }
}
