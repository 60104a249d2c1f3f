import ShipLogStorage

/// One node of a cluster as a single pure state machine: it owns the node's `Election` and,
/// depending on the role the election gives it, a `PrimaryReplicator` or a `FollowerReplicator`,
/// and makes every decision that crosses them. Events in (each with `now`), actions out, for the
/// shell (the NIO node, or the simulator) to carry out in order; no I/O, no clock, no randomness
/// but the election's seeded generator. Peers are named by `NodeID`: the shell keeps at most one
/// authenticated connection per peer, carrying election and replication frames alike.
///
/// The decisions it makes, and where:
/// - Roles (`NodeMachine+Roles`): a `becomePrimary` creates a `PrimaryReplicator` in the new
///   epoch from the log as it stands once every pending log write has finished (so the
///   replicator's view never moves back); a `becomeFollower(primary)` starts a replication
///   session towards that primary once the connection is up and the log is idle; `stepDown`
///   stops the replicator, which fails every waiting append with `.notPrimary`.
/// - Appends (`NodeMachine+Appends`): refused at once on a non-primary, naming the known
///   primary; every append this node makes carries its primary epoch; an append written after
///   its epoch ended fails.
/// - Replication and the election (`NodeMachine+Replication`): only acks of the current
///   primary session count as `followerHeard`; `commitChanged` gets the majority-replicated
///   offset, and only once it includes a batch of the primary's own epoch (Raft §5.4.2).
/// - Durability: the election's `.persist` is moved to the front of each batch of actions, so
///   the vote or epoch is on disk before anything of the same event leaves the node.
public struct NodeMachine: Sendable {
    public let configuration: NodeMachineConfiguration
    public let nodeID: NodeID
    public internal(set) var election: Election
    /// The primary's replicator while this node serves as primary.
    public internal(set) var primary: PrimaryReplicator?
    /// The replication session towards the primary this node follows.
    var session: Session?
    /// The log as last reported.
    public internal(set) var log: NodeLog
    /// Connections up, by peer; each connection's number is unique over the machine's life.
    var links: [NodeID: ConnectionID] = [:]
    var peersByConnection: [ConnectionID: NodeID] = [:]
    /// The reason of the goodbye each peer sent on its current connection, if it sent one.
    var goodbyes: [NodeID: CloseReason] = [:]
    var nextConnection: UInt64 = 1
    var nextSession: UInt64 = 1
    /// Log writes handed to the shell and not reported yet, in order.
    var logOps: [LogOp] = []
    /// Syncs handed to the shell, by the session that asked (0: none).
    var syncs: [UInt64] = []
    var pendingAppends: [AppendID: PendingAppend] = [:]
    /// Switchover target while appends are paused.
    var paused: NodeID?
    var transferTarget: NodeID?
    /// The previous primary's log end as its last heartbeat or batch showed it.
    var lastKnownPrimaryEnd: (node: NodeID, epoch: UInt64, nextOffset: UInt64)?
    /// The commit last passed to the election.
    var committed: LogEnd?
    var announced: NodeRoleChange?
    var out: [Action] = []

    struct Session: Sendable {
        var id: UInt64
        var primary: NodeID
        var epoch: UInt64
        var replicator: FollowerReplicator
    }

    enum LogOp: Sendable, Equatable {
        case local(AppendID)
        case batches(session: UInt64)
        /// A truncate or reset ordered by `primary` in `epoch`.
        case cut(session: UInt64, primary: NodeID, epoch: UInt64)
    }

    struct PendingAppend: Sendable {
        var mode: ReplicationMode
        var epoch: UInt64
    }

    /// Restarts (or starts) a node from what survived: its election state file and its log
    /// (nil for a witness, which keeps none). Then call `start(now:)` once.
    public init(configuration: NodeMachineConfiguration, nodeID: NodeID, durable: ElectionDurableState, log: NodeLog?,
                seed: UInt64, now: Duration) throws(ElectionConfigurationError) {
        self.configuration = configuration
        self.nodeID = nodeID
        let log = log ?? .empty
        self.log = log
        self.election = try Election(configuration: configuration.election, nodeID: nodeID, durable: durable,
                                     logEnd: log.end, seed: seed, now: now)
    }

    /// A vote-only node: no log, never primary.
    public var isWitness: Bool { election.isWitness }
    /// The newest epoch this node has seen (durable).
    public var epoch: UInt64 { election.epoch }

    /// The role, epoch and primary as the application sees them.
    public var role: NodeRoleChange {
        if isWitness { return NodeRoleChange(role: .witness, epoch: epoch, primary: election.primary) }
        if primary != nil { return NodeRoleChange(role: .primary, epoch: epoch, primary: nodeID) }
        if election.role == .candidate { return NodeRoleChange(role: .candidate, epoch: epoch, primary: nil) }
        return NodeRoleChange(role: .follower, epoch: epoch, primary: election.primary == nodeID ? nil : election.primary)
    }

    /// The follower's replicator while a replication session is running.
    public var followerReplicator: FollowerReplicator? { session?.replicator }

    // MARK: - Events

    /// The first event after init: the node starts as a follower knowing no primary.
    public mutating func start(now: Duration) -> [Action] {
        run(now) { $0.applyElection($0.election.start(now: now), now: now) }
    }

    /// Time passes: heartbeats, failure detection, campaigns, sync timeouts. Call at least every
    /// `configuration.election.suggestedTickInterval` and every replication heartbeat interval.
    public mutating func tick(now: Duration) -> [Action] {
        run(now) { node in
            node.applyElection(node.election.tick(now: now), now: now)
            if node.primary != nil { node.translatePrimary(node.primary!.tick(now: now), now: now) }
            if node.session != nil { node.translateFollower(node.session!.replicator.tick(now: now), now: now) }
        }
    }

    /// An authenticated connection to `peer` is up.
    public mutating func peerConnected(_ peer: NodeID, now: Duration) -> [Action] {
        run(now) { node in
            guard peer != node.nodeID, node.configuration.election.voters.contains(peer) else { return }
            if node.links[peer] != nil { node.linkDown(peer, now: now) }
            node.goodbyes[peer] = nil
            let connection = ConnectionID(node.nextConnection)
            node.nextConnection += 1
            node.links[peer] = connection
            node.peersByConnection[connection] = peer
            if node.primary != nil, node.keepsLog(peer) {
                node.translatePrimary(node.primary!.followerAuthenticated(connection, node: peer, now: now), now: now)
            }
        }
    }

    /// The connection to `peer` closed (either side, or the machine's own `.disconnect`).
    public mutating func peerDisconnected(_ peer: NodeID, now: Duration) -> [Action] {
        run(now) { node in
            // The election hears of a connection that ended unannounced (a crash, a kill, the
            // network): what a dead primary looks like (a clean shutdown it hears of from the
            // goodbye). Not of one this node closed itself, nor of one whose peer said why (a
            // primary stepping down says `notPrimary`: a new one is being elected, which a
            // suspicion would race).
            let closedByPeer = node.links[peer] != nil
            let goodbye = node.goodbyes.removeValue(forKey: peer)
            node.linkDown(peer, now: now)
            if closedByPeer && goodbye == nil {
                node.applyElection(node.election.peerDisconnected(peer, now: now), now: now)
            }
        }
    }

    /// A frame from `peer` on its current connection.
    public mutating func received(_ frame: Frame, from peer: NodeID, now: Duration) -> [Action] {
        run(now) { node in node.route(frame, from: peer, now: now) }
    }

    /// Switchover (`shiplog switchover --to`): hand leadership to `target` once it has caught up.
    public mutating func transferLeadership(to target: NodeID, now: Duration) -> [Action] {
        run(now) { node in
            node.transferTarget = target
            node.applyElection(node.election.transferLeadership(to: target, now: now), now: now)
        }
    }

    /// Retention removed segments below `firstOffset`.
    public mutating func logRetained(log: NodeLog, now: Duration) -> [Action] {
        run(now) { node in
            node.log = log
            if node.primary != nil { node.translatePrimary(node.primary!.logRetained(firstOffset: log.firstOffset, now: now), now: now) }
        }
    }

    /// Runs one event: the body's actions, then whatever the new state allows (a deferred
    /// promotion or session), then the role announcement; persists go first.
    mutating func run(_ now: Duration, _ body: (inout NodeMachine) -> Void) -> [Action] {
        precondition(out.isEmpty)
        body(&self)
        settle(now: now)
        let current = role
        if current != announced {
            announced = current
            out.append(.roleChanged(current))
        }
        defer { out = [] }
        return Self.persistFirst(out)
    }

    /// The election's persists, coalesced into the last (each supersedes the one before), ahead
    /// of everything else: nothing of this event may leave the node before its vote is durable.
    static func persistFirst(_ actions: [Action]) -> [Action] {
        var last: ElectionDurableState?
        var rest: [Action] = []
        rest.reserveCapacity(actions.count)
        for action in actions {
            if case .persist(let state) = action { last = state } else { rest.append(action) }
        }
        guard let state = last else { return rest }
        return [.persist(state)] + rest
    }

    func keepsLog(_ peer: NodeID) -> Bool { !configuration.election.witnesses.contains(peer) }
}
