import ShipLogStorage

/// Appends and the log's reports. Each report carries the log as it now stands.
extension NodeMachine {
    /// The application asks to append (the shell holds the records under `id`). On the primary:
    /// `.writeAppend` with this primary's epoch; anywhere else the append fails at once, naming
    /// the primary when known.
    public mutating func append(_ id: AppendID, mode: ReplicationMode, now: Duration) -> [Action] {
        run(now) { node in
            guard let replicator = node.primary else {
                let error: NodeAppendError = node.election.role == .primary && !node.isWitness
                    ? .becomingPrimary : .notPrimary(primary: node.knownPrimary)
                node.out.append(.fail(id, error))
                return
            }
            if let target = node.paused {
                node.out.append(.fail(id, .switchoverInProgress(to: target)))
                return
            }
            node.pendingAppends[id] = PendingAppend(mode: mode, epoch: replicator.epoch)
            node.logOps.append(.local(id))
            node.out.append(.writeAppend(id, epoch: replicator.epoch,
                                         sync: node.configuration.replication.ackLevel == .durable))
        }
    }

    /// `writeAppend` finished: the batch ends at `through` (its next offset). Local appends may
    /// be reported out of order among themselves.
    public mutating func appendWritten(_ id: AppendID, through: UInt64, log: NodeLog, now: Duration) -> [Action] {
        run(now) { node in
            node.finish(.local(id))
            node.noteLog(log, now: now)
            guard let pending = node.pendingAppends.removeValue(forKey: id) else { return }
            guard node.primary != nil, node.primary!.epoch == pending.epoch else {
                // The epoch it was written in is over: its fate is the new primary's to decide.
                node.out.append(.fail(id, .notPrimary(primary: node.knownPrimary)))
                return
            }
            if log.nextOffset > node.primary!.log.nextOffset {
                node.translatePrimary(node.primary!.logAppended(nextOffset: log.nextOffset, endBytes: log.endBytes,
                                                                epochs: log.epochs, now: now), now: now)
            }
            node.translatePrimary(node.primary!.awaitReplication(id, through: through, mode: pending.mode, now: now), now: now)
            node.noteCommit(now: now)
        }
    }

    public mutating func appendFailed(_ id: AppendID, message: String, log: NodeLog, now: Duration) -> [Action] {
        run(now) { node in
            node.finish(.local(id))
            node.noteLog(log, now: now)
            if node.pendingAppends.removeValue(forKey: id) != nil { node.out.append(.fail(id, .localFailure(message))) }
        }
    }

    /// `appendBatches` finished.
    public mutating func batchesAppended(log: NodeLog, now: Duration) -> [Action] {
        run(now) { node in
            let op = node.finishFirst { if case .batches = $0 { true } else { false } }
            node.noteLog(log, now: now)
            if case .batches(let id) = op, let current = node.session, current.id == id {
                node.translateFollower(node.session!.replicator.appended(logEnd: log.end, now: now), now: now)
            }
        }
    }

    /// `appendBatches` failed (a CRC mismatch or a write error): the session closes.
    public mutating func batchesAppendFailed(_ message: String, log: NodeLog, now: Duration) -> [Action] {
        run(now) { node in
            let op = node.finishFirst { if case .batches = $0 { true } else { false } }
            node.noteLog(log, now: now)
            if case .batches(let id) = op, let current = node.session, current.id == id {
                node.translateFollower(node.session!.replicator.appendFailed(message, now: now), now: now)
            }
        }
    }

    /// `truncateLog` or `resetLog` finished.
    public mutating func logCut(log: NodeLog, now: Duration) -> [Action] {
        run(now) { node in
            let op = node.finishFirst { if case .cut = $0 { true } else { false } }
            let before = node.log
            node.noteLog(log, now: now)
            guard case .cut(let id, let primary, let epoch) = op else { return }
            // A reset empties the log; a truncate keeps a prefix. Whatever was there is given up.
            let keptEnd = log.nextOffset == log.firstOffset ? before.firstOffset : log.nextOffset
            if keptEnd < before.nextOffset {
                node.out.append(.log(.divergentSuffixDiscarded(offsets: keptEnd..<before.nextOffset, primary: primary, epoch: epoch)))
            }
            if let current = node.session, current.id == id {
                node.translateFollower(node.session!.replicator.truncated(logEnd: log.end, now: now), now: now)
            }
        }
    }

    /// `syncLog` finished: everything below `log.durableNextOffset` is durable.
    public mutating func logSynced(log: NodeLog, now: Duration) -> [Action] {
        run(now) { node in
            let id = node.syncs.isEmpty ? 0 : node.syncs.removeFirst()
            node.noteLog(log, now: now)
            if let current = node.session, current.id == id {
                node.translateFollower(node.session!.replicator.synced(durableNextOffset: log.durableNextOffset, now: now), now: now)
            }
            node.noteCommit(now: now)
        }
    }

    /// A `ship` was carried out on `connection`: offsets up to `nextOffset` (`bytes` stored bytes).
    public mutating func shipped(_ connection: ConnectionID, nextOffset: UInt64, bytes: Int, now: Duration) -> [Action] {
        run(now) { node in
            guard node.primary != nil, node.peersByConnection[connection] != nil else { return }
            node.translatePrimary(node.primary!.shipped(connection, nextOffset: nextOffset, bytes: bytes, now: now), now: now)
        }
    }

    // MARK: - Bookkeeping

    mutating func noteLog(_ new: NodeLog, now: Duration) {
        let changed = new.end != log.end
        log = new
        if changed { applyElection(election.logEndChanged(new.end, now: now), now: now) }
    }

    mutating func finish(_ op: LogOp) {
        guard let index = logOps.firstIndex(of: op) else {
            preconditionFailure("\(op) reported but not pending: \(logOps)")
        }
        logOps.remove(at: index)
    }

    /// Removes the oldest pending op of a kind (the log carries them out in order).
    mutating func finishFirst(_ matches: (LogOp) -> Bool) -> LogOp {
        guard let index = logOps.firstIndex(where: matches) else { preconditionFailure("a log report with nothing pending: \(logOps)") }
        return logOps.remove(at: index)
    }
}
