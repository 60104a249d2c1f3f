import ShipLogStorage

/// What a node's composite state machine (`NodeMachine`) is configured with. Every node of a
/// cluster must agree on `election.voters`, `election.witnesses` and the two-node mode.
public struct NodeMachineConfiguration: Equatable, Sendable {
    public var election: ElectionConfiguration
    /// The replication settings a primary uses. `followers` is filled in by the machine: every
    /// voter that keeps a log (not a witness) other than the node itself.
    public var replication: ReplicationConfiguration
    public init(election: ElectionConfiguration, replication: ReplicationConfiguration) {
        self.election = election
        self.replication = replication
    }

    /// Voters needed for a majority, whatever the election mode (two-node self-promotion wins
    /// elections alone but commits, for a witness's sake, only what both nodes hold).
    public var majorityOfVoters: Int { election.voters.count / 2 + 1 }

    /// The follower quorum of a sync append that a majority holds: majority − 1 followers (the
    /// primary is the rest of the majority).
    public var majorityQuorum: ReplicationMode { .sync(quorum: majorityOfVoters - 1) }
}

/// The node's log as the shell last saw it, reported with every log event.
public struct NodeLog: Equatable, Sendable {
    public var firstOffset: UInt64
    /// The offset the next record would get: everything below is written (in the kernel at least).
    public var nextOffset: UInt64
    /// The leader-epoch checkpoint (`SegmentLog.epochHistory`).
    public var epochs: EpochHistory
    /// Everything below is fdatasynced.
    public var durableNextOffset: UInt64
    /// A monotone count of stored bytes appended (for lag in bytes; 0 when unknown).
    public var endBytes: Int64

    public init(firstOffset: UInt64, nextOffset: UInt64, epochs: EpochHistory, durableNextOffset: UInt64, endBytes: Int64 = 0) {
        precondition(firstOffset <= nextOffset && durableNextOffset <= nextOffset, "log offsets out of order")
        self.firstOffset = firstOffset
        self.nextOffset = nextOffset
        self.epochs = epochs
        self.durableNextOffset = durableNextOffset
        self.endBytes = endBytes
    }

    public static let empty = NodeLog(firstOffset: 0, nextOffset: 0, epochs: EpochHistory(), durableNextOffset: 0)

    public var end: LogEnd {
        LogEnd(nextOffset: nextOffset, lastEpoch: nextOffset > firstOffset ? epochs.lastEpoch : nil)
    }

    public var view: PrimaryReplicator.LogView {
        .init(firstOffset: firstOffset, nextOffset: nextOffset, epochs: epochs)
    }
}

/// The part a node plays, as the application observes it.
public enum NodeRole: Equatable, Sendable {
    /// Accepts appends in `epoch`.
    case primary
    /// Follows `primary` (nil: none known yet).
    case follower
    /// Campaigning for `epoch`: appends fail, no primary is known.
    case candidate
    /// A vote-only node: never primary, stores no log.
    case witness
}

/// A role change, for the application's stream of roles and for `shiplog status`.
public struct NodeRoleChange: Equatable, Sendable {
    public var role: NodeRole
    public var epoch: UInt64
    /// The primary this node follows (itself when primary); nil when none is known.
    public var primary: NodeID?
    public init(role: NodeRole, epoch: UInt64, primary: NodeID?) {
        self.role = role
        self.epoch = epoch
        self.primary = primary
    }
}

/// Why an append did not succeed. An append refused by a node that is not primary fails at once
/// and names the primary when the node knows it, so a client goes there instead of waiting.
public enum NodeAppendError: Error, Equatable, Sendable {
    /// This node is not the primary; `primary` is the one it follows (nil: none known).
    case notPrimary(primary: NodeID?)
    /// This node won an election and starts accepting appends once its log's pending writes
    /// have finished (a few milliseconds): retry here.
    case becomingPrimary
    /// A switchover to `to` is in progress: retry there.
    case switchoverInProgress(to: NodeID)
    /// Written locally, but not acknowledged by enough followers (the records stay in the log).
    case replication(ReplicationError)
    /// The local log refused the write.
    case localFailure(String)
}

/// What happened, for the shell's log and metrics.
public enum NodeEvent: Equatable, Sendable {
    case election(Election.ElectionEvent)
    /// This node became primary while the previous primary's log (as its last heartbeat or
    /// batch showed it) reached beyond this node's: those offsets, written in `async` mode or not
    /// acknowledged at all, are given up (issue 10: "the offset range given up").
    case asyncWritesGivenUp(previousPrimary: NodeID, previousEpoch: UInt64, offsets: Range<UInt64>)
    /// The primary ordered this node to cut its log: these offsets (written by a deposed
    /// primary, never on a majority) are discarded.
    case divergentSuffixDiscarded(offsets: Range<UInt64>, primary: NodeID, epoch: UInt64)
    /// A frame that this node's role cannot use was dropped (a late frame of an ended session).
    case ignored(from: NodeID, reason: String)
    /// This node won its election and waits for its log's pending writes before serving.
    case promotionWaitingForLog(epoch: UInt64, pendingWrites: Int)
}
