/// Who is primary, decided by one pure state machine per node: epochs (Raft's terms), one
/// durable vote per epoch, pre-vote, check-quorum, ranked election timeouts, witnesses, two-node
/// self-promotion and switchover. Events in (each with `now`, monotonic), actions out; no
/// clock, no randomness but the seeded `ElectionRandom`, no I/O. etcd-io/raft's `Step` is the
/// model; the rules and their reasons are in the extensions' comments:
///
/// - `Election+Voting`: who grants what (epochs, one vote, log up to date, pre-vote, the
///   "primary alive" lease) and how a candidate counts.
/// - `Election+Follower`: heartbeats, suspicion and the ranked wait before campaigning.
/// - `Election+Primary`: heartbeats out, check-quorum, switchover.
///
/// Safety (at most one primary per epoch) rests only on: an epoch is entered durably before it
/// is acted on, a node votes at most once per epoch and durably before answering, and a win
/// needs a majority of voters. In two-node self-promotion a node wins alone, but only in epochs
/// it owns (epoch % 2 == its place among the two), so two self-promotions never share an epoch.
/// Everything else (pre-vote, the lease, ranking, check-quorum) is about liveness and about not
/// disturbing a healthy primary.
public struct Election: Sendable {
    public let configuration: ElectionConfiguration
    public let nodeID: NodeID
    public private(set) var durable: ElectionDurableState
    public internal(set) var role: Role = .follower
    /// The primary this node follows (itself when primary); nil when none is known.
    public internal(set) var primary: NodeID?

    /// This node's log end (nil for a witness, which has no log).
    var logEnd: LogEnd?
    /// The highest committed prefix seen in heartbeats (a witness votes against it).
    var knownCommit = LogEnd(nextOffset: 0, lastEpoch: nil)
    var detector: FailureDetector
    /// When the followed primary was last heard (for the lease and the detection time).
    var lastPrimaryContact: Duration?
    var suspicion: Suspicion?
    /// When the connection to the followed primary closed (nil: open, or a heartbeat came since).
    var primaryConnectionClosedAt: Duration?
    /// The latest succession ranking from the primary's heartbeats.
    var ranking: [NodeID] = []
    var random: ElectionRandom
    var campaign: Campaign?
    var leader: Leadership?
    /// The actions of the event being handled.
    var out: [Action] = []

    struct Suspicion: Sendable {
        var since: Duration
        /// When the silence began (the last heartbeat), for the logged detection time.
        var silentSince: Duration?
        var campaignAt: Duration
    }

    struct Campaign: Sendable {
        var epoch: UInt64
        var preVote: Bool
        var cause: CampaignCause
        var grants: Set<NodeID>
        var refusals: Set<NodeID> = []
        var deadline: Duration
        var suspicion: Suspicion?
    }

    /// Restarts (or starts for the first time) a node from its durable state and log end; then
    /// call `start(now:)` once. `seed` drives every random choice (the simulator's seed, or any
    /// value the shell picks, e.g. from the node id and the start time).
    public init(
        configuration: ElectionConfiguration, nodeID: NodeID, durable: ElectionDurableState,
        logEnd: LogEnd?, seed: UInt64, now: Duration
    ) throws(ElectionConfigurationError) {
        try configuration.validate()
        guard configuration.voters.contains(nodeID) else { throw .nodeNotAVoter(nodeID) }
        self.configuration = configuration
        self.nodeID = nodeID
        self.durable = durable
        self.logEnd = configuration.witnesses.contains(nodeID) ? nil : (logEnd ?? LogEnd(nextOffset: 0, lastEpoch: nil))
        self.detector = FailureDetector(configuration.detector)
        self.random = ElectionRandom(seed: seed)
    }

    public var isWitness: Bool { configuration.witnesses.contains(nodeID) }
    public var epoch: UInt64 { durable.epoch }

    /// The first event after init. The node starts as a follower knowing no primary, and waits a
    /// whole election timeout (plus its ranked delay) before campaigning, so a restarted node
    /// does not disturb a healthy cluster.
    public mutating func start(now: Duration) -> [Action] {
        run { election in
            // A log holding a newer epoch than the state file (the file was lost or is older
            // than the log): adopt it, counting this node's vote in it as cast (for itself), since
            // a vote it may have cast there is forgotten. That only makes it refuse votes in an
            // epoch that is over anyway.
            if let last = election.logEnd?.lastEpoch, last > election.durable.epoch {
                election.persist(ElectionDurableState(epoch: last, votedFor: election.nodeID))
            }
            election.detector.reset(now: now)
            election.emit(.becomeFollower(epoch: election.epoch, primary: nil))
        }
    }

    /// Time passes: heartbeats, suspicion, campaign rounds, check-quorum, switchover deadlines.
    /// Tick at least every `configuration.suggestedTickInterval`.
    public mutating func tick(now: Duration) -> [Action] {
        run { election in
            switch election.role {
            case .primary: election.primaryTick(now: now)
            case .preCandidate, .candidate: election.campaignTick(now: now)
            case .follower: election.followerTick(now: now)
            }
        }
    }

    /// A message from voter `from` (the authenticated peer of the connection it came on).
    public mutating func received(_ message: ElectionMessage, from: NodeID, now: Duration) -> [Action] {
        run { election in
            guard from != election.nodeID, election.configuration.voters.contains(from) else {
                election.emit(.log(.ignored(from: from, reason: "not a voter of this configuration")))
                return
            }
            switch message {
            case .heartbeat(let heartbeat): election.onHeartbeat(heartbeat, from: from, now: now)
            case .heartbeatResponse(let response): election.onHeartbeatResponse(response, from: from, now: now)
            case .voteRequest(let request): election.onVoteRequest(request, from: from, now: now)
            case .voteResponse(let response): election.onVoteResponse(response, from: from, now: now)
            case .timeoutNow(let timeout): election.onTimeoutNow(timeout, from: from, now: now)
            }
        }
    }

    /// The connection to voter `peer` closed. When `peer` is the primary this node follows, it is
    /// suspected `preVoteSilence` later unless a heartbeat arrives first (see
    /// `ElectionConfiguration.suspectOnConnectionClose`).
    public mutating func peerDisconnected(_ peer: NodeID, now: Duration) -> [Action] {
        run { election in election.onPrimaryConnectionClosed(peer, now: now) }
    }

    /// This node's own log end changed (appends, truncation, reset). Votes are judged against it.
    public mutating func logEndChanged(_ end: LogEnd, now: Duration) -> [Action] {
        run { election in
            guard !election.isWitness else { return }
            election.logEnd = end
            if election.role == .primary { election.checkTransfer(now: now) }
        }
    }

    /// On the primary: the committed prefix grew. Pass only what is on a majority of voters (the
    /// quorum-replicated offset, counting only once a batch of this primary's own epoch is among
    /// them, Raft §5.4.2), never the `async`-acknowledged local end: witnesses refuse candidates
    /// behind it, so an overstated commit would block the standby's promotion.
    public mutating func commitChanged(_ commit: LogEnd, now: Duration) -> [Action] {
        run { election in election.noteCommit(commit) }
    }

    /// On the primary: `node` proved itself alive (an ack or any frame), and its log end when
    /// known (from its acks). Feeds check-quorum, the ranking and the switchover.
    public mutating func followerHeard(_ node: NodeID, logEnd: LogEnd?, now: Duration) -> [Action] {
        run { election in election.noteFollower(node, logEnd: logEnd, now: now) }
    }

    /// On a follower: the primary it follows sent a replication frame (`batches`) of this epoch,
    /// as much proof that it is alive as a heartbeat (Raft's AppendEntries restart the election
    /// timer too). Needed because a follower whose log is slower than the primary's load stops
    /// reading (the shell's read pause): its heartbeats then wait in the connection behind up
    /// to the primary's in-flight cap of batches, for longer than the election timeout on a
    /// slow disk, while the batches ahead of them still arrive (Review13SlowDiskElectionTests).
    /// Only this node's own suspicion hears them: the pre-vote window (`hearsPrimary`) stays
    /// on heartbeats, so that a follower still draining a dead primary's batches from its
    /// socket does not refuse the pre-votes of the failover (the frames say the primary was
    /// alive when it sent them, which may be seconds ago at a slow disk's pace).
    /// A frame after a `peerDisconnected` came over a newer connection (nothing of a closed
    /// connection reaches the machine after its close, format.md §14): the primary outlived the
    /// close, so the close's fast suspicion ends too, as a heartbeat ends it; else a read-paused
    /// follower that reconnects campaigns `preVoteSilence` later against a healthy primary
    /// (Review14PrimaryFrameCloseTests).
    public mutating func primaryFrame(from peer: NodeID, epoch frameEpoch: UInt64, now: Duration) -> [Action] {
        run { election in
            guard election.role == .follower, election.primary == peer, frameEpoch == election.epoch else { return }
            election.detector.alive(now: now)
            election.suspicion = nil
            election.primaryConnectionClosedAt = nil
        }
    }

    /// Switchover (`shiplog switchover --to`): hand leadership to `target`.
    public mutating func transferLeadership(to target: NodeID, now: Duration) -> [Action] {
        run { election in election.startTransfer(to: target, now: now) }
    }

    private mutating func run(_ body: (inout Election) -> Void) -> [Action] {
        precondition(out.isEmpty)
        body(&self)
        defer { out = [] }
        return out
    }

    // MARK: - Shared transitions

    mutating func emit(_ action: Action) { out.append(action) }

    /// Records `state` as durable; the shell writes it before any later action of the batch.
    mutating func persist(_ state: ElectionDurableState) {
        precondition(
            state.epoch > durable.epoch || (state.epoch == durable.epoch && (durable.votedFor == nil || durable.votedFor == state.votedFor)),
            "durable state may only move forward: \(durable) -> \(state)")
        durable = state
        emit(.persist(state))
    }

    /// Moves to `newEpoch` (persisted first, with `votedFor`), leaving any primary or campaign
    /// role; then follows `newPrimary` (nil: none known yet).
    mutating func enterEpoch(_ newEpoch: UInt64, votedFor: NodeID?, from: NodeID, newPrimary: NodeID?, now: Duration) {
        precondition(newEpoch > durable.epoch)
        persist(ElectionDurableState(epoch: newEpoch, votedFor: votedFor))
        if role == .primary {
            let transferTarget = leader?.transfer?.target
            let reason: StepDownReason = transferTarget == from
                ? .leadershipTransferred(to: from, epoch: newEpoch) : .newerEpoch(newEpoch, from: from)
            stepDown(reason, now: now)
        }
        becomeFollower(of: newPrimary, now: now, announce: true)
    }

    /// Becomes a follower of `newPrimary` (nil: none) in the current epoch. A new primary, or
    /// leaving a primary or campaign role, restarts the failure detector: silence counts from
    /// now. Otherwise nothing changes here (a refused vote in a newer epoch must not push back
    /// this node's own campaign).
    mutating func becomeFollower(of newPrimary: NodeID?, now: Duration, announce: Bool = false) {
        let changed = role != .follower || primary != newPrimary
        if changed {
            detector.reset(now: now)
            role = .follower
            campaign = nil
            leader = nil
            suspicion = nil
            primaryConnectionClosedAt = nil
            primary = newPrimary
            lastPrimaryContact = newPrimary == nil ? nil : now
        }
        if changed || announce {
            emit(.becomeFollower(epoch: epoch, primary: newPrimary))
            emit(.log(.following(epoch: epoch, primary: newPrimary)))
        }
    }

    /// Whether this node hears a primary now: it is one, or it heard its primary within the
    /// pre-vote silence window.
    func hearsPrimary(now: Duration) -> Bool {
        if role == .primary { return true }
        guard primary != nil, let last = lastPrimaryContact else { return false }
        return now - last < configuration.preVoteSilence
    }

    /// The log end votes are judged against: the node's own, or for a witness the highest
    /// committed prefix it has seen (it stands in for the log a witness does not keep).
    var votingLogEnd: LogEnd { logEnd ?? knownCommit }

    mutating func noteCommit(_ commit: LogEnd) {
        if commit.isAtLeastAsUpToDate(as: knownCommit) { knownCommit = commit }
        if role == .primary, var leadership = leader, commit.isAtLeastAsUpToDate(as: leadership.commit) {
            leadership.commit = commit
            leader = leadership
        }
    }
}

extension ElectionConfiguration {
    /// How often the shell should call `tick` at least: a quarter of the finest timing, so a
    /// deadline is late by at most that much (1 ms floor).
    public var suggestedTickInterval: Duration {
        max(.milliseconds(1), min(heartbeatInterval, stagger) / 4)
    }
}
