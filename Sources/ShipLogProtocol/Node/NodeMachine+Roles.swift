import ShipLogStorage

/// Roles: carrying out the election's decisions on the replicators.
///
/// Why promotion and sessions wait for an idle log. A `PrimaryReplicator` takes the log's view
/// at creation and only lets it grow; a `FollowerReplicator` takes the log's end and sends it
/// in `follow`. A write still in flight from the previous role (a follower's append or cut, a
/// primary's own append) would make either view wrong: a cut landing after promotion would move
/// the primary's log back, an old primary's append landing during a follow session would put
/// an older epoch after the new primary's batches. So both wait until every log write handed to
/// the shell has been reported (a few milliseconds); appends meanwhile fail with
/// `.becomingPrimary`, which a client retries.
extension NodeMachine {
    mutating func applyElection(_ actions: [Election.Action], now: Duration) {
        // A step-down's connection closes wait for the rest of the batch: the vote that made this
        // primary step down (a switchover target's) must still go out on the connection to it.
        var closes: [PrimaryReplicator.Action] = []
        defer { translatePrimary(closes, now: now) }
        for action in actions {
            switch action {
            case .persist(let state):
                out.append(.persist(state))
            case .send(let message, let to):
                guard links[to] != nil else { continue }
                // A switchover's `timeoutNow` waits for this primary's own writes in flight: the
                // election judged the target caught up against the log end it knows, and a write
                // landing after it would leave the target behind every voter's log, refused by all
                // (no primary until an election timeout). The election sends it again with its
                // next heartbeat or the target's next ack.
                if case .timeoutNow = message, logOps.contains(where: { if case .local = $0 { true } else { false } }) {
                    continue
                }
                out.append(.send(.election(ElectionMessageCodec.encode(message)), to: to))
            case .becomePrimary:
                // The replicator starts in `settle` once the log is idle.
                endSession(.notPrimary, "this node became primary", now: now)
                if !logOps.isEmpty {
                    out.append(.log(.promotionWaitingForLog(epoch: election.epoch, pendingWrites: logOps.count)))
                }
            case .becomeFollower(let epoch, let newPrimary):
                if let current = session, current.primary != newPrimary || current.epoch != epoch {
                    if election.role == .candidate, case .leadershipTransfer(let from)? = election.campaign?.cause,
                       from == current.primary {
                        // A switchover target asks the primary it followed for its vote on this very
                        // connection: only the session ends. That primary closes the connection when it
                        // steps down, after its vote has gone out; closed from here, the vote would be
                        // lost and the target would need a second round (a third voter down: no primary
                        // meanwhile). What the old session still has in flight is ignored here.
                        session = nil
                    } else {
                        endSession(.staleEpoch, "now following \(newPrimary.map { "\($0)" } ?? "no primary") in epoch \(epoch)", now: now)
                    }
                }
            case .stepDown(let reason):
                paused = nil
                transferTarget = nil
                if var replicator = primary {
                    primary = nil
                    committed = nil
                    for stopped in replicator.stop(now: now) {
                        if case .close = stopped { closes.append(stopped) } else { translatePrimary([stopped], now: now) }
                    }
                }
                _ = reason  // logged through the election's own `.steppedDown` event
            case .pauseAppends:
                paused = transferTarget ?? nodeID
            case .resumeAppends:
                paused = nil
            case .log(let event):
                out.append(.log(.election(event)))
            }
        }
    }

    /// Starts what the current state allows once the log is idle: the primary's replicator
    /// after a won election, or a replication session towards the followed primary.
    mutating func settle(now: Duration) {
        guard logOps.isEmpty, !isWitness else { return }
        if election.role == .primary {
            if primary == nil { startPrimary(now: now) }
            return
        }
        guard session == nil, election.role == .follower || election.role == .preCandidate,
              let target = election.primary, target != nodeID, links[target] != nil else { return }
        startSession(with: target, now: now)
    }

    mutating func startPrimary(now: Duration) {
        var replication = configuration.replication
        replication.followers = configuration.election.candidates.filter { $0 != nodeID }
        var replicator = PrimaryReplicator(configuration: replication, nodeID: nodeID, epoch: election.epoch,
                                           log: log.view, now: now, endBytes: log.endBytes)
        var actions: [PrimaryReplicator.Action] = []
        for (peer, connection) in links.sorted(by: { $0.key < $1.key }) where keepsLog(peer) {
            actions += replicator.followerAuthenticated(connection, node: peer, now: now)
        }
        primary = replicator
        committed = nil
        if let previous = lastKnownPrimaryEnd, previous.nextOffset > log.nextOffset {
            out.append(.log(.asyncWritesGivenUp(previousPrimary: previous.node, previousEpoch: previous.epoch,
                                                offsets: log.nextOffset..<previous.nextOffset)))
        }
        lastKnownPrimaryEnd = nil
        translatePrimary(actions, now: now)
    }

    mutating func startSession(with target: NodeID, now: Duration) {
        // What an earlier primary had beyond this log is the new primary's to give up (it
        // reports it when it takes office); this node reports only what the primary it follows
        // now shows it (shiplog-simulate seed 3883 reported a range twice, the second time
        // naming the wrong primary).
        if let known = lastKnownPrimaryEnd, known.node != target || known.epoch != election.epoch {
            lastKnownPrimaryEnd = nil
        }
        let id = nextSession
        nextSession += 1
        var replicator = FollowerReplicator(configuration: configuration.replication, nodeID: nodeID, log: log.end,
                                            durableNextOffset: min(log.durableNextOffset, log.nextOffset),
                                            knownEpoch: election.epoch, now: now)
        let actions = replicator.connected(now: now)
        session = Session(id: id, primary: target, epoch: election.epoch, replicator: replicator)
        translateFollower(actions, now: now)
    }

    /// Ends the replication session, closing its connection so the primary's side ends too (a
    /// later session starts on a fresh connection, with nothing of the old one in flight).
    mutating func endSession(_ reason: CloseReason, _ message: String, now: Duration) {
        guard let current = session else { return }
        session = nil
        disconnect(current.primary, reason, message, now: now)
    }

    /// Closes the connection to `peer` from this side.
    mutating func disconnect(_ peer: NodeID, _ reason: CloseReason, _ message: String, now: Duration) {
        guard links[peer] != nil else { return }
        out.append(.disconnect(peer, reason, message: message))
        linkDown(peer, now: now)
    }

    mutating func linkDown(_ peer: NodeID, now: Duration) {
        guard let connection = links.removeValue(forKey: peer) else { return }
        peersByConnection[connection] = nil
        goodbyes[peer] = nil
        if primary != nil {
            translatePrimary(primary!.connectionClosed(connection, now: now), now: now)
        }
        if let current = session, current.primary == peer {
            session = nil
            var replicator = current.replicator
            _ = replicator.disconnected(now: now)
        }
    }
}
