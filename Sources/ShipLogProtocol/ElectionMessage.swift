/// What the election state machines (`Election`) of two nodes say to each other (format.md §13).
/// The integrator carries each message inside a frame; `ElectionMessageCodec` is its only
/// encoder and decoder. The sender is not in the message: it is the authenticated peer of the
/// connection the message came on (`Election.received(_:from:now:)`).
public enum ElectionMessage: Equatable, Sendable {
    /// Candidate → voter: vote for me (or, with `preVote`, would you vote for me?).
    case voteRequest(VoteRequest)
    /// Voter → candidate.
    case voteResponse(VoteResponse)
    /// Primary → every other voter (witnesses too), every heartbeat interval.
    case heartbeat(Heartbeat)
    /// Voter → primary: the answer to a heartbeat; proves the voter alive for check-quorum.
    case heartbeatResponse(HeartbeatResponse)
    /// Primary → the switchover target once it is caught up: campaign now, skipping pre-vote.
    case timeoutNow(TimeoutNow)

    public struct VoteRequest: Equatable, Sendable {
        /// The epoch the candidate asks votes for. For a pre-vote, the epoch it would campaign in
        /// (its own epoch + 1, not yet adopted by anyone).
        public var epoch: UInt64
        /// The candidate's log end: voters grant only when it is at least as up to date as theirs.
        public var logEnd: LogEnd
        /// A pre-vote changes no state on the voter (no epoch adopted, no vote recorded).
        public var preVote: Bool
        /// Set by a candidate that campaigns on `timeoutNow`: voters grant even while they still
        /// hear the primary, because the primary itself asked for the election.
        public var leadershipTransfer: Bool
        public init(epoch: UInt64, logEnd: LogEnd, preVote: Bool, leadershipTransfer: Bool = false) {
            self.epoch = epoch
            self.logEnd = logEnd
            self.preVote = preVote
            self.leadershipTransfer = leadershipTransfer
        }
    }

    public struct VoteResponse: Equatable, Sendable {
        /// When granted: the request's epoch. When refused: the voter's own epoch, so a candidate
        /// that is behind learns the newer epoch.
        public var epoch: UInt64
        public var granted: Bool
        /// Echoes the request, so a late pre-vote answer is never counted as a vote.
        public var preVote: Bool
        public var reason: VoteReason
        /// The primary the voter currently hears from (nil when it hears none): a pre-candidate
        /// refused with `.primaryAlive` follows it instead of campaigning again.
        public var primary: NodeID?
        public init(epoch: UInt64, granted: Bool, preVote: Bool, reason: VoteReason, primary: NodeID?) {
            self.epoch = epoch
            self.granted = granted
            self.preVote = preVote
            self.reason = reason
            self.primary = primary
        }
    }

    /// Why a vote was granted or refused (format.md §13.1 gives the byte values).
    public enum VoteReason: UInt8, Sendable, Equatable, CaseIterable {
        case granted = 0
        /// The request's epoch is older than (or, for a pre-vote, not newer than) the voter's.
        case staleEpoch = 1
        /// The voter already voted for another candidate in this epoch.
        case alreadyVoted = 2
        /// The candidate's log is less up to date than the voter's (last epoch, then next offset).
        case logBehind = 3
        /// The voter heard from a primary within the pre-vote silence window.
        case primaryAlive = 4
        /// The candidate is not a voter of the voter's configuration, or is a witness.
        case notAVoter = 5
    }

    public struct Heartbeat: Equatable, Sendable {
        /// The primary's epoch.
        public var epoch: UInt64
        /// The end of the primary's committed prefix: offsets below `commit.nextOffset` are on a
        /// majority of voters, and `commit.lastEpoch` is the epoch of the batch holding the last of
        /// them. A witness votes against candidates less up to date than the highest it has seen.
        public var commit: LogEnd
        /// The succession ranking: the primary's followers (witnesses excluded), most up to date
        /// first, ties by id. A follower's place here scales its election timeout.
        public var ranking: [NodeID]
        public init(epoch: UInt64, commit: LogEnd, ranking: [NodeID]) {
            self.epoch = epoch
            self.commit = commit
            self.ranking = ranking
        }
    }

    public struct HeartbeatResponse: Equatable, Sendable {
        /// The voter's epoch (newer than the heartbeat's when the sender is a deposed primary).
        public var epoch: UInt64
        /// The voter's log end (nil for a witness, which has no log): feeds the ranking and the
        /// switchover's catch-up check.
        public var logEnd: LogEnd?
        public init(epoch: UInt64, logEnd: LogEnd?) {
            self.epoch = epoch
            self.logEnd = logEnd
        }
    }

    public struct TimeoutNow: Equatable, Sendable {
        /// The sending primary's epoch.
        public var epoch: UInt64
        public init(epoch: UInt64) { self.epoch = epoch }
    }
}

extension LogEnd {
    /// Raft's "at least as up to date" (§5.4.1): the later last epoch wins, then the longer log.
    /// An empty log (no batch) counts as last epoch 0.
    public func isAtLeastAsUpToDate(as other: LogEnd) -> Bool {
        let mine = lastEpoch ?? 0
        let theirs = other.lastEpoch ?? 0
        return mine > theirs || (mine == theirs && nextOffset >= other.nextOffset)
    }
}
