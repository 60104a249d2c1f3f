/// How a node takes part in elections. Every node of a cluster must be given the same voters,
/// witnesses and `twoNodeSelfPromotion`; the timings may differ but should not.
public struct ElectionConfiguration: Equatable, Sendable {
    /// Every node that votes, witnesses included. A majority of these elects a primary.
    public var voters: Set<NodeID>
    /// Voters that only vote: they never campaign and store no log (`shiplog serve --witness`).
    public var witnesses: Set<NodeID>
    /// How often the primary sends heartbeats.
    public var heartbeatInterval: Duration
    /// How long without hearing a majority before a primary steps down (check-quorum); the fixed
    /// detector's timeout by default; the base of a follower's wait before campaigning.
    public var electionTimeout: Duration
    /// How a follower decides the primary is down.
    public var detector: FailureDetectorKind
    /// Ask "would you vote for me?" before bumping the epoch (Raft thesis §9.6).
    public var preVote: Bool
    /// A primary that has not heard from a majority within `electionTimeout` steps down.
    public var checkQuorum: Bool
    /// Exactly two voters, no witness: the standby promotes itself when the primary goes quiet,
    /// with no vote. This trades safety for availability (see `Election` and the README): in a
    /// partition both nodes are primaries, in different epochs; in `async` mode the old primary's
    /// writes during the partition are lost when it rejoins. Check-quorum does not apply (the
    /// primary would otherwise stop when its standby dies, which is what the pair is for).
    public var twoNodeSelfPromotion: Bool
    /// A voter grants a (pre-)vote only when it has not heard from a primary for this long.
    /// Default 2 × `heartbeatInterval`: see `Election` for why shorter than the election timeout.
    public var preVoteSilence: Duration
    /// The extra wait per place in the succession ranking. Default max(heartbeatInterval / 2, 20 ms).
    public var stagger: Duration
    /// A follower whose connection to its primary closes suspects the primary `preVoteSilence`
    /// later unless a heartbeat arrives first, without waiting for the detector. A primary killed
    /// or stopped has its sockets closed by its kernel at once, so this is the common failure's
    /// fast path; a silent one (power loss, a partition) is still left to the detector. Why
    /// `preVoteSilence`: by then every voter that lost the primary too has been silent long
    /// enough to grant a pre-vote, and one that still hears it refuses, so a connection that
    /// merely broke costs no election. Ignored with `twoNodeSelfPromotion`, and without both
    /// `preVote` and `checkQuorum`, where no voter refuses.
    public var suspectOnConnectionClose: Bool
    /// How long a (pre-)campaign round waits for answers before it starts over.
    /// Default max(2 × heartbeatInterval, 2 × stagger).
    public var campaignRoundTimeout: Duration

    public init(
        voters: Set<NodeID>, witnesses: Set<NodeID> = [],
        heartbeatInterval: Duration = .milliseconds(100), electionTimeout: Duration = .seconds(1),
        detector: FailureDetectorKind? = nil, preVote: Bool = true, checkQuorum: Bool = true,
        twoNodeSelfPromotion: Bool = false, preVoteSilence: Duration? = nil, stagger: Duration? = nil,
        campaignRoundTimeout: Duration? = nil, suspectOnConnectionClose: Bool = true
    ) {
        self.voters = voters
        self.witnesses = witnesses
        self.heartbeatInterval = heartbeatInterval
        self.electionTimeout = electionTimeout
        self.detector = detector ?? .fixedTimeout(electionTimeout)
        self.preVote = preVote
        self.checkQuorum = checkQuorum
        self.twoNodeSelfPromotion = twoNodeSelfPromotion
        self.preVoteSilence = preVoteSilence ?? heartbeatInterval * 2
        let stagger = stagger ?? max(heartbeatInterval / 2, .milliseconds(20))
        self.stagger = stagger
        self.campaignRoundTimeout = campaignRoundTimeout ?? max(heartbeatInterval * 2, stagger * 2)
        self.suspectOnConnectionClose = suspectOnConnectionClose
    }

    /// Voters that may become primary, in id order.
    public var candidates: [NodeID] { voters.subtracting(witnesses).sorted() }

    /// Votes needed to win: a majority of voters, or 1 in two-node self-promotion.
    public var majority: Int { twoNodeSelfPromotion ? 1 : voters.count / 2 + 1 }

    public func validate() throws(ElectionConfigurationError) {
        guard !voters.isEmpty else { throw .noVoters }
        guard witnesses.isSubset(of: voters) else { throw .witnessNotAVoter(witnesses.subtracting(voters).sorted()) }
        guard !candidates.isEmpty else { throw .onlyWitnesses }
        guard voters.count <= ElectionMessageCodec.rankingCountMax else { throw .tooManyVoters(voters.count) }
        guard heartbeatInterval > .zero, electionTimeout > heartbeatInterval else {
            throw .timing("electionTimeout \(electionTimeout) must exceed heartbeatInterval \(heartbeatInterval) > 0")
        }
        guard preVoteSilence > .zero, (preVoteSilence < electionTimeout), stagger > .zero, campaignRoundTimeout > .zero else {
            throw .timing("preVoteSilence must be in (0, electionTimeout); stagger and campaignRoundTimeout > 0")
        }
        if twoNodeSelfPromotion {
            guard voters.count == 2, witnesses.isEmpty else { throw .twoNodeModeNeedsTwoVotersWithoutWitness }
        }
    }
}

public enum ElectionConfigurationError: Error, Equatable, Sendable {
    case noVoters
    case witnessNotAVoter([NodeID])
    case onlyWitnesses
    case tooManyVoters(Int)
    case timing(String)
    case twoNodeModeNeedsTwoVotersWithoutWitness
    case nodeNotAVoter(NodeID)
}
