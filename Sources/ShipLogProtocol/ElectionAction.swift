extension Election {
    /// What the shell must do, in order. A `.persist` must be durable (the state file written
    /// and fsynced, format.md §13.2) before the shell carries out any later action of the same
    /// batch: a vote sent before it is durable could be cast again after a crash.
    public enum Action: Equatable, Sendable {
        case persist(ElectionDurableState)
        case send(ElectionMessage, to: NodeID)
        /// This node is now the primary of `epoch`: start a PrimaryReplicator at this epoch and
        /// accept appends (unless paused).
        case becomePrimary(epoch: UInt64)
        /// This node is not primary; it follows `primary` in `epoch` (nil: none known, appends
        /// fail with "no primary"). Emitted whenever the epoch or the known primary changes.
        case becomeFollower(epoch: UInt64, primary: NodeID?)
        /// The primary stops being primary: fail waiting appends, stop its replicator. A
        /// `.becomeFollower` follows in the same batch.
        case stepDown(StepDownReason)
        /// Switchover: refuse new appends (they fail at once naming the target) until
        /// `.resumeAppends`, or until this node steps down.
        case pauseAppends
        case resumeAppends
        /// For the shell's log and metrics.
        case log(ElectionEvent)
    }

    public enum StepDownReason: Equatable, Sendable {
        /// Check-quorum: no majority heard within the election timeout.
        case lostQuorum(heard: Int, needed: Int)
        /// A message from `from` showed a newer epoch.
        case newerEpoch(UInt64, from: NodeID)
        /// Switchover to `to` completed (it campaigned in a newer epoch).
        case leadershipTransferred(to: NodeID, epoch: UInt64)
    }

    public enum CampaignCause: Equatable, Sendable {
        /// The failure detector suspected the primary.
        case primarySuspected(NodeID)
        /// No primary was known for the election timeout (startup, after a step-down).
        case noPrimary
        /// The previous round got no majority in time (split vote, lost messages).
        case retry
        /// The primary sent `timeoutNow` (switchover).
        case leadershipTransfer(from: NodeID)
    }

    /// What happened, with the timings a failover is judged by.
    public enum ElectionEvent: Equatable, Sendable {
        /// The connection to the followed primary closed; it is suspected `preVoteSilence` later
        /// unless a heartbeat arrives first (`suspectOnConnectionClose`).
        case primaryConnectionClosed(NodeID, epoch: UInt64)
        /// The detector (or a closed connection) made this node suspect the primary `silentFor`
        /// after its last heartbeat.
        case primarySuspected(NodeID, epoch: UInt64, silentFor: Duration)
        case campaignStarted(epoch: UInt64, preVote: Bool, cause: CampaignCause)
        /// This node became primary. `detection`: from the old primary's last heartbeat to the
        /// suspicion; `promotion`: from the suspicion to now (nil for a first election or switchover).
        case promoted(epoch: UInt64, cause: CampaignCause, detection: Duration?, promotion: Duration)
        case campaignLost(epoch: UInt64, preVote: Bool, refusals: Int)
        case voteGranted(epoch: UInt64, to: NodeID, preVote: Bool)
        case voteRefused(epoch: UInt64, to: NodeID, preVote: Bool, reason: ElectionMessage.VoteReason)
        /// A new primary (or none) is followed.
        case following(epoch: UInt64, primary: NodeID?)
        case steppedDown(epoch: UInt64, reason: StepDownReason)
        case transferStarted(to: NodeID, epoch: UInt64)
        case transferTimeoutNowSent(to: NodeID, epoch: UInt64)
        case transferAborted(to: NodeID, epoch: UInt64)
        case transferRefused(to: NodeID, reason: String)
        /// A message was ignored because it broke the protocol (sender not a voter, a second
        /// primary claiming this node's epoch); the shell should log it loudly.
        case ignored(from: NodeID, reason: String)
    }

    /// The node's part in the election right now.
    public enum Role: Equatable, Sendable {
        case follower
        case preCandidate
        case candidate
        case primary
    }
}
