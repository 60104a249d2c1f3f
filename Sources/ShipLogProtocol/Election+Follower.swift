/// A follower: hearing the primary, suspecting it, and the ranked wait before campaigning.
///
/// Why ranked timeouts instead of Raft's random ones. etcd draws each follower's timeout from
/// [T, 2T): when the leader dies, the two earliest timers are often within one vote round trip
/// of each other, both candidates split the votes, and the next round waits another random
/// [T, 2T). That is etcd's tail (7 split votes in 40 elections measured for the issue; a 3.6 s
/// maximum at T = 1 s). Here the primary's heartbeats carry a succession ranking, its followers
/// ordered by how up to date their logs are. A follower waits, after its detector fires,
/// `rank × stagger` plus a jitter below stagger / 2, so distinct ranks are at least stagger / 2
/// apart. The first-ranked follower's pre-vote and vote take two round trips and a vote fsync on
/// each voter (a few ms; stagger is at least 20 ms), and granting a vote restarts the voter's own
/// timer, so the second-ranked follower normally never starts. The most up-to-date follower is
/// also the one every voter's log check accepts, so the first candidate usually wins. When the
/// ranking is stale (a follower overtook another within the last heartbeat), the first
/// candidate is refused at pre-vote, without bumping the epoch, and the next rank follows one
/// stagger later. Failover thus completes within detection + (a few) × stagger, inside the
/// issue's "detection timeout + 200 ms" for stagger = max(heartbeat / 2, 20 ms). The jitter only
/// separates followers that saw different rankings (the primary died mid-broadcast).
extension Election {
    mutating func onHeartbeat(_ heartbeat: ElectionMessage.Heartbeat, from: NodeID, now: Duration) {
        guard !configuration.witnesses.contains(from) else {
            emit(.log(.ignored(from: from, reason: "heartbeat from a witness")))
            return
        }
        if heartbeat.epoch < epoch {
            // A deposed primary: tell it the newer epoch so it steps down (it may have been
            // partitioned while the rest elected someone).
            emit(.send(.heartbeatResponse(.init(epoch: epoch, logEnd: logEnd)), to: from))
            return
        }
        if heartbeat.epoch > epoch {
            // Already following `from` (re-elected without this node's vote): this heartbeat is
            // contact too; else a closed-connection suspicion or a stale silence would outlive it.
            let sameFollowed = role == .follower && primary == from
            enterEpoch(heartbeat.epoch, votedFor: nil, from: from, newPrimary: from, now: now)
            if sameFollowed {
                detector.heartbeat(now: now)
                lastPrimaryContact = now
                suspicion = nil
                primaryConnectionClosedAt = nil
            }
        } else if role == .primary {
            // Two primaries in one epoch cannot happen while votes are durable; keep serving and
            // say so loudly rather than trap on a peer's word.
            emit(.log(.ignored(from: from, reason: "heartbeat claiming this primary's epoch \(epoch)")))
            return
        } else if role == .follower && primary == from {
            detector.heartbeat(now: now)
            lastPrimaryContact = now
            suspicion = nil
            primaryConnectionClosedAt = nil
        } else {
            becomeFollower(of: from, now: now)
        }
        ranking = heartbeat.ranking
        noteCommit(heartbeat.commit)
        emit(.send(.heartbeatResponse(.init(epoch: epoch, logEnd: logEnd)), to: from))
    }

    mutating func followerTick(now: Duration) {
        guard !isWitness else { return }
        if suspicion == nil {
            let closedSuspicion = primaryConnectionClosedAt.map { $0 + configuration.preVoteSilence }
            let byConnection = closedSuspicion.map { now >= $0 } ?? false
            guard byConnection || detector.isSuspected(now: now) else { return }
            // With the fixed detector the suspicion began exactly one timeout after the last
            // heartbeat, whenever this tick runs; phi is only known at the tick.
            var since = now
            if byConnection, let closed = closedSuspicion {
                since = closed
            } else if case .fixedTimeout(let timeout) = configuration.detector, let last = detector.lastHeard {
                since = min(now, last + timeout)
            }
            let entry = Suspicion(since: since, silentSince: lastPrimaryContact, campaignAt: since + rankedDelay())
            suspicion = entry
            if let suspected = primary, let last = lastPrimaryContact {
                emit(.log(.primarySuspected(suspected, epoch: epoch, silentFor: since - last)))
            }
        }
        guard let current = suspicion, now >= current.campaignAt else { return }
        let cause: CampaignCause = primary.map { .primarySuspected($0) } ?? .noPrimary
        startCampaign(cause: cause, suspicion: current, now: now)
    }

    /// Not in two-node self-promotion: there no voter can refuse, so a connection that merely
    /// broke would make a second primary; only the detector's whole timeout decides there. Nor
    /// without both pre-vote and check-quorum: then no voter refuses for "primary alive" either,
    /// and a broken connection would depose a healthy primary after `preVoteSilence`.
    mutating func onPrimaryConnectionClosed(_ peer: NodeID, now: Duration) {
        guard configuration.suspectOnConnectionClose, !configuration.twoNodeSelfPromotion,
              configuration.preVote || configuration.checkQuorum,
              !isWitness, role == .follower, primary == peer,
              suspicion == nil, primaryConnectionClosedAt == nil else { return }
        primaryConnectionClosedAt = now
        emit(.log(.primaryConnectionClosed(peer, epoch: epoch)))
    }

    /// This node's place in the succession: its index in the primary's latest ranking, or after
    /// everyone ranked (in id order among the unranked) when the ranking does not name it.
    var rank: Int {
        if let index = ranking.firstIndex(of: nodeID) { return index }
        let unranked = configuration.candidates.filter { !ranking.contains($0) && $0 != primary }
        return ranking.count + (unranked.firstIndex(of: nodeID) ?? unranked.count)
    }

    /// `rank × stagger` plus a jitter below stagger / 2.
    mutating func rankedDelay() -> Duration {
        configuration.stagger * rank + random.duration(below: configuration.stagger / 2)
    }
}
