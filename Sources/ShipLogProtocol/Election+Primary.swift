/// The primary: heartbeats with the succession ranking, check-quorum, and switchover.
///
/// Check-quorum (Raft thesis §9.6): a primary that has heard from fewer than a majority of voters
/// (itself included) within the last election timeout steps down and stops acknowledging
/// appends, so a primary cut off from the majority does not keep acknowledging `async` writes
/// that the majority's new primary will never have. Heartbeat responses (witnesses answer them
/// too) and the replication acks the shell reports with `followerHeard` both count. Two-node
/// self-promotion skips it: there the primary must survive its standby's death.
///
/// Switchover (Raft thesis §4.2.3, Redis FAILOVER): the primary pauses appends, waits until the
/// target's log end equals its own (from acks via `followerHeard` or heartbeat responses), then
/// sends `timeoutNow`; the target campaigns at once, skipping pre-vote, and voters waive the
/// lease for it. The primary steps down when it sees the target's newer epoch. If that has not
/// happened within an election timeout, the switchover is abandoned and appends resume.
extension Election {
    struct Leadership: Sendable {
        var since: Duration
        var lastHeard: [NodeID: Duration]
        var progress: [NodeID: LogEnd] = [:]
        var nextHeartbeat: Duration
        var commit: LogEnd
        var transfer: Transfer?
    }

    struct Transfer: Sendable {
        var target: NodeID
        var deadline: Duration
        var timeoutNowSent = false
    }

    mutating func becomePrimary(now: Duration) {
        guard let won = campaign else { preconditionFailure("becomePrimary outside a campaign") }
        precondition(durable.votedFor == nodeID && won.epoch == epoch && !won.preVote)
        role = .primary
        primary = nodeID
        campaign = nil
        suspicion = nil
        var lastHeard: [NodeID: Duration] = [:]
        for voter in configuration.voters where voter != nodeID { lastHeard[voter] = now }
        leader = Leadership(since: now, lastHeard: lastHeard, nextHeartbeat: now, commit: knownCommit)
        emit(.becomePrimary(epoch: epoch))
        let detection = won.suspicion.flatMap { s in s.silentSince.map { s.since - $0 } }
        let promotion = won.suspicion.map { now - $0.since } ?? .zero
        emit(.log(.promoted(epoch: epoch, cause: won.cause, detection: detection, promotion: promotion)))
        // Announce at once: the heartbeat is what stops the lower-ranked followers' timers.
        primaryTick(now: now)
    }

    mutating func primaryTick(now: Duration) {
        guard var leadership = leader else { return }
        if now >= leadership.nextHeartbeat {
            leadership.nextHeartbeat = now + configuration.heartbeatInterval
            leader = leadership
            broadcastHeartbeat()
            // A timeoutNow lost on the way is sent again with each heartbeat (the target ignores
            // a second one: by then its epoch is newer).
            leader?.transfer?.timeoutNowSent = false
            checkTransfer(now: now)
            leadership = leader!
        }
        if let transfer = leadership.transfer, now >= transfer.deadline {
            leader?.transfer = nil
            emit(.resumeAppends)
            emit(.log(.transferAborted(to: transfer.target, epoch: epoch)))
        }
        if configuration.checkQuorum && !configuration.twoNodeSelfPromotion
            && now - leadership.since >= configuration.electionTimeout
        {
            let horizon = now - configuration.electionTimeout
            let heard = 1 + leadership.lastHeard.values.filter { $0 >= horizon }.count
            if heard < configuration.majority {
                stepDown(.lostQuorum(heard: heard, needed: configuration.majority), now: now)
                becomeFollower(of: nil, now: now, announce: true)
            }
        }
    }

    private mutating func broadcastHeartbeat() {
        guard let leadership = leader else { return }
        let heartbeat = ElectionMessage.Heartbeat(epoch: epoch, commit: leadership.commit, ranking: successionRanking())
        for voter in configuration.voters.sorted() where voter != nodeID {
            emit(.send(.heartbeat(heartbeat), to: voter))
        }
    }

    /// The followers that may succeed this primary, most up to date first (by their last
    /// reported log end; unknown last), ties by id.
    func successionRanking() -> [NodeID] {
        let progress = leader?.progress ?? [:]
        return configuration.candidates.filter { $0 != nodeID }.sorted { a, b in
            switch (progress[a], progress[b]) {
            case let (x?, y?):
                if x == y { return a < b }
                return x.isAtLeastAsUpToDate(as: y)
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a < b
            }
        }
    }

    mutating func onHeartbeatResponse(_ response: ElectionMessage.HeartbeatResponse, from: NodeID, now: Duration) {
        if response.epoch > epoch {
            enterEpoch(response.epoch, votedFor: nil, from: from, newPrimary: nil, now: now)
            return
        }
        guard response.epoch == epoch else { return }
        noteFollower(from, logEnd: response.logEnd, now: now)
    }

    mutating func noteFollower(_ node: NodeID, logEnd: LogEnd?, now: Duration) {
        guard role == .primary, node != nodeID, configuration.voters.contains(node) else { return }
        leader?.lastHeard[node] = now
        if let end = logEnd { leader?.progress[node] = end }
        checkTransfer(now: now)
    }

    mutating func stepDown(_ reason: StepDownReason, now: Duration) {
        precondition(role == .primary)
        emit(.stepDown(reason))
        emit(.log(.steppedDown(epoch: epoch, reason: reason)))
        leader = nil
    }

    mutating func startTransfer(to target: NodeID, now: Duration) {
        guard role == .primary, let leadership = leader else {
            return emit(.log(.transferRefused(to: target, reason: "this node is not the primary")))
        }
        guard target != nodeID, configuration.candidates.contains(target) else {
            return emit(.log(.transferRefused(to: target, reason: "not a voter that can be primary")))
        }
        if leadership.transfer?.target == target { return }
        if leadership.transfer == nil { emit(.pauseAppends) }
        leader?.transfer = Transfer(target: target, deadline: now + configuration.electionTimeout)
        emit(.log(.transferStarted(to: target, epoch: epoch)))
        checkTransfer(now: now)
    }

    /// Sends `timeoutNow` once the target has everything this primary has.
    mutating func checkTransfer(now: Duration) {
        guard let transfer = leader?.transfer, !transfer.timeoutNowSent, let mine = logEnd,
            let theirs = leader?.progress[transfer.target],
            theirs.nextOffset >= mine.nextOffset && theirs.isAtLeastAsUpToDate(as: mine)
        else { return }
        leader?.transfer?.timeoutNowSent = true
        emit(.send(.timeoutNow(.init(epoch: epoch)), to: transfer.target))
        emit(.log(.transferTimeoutNowSent(to: transfer.target, epoch: epoch)))
    }
}
