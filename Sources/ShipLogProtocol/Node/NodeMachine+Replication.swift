import ShipLogStorage

/// Frames in, replicator actions out, and what replication tells the election.
extension NodeMachine {
    mutating func route(_ frame: Frame, from peer: NodeID, now: Duration) {
        guard let connection = links[peer] else { return }  // a late frame of a closed connection
        switch frame {
        case .election(let bytes):
            let message: ElectionMessage
            do {
                message = try ElectionMessageCodec.decode(bytes)
            } catch {
                return disconnect(peer, .malformedFrame, "malformed election message: \(error)", now: now)
            }
            applyElection(election.received(message, from: peer, now: now), now: now)
        case .follow, .ack:
            guard primary != nil else {
                return disconnect(peer, .notPrimary, "\(frame.type) to \(nodeID), which is not primary", now: now)
            }
            translatePrimary(primary!.received(frame, from: connection, now: now), now: now)
            // Only an ack the current primary session accepted proves the follower alive and
            // says where its log ends (everything below `written` matches this primary's log).
            if case .ack(let ack) = frame, let replicator = primary,
               let state = replicator.peers[peer], state.connection == connection, state.phase == .streaming {
                let written = ack.progress.written
                let end = LogEnd(nextOffset: written, lastEpoch: written > log.firstOffset ? log.epochs.epoch(at: written - 1) : nil)
                applyElection(election.followerHeard(peer, logEnd: end, now: now), now: now)
            }
            noteCommit(now: now)
        case .followReply, .batches, .heartbeat:
            guard let current = session, current.primary == peer else {
                out.append(.log(.ignored(from: peer, reason: "\(frame.type) from a node this one does not follow")))
                return
            }
            switch frame {
            case .heartbeat(let beat):
                notePrimaryEnd(peer, epoch: beat.epoch, nextOffset: beat.primaryNextOffset)
            case .batches(let batches):
                applyElection(election.primaryFrame(from: peer, epoch: batches.epoch, now: now), now: now)
                if let last = batches.batches.last, last.count >= Format.batchHeaderBytes,
                   case .success(let header) = last.withUnsafeBytes({ BatchHeader.decode($0) }) {
                    notePrimaryEnd(peer, epoch: batches.epoch, nextOffset: header.nextOffset)
                }
            default:
                break
            }
            translateFollower(session!.replicator.received(frame, now: now), now: now)
        case .goodbye(let goodbye):
            goodbyes[peer] = goodbye.reason
            if goodbye.reason == .shutdown {
                // A node stopping cleanly: if it is the primary, fail over now rather than after a timeout.
                applyElection(election.peerDisconnected(peer, now: now), now: now)
            }
            if primary != nil {
                translatePrimary(primary!.received(frame, from: connection, now: now), now: now)
            } else if let current = session, current.primary == peer {
                translateFollower(session!.replicator.received(frame, now: now), now: now)
            }
        case .hello, .challenge, .proof, .statusRequest, .statusReply, .switchoverRequest:
            // The handshake and status are the shell's.
            break
        }
    }

    mutating func notePrimaryEnd(_ peer: NodeID, epoch: UInt64, nextOffset: UInt64) {
        if let known = lastKnownPrimaryEnd, known.epoch == epoch, known.nextOffset >= nextOffset { return }
        lastKnownPrimaryEnd = (peer, epoch, nextOffset)
    }

    /// On the primary: passes the majority-replicated end to the election once it grew and its
    /// last batch is of this primary's own epoch (an older epoch's records on a majority can
    /// still be replaced, Raft §5.4.2). The primary counts itself; followers count at the ack
    /// level, witnesses not at all (they keep no log).
    mutating func noteCommit(now: Duration) {
        guard let replicator = primary else { return }
        let ackLevel = configuration.replication.ackLevel
        let levels = replicator.peers.values.filter { $0.phase == .streaming }.map { $0.level(ackLevel) }.sorted(by: >)
        let needed = configuration.majorityOfVoters - 1
        guard levels.count >= needed else { return }
        let own = ackLevel == .durable ? log.durableNextOffset : log.nextOffset
        let offset = needed == 0 ? own : min(own, levels[needed - 1])
        guard offset > log.firstOffset, offset > (committed?.nextOffset ?? 0),
              log.epochs.epoch(at: offset - 1) == replicator.epoch else { return }
        let end = LogEnd(nextOffset: offset, lastEpoch: replicator.epoch)
        committed = end
        applyElection(election.commitChanged(end, now: now), now: now)
    }

    mutating func translatePrimary(_ actions: [PrimaryReplicator.Action], now: Duration) {
        for action in actions {
            switch action {
            case .send(let frame, let connection):
                guard let peer = peersByConnection[connection] else { continue }
                out.append(.send(frame, to: peer))
            case .ship(let connection, let from, let maxBytes, let epoch, let commitOffset):
                guard let peer = peersByConnection[connection] else { continue }
                out.append(.ship(to: peer, connection: connection, from: from, maxBytes: maxBytes, epoch: epoch,
                                 commitOffset: commitOffset))
            case .acknowledge(let id):
                out.append(.acknowledge(id))
            case .fail(let id, let error):
                out.append(.fail(id, error == .notPrimary ? .notPrimary(primary: knownPrimary) : .replication(error)))
            case .close(let connection, let reason, let message):
                guard let peer = peersByConnection[connection] else { continue }
                disconnect(peer, reason, message, now: now)
            }
        }
    }

    mutating func translateFollower(_ actions: [FollowerReplicator.Action], now: Duration) {
        guard let current = session else { return }
        for action in actions {
            switch action {
            case .send(let frame):
                if links[current.primary] != nil { out.append(.send(frame, to: current.primary)) }
            case .append(let batches):
                logOps.append(.batches(session: current.id))
                out.append(.appendBatches(batches))
            case .sync:
                syncs.append(current.id)
                out.append(.syncLog)
            case .truncate(let offset):
                cutLog(to: offset, current, now: now)
                out.append(.truncateLog(toNextOffset: offset))
            case .reset(let offset):
                cutLog(to: nil, current, now: now)
                out.append(.resetLog(startingAt: offset))
            case .close(let reason, let message):
                session = nil
                disconnect(current.primary, reason, message, now: now)
            }
        }
    }

    /// Before a cut is carried out, the election already judges votes by the shorter log (a vote
    /// must never count records this node is about to drop). What is discarded is reported when
    /// the cut is done (`logCut`), from the log's actual ends.
    mutating func cutLog(to offset: UInt64?, _ current: Session, now: Duration) {
        logOps.append(.cut(session: current.id, primary: current.primary, epoch: current.epoch))
        let target = offset.map { max(log.firstOffset, min($0, log.nextOffset)) } ?? log.firstOffset
        var epochs = log.epochs
        epochs.truncate(toNextOffset: target)
        let end = offset == nil ? LogEnd(nextOffset: 0, lastEpoch: nil)
            : LogEnd(nextOffset: target, lastEpoch: target > log.firstOffset ? epochs.lastEpoch : nil)
        applyElection(election.logEndChanged(end, now: now), now: now)
    }

    /// The primary to name in a refusal: the one this node follows, nil when none (or itself).
    var knownPrimary: NodeID? {
        guard let known = election.primary, known != nodeID else { return nil }
        return known
    }
}
