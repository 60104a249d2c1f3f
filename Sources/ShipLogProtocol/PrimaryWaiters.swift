extension PrimaryReplicator {
    /// A sync append wrote offsets below `through` locally; acknowledge it once the mode's quorum has them at the ack level.
    /// `.async` acknowledges at once. Fails at once (or after minSyncFollowersTimeout) when too few followers are in sync.
    public mutating func awaitReplication(_ id: AppendID, through: UInt64, mode: ReplicationMode, now: Duration) -> [Action] {
        if let decided = admit(id, through: through, mode: mode, now: now) { return [decided] }
        return evaluateWaiters(now: now)
    }

    /// `awaitReplication` for appends that reached the shell together, in order: the same
    /// decisions as calling it for each in turn at the same `now` (the appends decided at once
    /// come first, then one sweep of the waiters), instead of a sweep per append (16
    /// concurrent appends cost 16 sweeps of up to 16 waiters before).
    public mutating func awaitReplication(_ appends: [(id: AppendID, through: UInt64, mode: ReplicationMode)],
                                          now: Duration) -> [Action] {
        var actions: [Action] = []
        var added = false
        for append in appends {
            if let decided = admit(append.id, through: append.through, mode: append.mode, now: now) {
                actions.append(decided)
            } else {
                added = true
            }
        }
        return added ? actions + evaluateWaiters(now: now) : actions
    }

    /// Adds a waiter for the append (nil), or decides it at once (`.async`, or too few followers).
    private mutating func admit(_ id: AppendID, through: UInt64, mode: ReplicationMode, now: Duration) -> Action? {
        guard !stopped else { return .fail(id, .notPrimary) }
        let required: Int
        let configuredOnly: Bool
        switch mode {
        case .async:
            return .acknowledge(id)
        case .sync(let quorum):
            let configured = configuration.followers.count
            guard quorum <= configured else {
                return .fail(id, .notEnoughFollowers(inSync: inSyncCount(configuredOnly: false, now: now), required: quorum))
            }
            required = max(quorum, 0)
            configuredOnly = false
        case .syncAll:
            required = configuration.followers.count
            configuredOnly = true
        }
        let gate = max(configuration.minSyncFollowers, required)
        var waiter = Waiter(id: id, through: through, required: required, configuredOnly: configuredOnly, gate: gate,
                            minSyncDeadline: nil, deadline: now + configuration.syncTimeout)
        let inSync = inSyncCount(configuredOnly: configuredOnly, now: now)
        if inSync < gate {
            // Never degrade to async: fail now, or wait a bounded time for followers to catch up.
            guard configuration.minSyncFollowersTimeout > .zero else {
                return .fail(id, .notEnoughFollowers(inSync: inSync, required: gate))
            }
            waiter.minSyncDeadline = now + configuration.minSyncFollowersTimeout
        }
        // Kept sorted by `through`, so one acknowledgement sweeps every waiter below it.
        // Appends usually come in offset order: the end is the place, found without a search.
        if let last = waiters.last, last.through > through {
            let index = waiters.lastIndex(where: { $0.through <= through }).map { $0 + 1 } ?? 0
            waiters.insert(waiter, at: index)
        } else {
            waiters.append(waiter)
        }
        return nil
    }

    /// Streaming followers' offsets at the ack level, highest first.
    func levels(configuredOnly: Bool) -> [UInt64] {
        // Called for every append and every ack: no set of the configured followers unless needed.
        var levels: [UInt64] = []
        levels.reserveCapacity(peers.count)
        for peer in peers.values where peer.phase == .streaming
            && (!configuredOnly || configuration.followers.contains(peer.node)) {
            levels.append(peer.level(configuration.ackLevel))
        }
        if levels.count > 1 { levels.sort(by: >) }
        return levels
    }

    func isInSync(_ peer: Peer, now: Duration) -> Bool {
        guard peer.phase == .streaming else { return false }
        if peer.level(configuration.ackLevel) >= log.nextOffset { return true }
        guard let caughtUp = peer.lastCaughtUp else { return false }
        return now - caughtUp <= configuration.inSyncLagTimeout
    }

    func inSyncCount(configuredOnly: Bool, now: Duration) -> Int {
        var count = 0
        for peer in peers.values where (!configuredOnly || configuration.followers.contains(peer.node)) && isInSync(peer, now: now) {
            count += 1
        }
        return count
    }

    /// Acknowledges every waiter its quorum covers, fails those past a deadline, and advances
    /// `commitOffset`.
    mutating func evaluateWaiters(now: Duration) -> [Action] {
        let all = levels(configuredOnly: false)
        let commitQuorum = max(1, configuration.minSyncFollowers)
        if all.count >= commitQuorum { advanceCommit(to: min(all[commitQuorum - 1], log.nextOffset)) }
        guard !waiters.isEmpty else { return [] }
        // Only `syncAll` waiters count configured followers alone: no second list otherwise.
        let configured = configuration.followers.isEmpty || !waiters.contains(where: \.configuredOnly)
            ? [] : levels(configuredOnly: true)
        var inSync: [Bool: Int] = [:]
        var actions: [Action] = []
        var kept: [Waiter] = []
        kept.reserveCapacity(waiters.count)
        for var waiter in waiters {
            let levels = waiter.configuredOnly ? configured : all
            if let gateDeadline = waiter.minSyncDeadline {
                let count = inSync[waiter.configuredOnly] ?? inSyncCount(configuredOnly: waiter.configuredOnly, now: now)
                inSync[waiter.configuredOnly] = count
                if count >= waiter.gate {
                    waiter.minSyncDeadline = nil
                } else if now >= gateDeadline {
                    actions.append(.fail(waiter.id, .notEnoughFollowers(inSync: count, required: waiter.gate)))
                    continue
                } else {
                    kept.append(waiter)
                    continue
                }
            }
            let covered = waiter.required == 0 || (levels.count >= waiter.required && levels[waiter.required - 1] >= waiter.through)
            if covered {
                precondition(levels.filter { $0 >= waiter.through }.count >= waiter.required,
                             "acknowledging \(waiter.id) past what its quorum has")
                actions.append(.acknowledge(waiter.id))
                if waiter.required > 0 { advanceCommit(to: min(waiter.through, log.nextOffset)) }
            } else if now >= waiter.deadline {
                let count = levels.filter { $0 >= waiter.through }.count
                actions.append(.fail(waiter.id, .timedOut(through: waiter.through, acknowledgedBy: count, required: waiter.required)))
            } else {
                kept.append(waiter)
            }
        }
        waiters = kept
        return actions
    }

    mutating func advanceCommit(to offset: UInt64) {
        if offset > commitOffset { commitOffset = offset }
    }

    /// Every configured follower and any other connected one, by node.
    public var followers: [FollowerStatus] {
        var nodes = Set(configuration.followers)
        for (node, peer) in peers where peer.connection != nil { nodes.insert(node) }
        let now = samples.last?.time ?? .zero
        return nodes.sorted().map { node in
            let peer = peers[node] ?? Peer(node: node)
            let level = min(peer.level(configuration.ackLevel), log.nextOffset)
            let (bytes, age) = lag(from: level, now: now)
            return FollowerStatus(node: node, connection: peer.connection, streaming: peer.phase == .streaming,
                                  inSync: isInSync(peer, now: now), progress: peer.progress,
                                  lagRecords: log.nextOffset - level, lagBytes: bytes, lag: age)
        }
    }

    /// Lag in stored bytes and time of a follower at `level`, from the append samples: exact
    /// within the samples kept, the oldest sample's figures (an underestimate) beyond them.
    func lag(from level: UInt64, now: Duration) -> (bytes: Int64, age: Duration) {
        guard level < log.nextOffset, !samples.isEmpty else { return (0, .zero) }
        var baseBytes = samples[0].endBytes
        var appendedAt = samples[0].time
        for i in 0..<samples.count {
            let sample = samples[i]
            if sample.nextOffset <= level { baseBytes = sample.endBytes }
            if sample.nextOffset > level { appendedAt = sample.time; break }
        }
        return (max(0, endBytes - baseBytes), max(.zero, now - appendedAt))
    }

    /// Lag with an explicit time (status' `lag` uses the last append's time).
    public func followerStatus(now: Duration) -> [FollowerStatus] {
        followers.map { status in
            var status = status
            let level = log.nextOffset - status.lagRecords
            status.lag = lag(from: level, now: now).age
            if let peer = peers[status.node] { status.inSync = isInSync(peer, now: now) }
            return status
        }
    }
}
