/// Votes: what a voter grants, and how a candidate counts.
///
/// Pre-vote and the lease. A voter grants a pre-vote (and, unless the primary itself asked for
/// the election with `timeoutNow`, a vote) only when it has not heard from a primary for
/// `preVoteSilence`, 2 heartbeat intervals by default. So a follower that merely lost its own link
/// to a healthy primary is refused by every voter that still hears it and never bumps the epoch
/// (it cannot depose the primary by pushing a newer epoch on it). Why a window far shorter than
/// the election timeout is safe: the window is not what keeps elections safe (one durable vote
/// per epoch and majorities do that); it only filters disruption, and a voter that hears a
/// healthy primary hears it every interval, so 2 intervals already tolerates one lost heartbeat.
/// Why it must be short: when the primary dies, the first candidate's detector fires one timeout
/// after the last heartbeat *it* got; a voter may have got one a little later. With etcd's lease
/// of a whole election timeout that voter would refuse, and the failover would wait another
/// round; with 2 intervals every voter has been silent long enough by the time anyone campaigns.
///
/// Epochs. A node never grants anything for an epoch older than its own. A real vote request or
/// any refusal from a newer epoch makes the node adopt that epoch, persisted (together with the
/// vote, if it grants one) before anything else is done; a pre-vote request changes nothing on
/// the voter. One vote per epoch, durable before the answer is sent; granted only to a candidate
/// whose log is at least as up to date (last epoch, then next offset; a witness judges against
/// the highest committed prefix the primaries' heartbeats showed it).
extension Election {
    mutating func onVoteRequest(_ request: ElectionMessage.VoteRequest, from: NodeID, now: Duration) {
        func answer(_ epoch: UInt64, _ reason: ElectionMessage.VoteReason) {
            let granted = reason == .granted
            let heard = hearsPrimary(now: now) ? primary : nil
            emit(.send(.voteResponse(.init(
                epoch: epoch, granted: granted, preVote: request.preVote, reason: reason, primary: heard)), to: from))
            emit(.log(granted
                ? .voteGranted(epoch: epoch, to: from, preVote: request.preVote)
                : .voteRefused(epoch: request.epoch, to: from, preVote: request.preVote, reason: reason)))
        }
        guard configuration.candidates.contains(from) else { return answer(epoch, .notAVoter) }
        if !request.leadershipTransfer && (configuration.preVote || configuration.checkQuorum) && hearsPrimary(now: now) {
            // Refused without adopting the epoch: a node cut off from a healthy primary cannot
            // push its epoch onto the cluster.
            return answer(epoch, .primaryAlive)
        }
        let logOK = request.logEnd.isAtLeastAsUpToDate(as: votingLogEnd)
        if request.preVote {
            guard request.epoch > epoch else { return answer(epoch, .staleEpoch) }
            guard logOK else { return answer(epoch, .logBehind) }
            return answer(request.epoch, .granted)
        }
        guard request.epoch >= epoch else { return answer(epoch, .staleEpoch) }
        let newEpoch = request.epoch > epoch
        let mayVote = newEpoch || durable.votedFor == nil || durable.votedFor == from
        let grant = mayVote && logOK
        if newEpoch {
            enterEpoch(request.epoch, votedFor: grant ? from : nil, from: from, newPrimary: nil, now: now)
        } else if grant && durable.votedFor == nil {
            persist(ElectionDurableState(epoch: epoch, votedFor: from))
        }
        guard grant else { return answer(epoch, mayVote ? .logBehind : .alreadyVoted) }
        // Granting restarts this voter's wait: the candidate needs a moment to win and announce.
        if role == .follower {
            detector.reset(now: now)
            suspicion = nil
        }
        answer(epoch, .granted)
    }

    mutating func onVoteResponse(_ response: ElectionMessage.VoteResponse, from: NodeID, now: Duration) {
        if !response.granted && response.epoch > epoch {
            // Someone is ahead: follow that epoch (no primary known yet).
            enterEpoch(response.epoch, votedFor: nil, from: from, newPrimary: nil, now: now)
            return
        }
        guard var current = campaign, role == .preCandidate || role == .candidate,
            response.preVote == current.preVote, response.granted ? response.epoch == current.epoch : true
        else { return }  // a late answer to an earlier round
        if response.granted {
            current.grants.insert(from)
        } else {
            current.refusals.insert(from)
        }
        campaign = current
        checkCampaign(now: now)
    }

    mutating func onTimeoutNow(_ message: ElectionMessage.TimeoutNow, from: NodeID, now: Duration) {
        guard !isWitness, message.epoch >= epoch else { return }
        if message.epoch > epoch {
            enterEpoch(message.epoch, votedFor: nil, from: from, newPrimary: from, now: now)
        }
        guard role != .primary, primary == from || primary == nil else {
            emit(.log(.ignored(from: from, reason: "timeoutNow from a node this one does not follow")))
            return
        }
        // The primary asked: no pre-vote (it is not a partition symptom), and voters waive the lease.
        startElection(cause: .leadershipTransfer(from: from), suspicion: nil, now: now)
    }

    /// Starts a round: a pre-vote when configured (not for switchover or two-node mode, where
    /// there is no one to ask), else the election itself.
    mutating func startCampaign(cause: CampaignCause, suspicion: Suspicion?, now: Duration) {
        precondition(!isWitness && role != .primary)
        guard configuration.preVote && !configuration.twoNodeSelfPromotion else {
            return startElection(cause: cause, suspicion: suspicion, now: now)
        }
        role = .preCandidate
        let proposed = epoch + 1
        campaign = Campaign(
            epoch: proposed, preVote: true, cause: cause, grants: [nodeID], deadline: roundDeadline(now: now),
            suspicion: suspicion)
        emit(.log(.campaignStarted(epoch: proposed, preVote: true, cause: cause)))
        requestVotes(epoch: proposed, preVote: true, transfer: false)
        checkCampaign(now: now)
    }

    /// Enters a new epoch voting for itself (durably, first) and asks the others.
    mutating func startElection(cause: CampaignCause, suspicion: Suspicion?, now: Duration) {
        precondition(!isWitness && role != .primary)
        let newEpoch = configuration.twoNodeSelfPromotion ? ownedEpoch(after: epoch) : epoch + 1
        persist(ElectionDurableState(epoch: newEpoch, votedFor: nodeID))
        role = .candidate
        primary = nil
        lastPrimaryContact = nil
        self.suspicion = nil
        campaign = Campaign(
            epoch: newEpoch, preVote: false, cause: cause, grants: [nodeID], deadline: roundDeadline(now: now),
            suspicion: suspicion)
        emit(.becomeFollower(epoch: newEpoch, primary: nil))
        emit(.log(.campaignStarted(epoch: newEpoch, preVote: false, cause: cause)))
        let transfer = if case .leadershipTransfer = cause { true } else { false }
        requestVotes(epoch: newEpoch, preVote: false, transfer: transfer)
        checkCampaign(now: now)
    }

    private mutating func requestVotes(epoch: UInt64, preVote: Bool, transfer: Bool) {
        guard !configuration.twoNodeSelfPromotion, let end = logEnd else { return }
        let request = ElectionMessage.VoteRequest(epoch: epoch, logEnd: end, preVote: preVote, leadershipTransfer: transfer)
        for voter in configuration.voters.sorted() where voter != nodeID {
            emit(.send(.voteRequest(request), to: voter))
        }
    }

    /// Won, lost (a majority can no longer be reached), or still waiting.
    mutating func checkCampaign(now: Duration) {
        guard let current = campaign else { return }
        if current.grants.count >= configuration.majority {
            if current.preVote {
                startElection(cause: current.cause, suspicion: current.suspicion, now: now)
            } else {
                becomePrimary(now: now)
            }
        } else if current.refusals.count > configuration.voters.count - configuration.majority {
            emit(.log(.campaignLost(epoch: current.epoch, preVote: current.preVote, refusals: current.refusals.count)))
            // Wait a whole timeout again: the refusals mean a primary is alive or a better
            // candidate exists, and either will make itself heard.
            becomeFollower(of: nil, now: now)
        }
    }

    mutating func campaignTick(now: Duration) {
        guard let current = campaign, now >= current.deadline else { return }
        emit(.log(.campaignLost(epoch: current.epoch, preVote: current.preVote, refusals: current.refusals.count)))
        startCampaign(cause: .retry, suspicion: current.suspicion, now: now)
    }

    /// A round's deadline: the round timeout, plus the rank's stagger and a jitter below one
    /// stagger, so two candidates whose votes split start their next rounds apart.
    mutating func roundDeadline(now: Duration) -> Duration {
        now + configuration.campaignRoundTimeout + configuration.stagger * rank
            + random.duration(below: configuration.stagger)
    }

    /// Two-node self-promotion: the smallest epoch after `current` this node owns (epoch % 2 ==
    /// its place in id order), so the two nodes never promote themselves in the same epoch.
    func ownedEpoch(after current: UInt64) -> UInt64 {
        let nodes = configuration.candidates
        let count = UInt64(nodes.count)
        let place = UInt64(nodes.firstIndex(of: nodeID)!)
        var next = current + 1
        while next % count != place { next += 1 }
        return next
    }
}
