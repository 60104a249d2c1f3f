import ShipLogStorage

extension PrimaryReplicator {
    /// A follower connected and proved the key. A node already connected is replaced: its old
    /// connection is closed (it reconnected and the old socket is dead or about to be).
    public mutating func followerAuthenticated(_ connection: ConnectionID, node: NodeID, now: Duration) -> [Action] {
        if stopped { return [.close(connection, .notPrimary, message: "this node is no longer primary")] }
        var actions: [Action] = []
        var peer = peers[node] ?? Peer(node: node)
        if let old = peer.connection, old != connection {
            connections[old] = nil
            actions.append(.close(old, .duplicateFollower, message: "\(node) connected again on \(connection)"))
        }
        peer.connection = connection
        peer.phase = .awaitingFollow
        peer.resetStream()
        peers[node] = peer
        connections[connection] = node
        return actions
    }

    public mutating func received(_ frame: Frame, from connection: ConnectionID, now: Duration) -> [Action] {
        guard !stopped else { return [] }
        guard let node = connections[connection], var peer = peers[node] else {
            return [.close(connection, .unexpectedFrame, message: "\(frame.type) frame on an unknown connection")]
        }
        switch frame {
        case .follow(let follow):
            guard peer.phase == .awaitingFollow else {
                return drop(connection, .unexpectedFrame, "follow from \(node) while streaming", now: now)
            }
            guard follow.knownEpoch <= epoch else {
                return drop(connection, .staleEpoch,
                            "\(node) knows epoch \(follow.knownEpoch), this primary is at \(epoch)", now: now)
            }
            let (kind, offset) = Self.decideFollow(follow.logEnd, log: log)
            var actions: [Action] = [.send(.followReply(.init(kind: kind, offset: offset, epoch: epoch)), to: connection)]
            if kind == .stream {
                peer.phase = .streaming
                peer.resetStream()
                peer.shippedNext = offset
                // Its log matches ours below `offset` and is written; durability comes with its first ack
                // (counted as none until then, so a follower that lost unsynced data never looks ahead).
                peer.progress = FollowerProgress(received: offset, written: offset, durable: 0)
                peer.lastCaughtUp = peer.level(configuration.ackLevel) >= log.nextOffset ? now : nil
                peer.lastHeartbeat = now
                peers[node] = peer
                actions += ship(node)
                actions += evaluateWaiters(now: now)
            }
            return actions
        case .ack(let ack):
            guard peer.phase == .streaming else {
                return drop(connection, .unexpectedFrame, "ack from \(node) before streaming", now: now)
            }
            let p = ack.progress
            let old = peer.progress
            // While a ship is outstanding the follower may ack it before `shipped` arrives.
            let shippedBound = peer.shipOutstanding ? max(peer.shippedNext, log.nextOffset) : peer.shippedNext
            guard p.durable <= p.written, p.written <= p.received, p.received <= shippedBound else {
                return drop(connection, .outOfOrder, "ack \(p) from \(node) beyond what was shipped (\(shippedBound))", now: now)
            }
            guard p.received >= old.received, p.written >= old.written, p.durable >= old.durable else {
                return drop(connection, .outOfOrder, "ack \(p) from \(node) moves back from \(old)", now: now)
            }
            peer.progress = p
            peer.acknowledgeReceived(through: p.received)
            if peer.level(configuration.ackLevel) >= log.nextOffset { peer.lastCaughtUp = now }
            peers[node] = peer
            return ship(node) + evaluateWaiters(now: now)
        case .goodbye(let goodbye):
            return drop(connection, goodbye.reason, "\(node) said goodbye: \(goodbye.message)", now: now)
        case .statusRequest:
            // The shell answers status requests itself; nothing for replication to do.
            return []
        default:
            return drop(connection, .unexpectedFrame, "\(frame.type) frame from follower \(node)", now: now)
        }
    }

    public mutating func connectionClosed(_ connection: ConnectionID, now: Duration) -> [Action] {
        guard let node = connections.removeValue(forKey: connection) else { return [] }
        if var peer = peers[node], peer.connection == connection {
            peer.connection = nil
            peer.phase = .disconnected
            peer.resetStream()
            peers[node] = peer
        }
        return stopped ? [] : evaluateWaiters(now: now)
    }

    /// Closes a connection from the primary's side and forgets it.
    mutating func drop(_ connection: ConnectionID, _ reason: CloseReason, _ message: String, now: Duration) -> [Action] {
        [.close(connection, reason, message: message)] + connectionClosed(connection, now: now)
    }

    public mutating func shipped(_ connection: ConnectionID, nextOffset: UInt64, bytes: Int, now: Duration) -> [Action] {
        guard let node = connections[connection], var peer = peers[node], peer.phase == .streaming,
              peer.shipOutstanding else { return [] }
        peer.shipOutstanding = false
        precondition(nextOffset >= peer.shippedNext, "shipped back to \(nextOffset) from \(peer.shippedNext)")
        if nextOffset == peer.shippedNext {
            // Nothing was there although the view said so: wait for the log to grow before asking again.
            peer.waitingForAppend = true
        } else {
            peer.inFlight.append(InFlight(endOffset: nextOffset, bytes: bytes, reachedLogEnd: nextOffset >= log.nextOffset))
            peer.inFlightBytes += bytes
            peer.shippedNext = nextOffset
            // Its ack may have come first (see `received(.ack)`): no later ack would drop it,
            // and, ack-clocked, it would hold the next append until the heartbeat.
            peer.acknowledgeReceived(through: peer.progress.received)
        }
        peers[node] = peer
        guard peer.progress.received <= peer.shippedNext else {
            return drop(connection, .outOfOrder, "\(node) acknowledged beyond what was shipped", now: now)
        }
        return ship(node)
    }

    /// Starts the next ship to `node` when flow control allows: one outstanding per follower,
    /// and in-flight bytes below the cap (a single batch may overshoot what is left of it).
    ///
    /// A follower that is caught up is shipped to ack-clocked (Nagle's rule for TCP): while the
    /// last ship, which took the log to its end, is not acknowledged, appends wait and then go
    /// out together in the next frame. Concurrent sync appends then share frames, acks and the
    /// follower's writes, instead of costing both processes a frame, a log write and an ack each;
    /// a lone writer loses nothing (its previous append was acknowledged before it appended).
    /// A follower catching up gets full ships back to back, up to the in-flight cap. `tick`
    /// ships regardless each heartbeat interval, so an ack that never comes (a follower that
    /// lost a frame would see the next one out of order and close) holds nothing for longer.
    mutating func ship(_ node: NodeID, ackClocked: Bool = true) -> [Action] {
        guard var peer = peers[node], let connection = peer.connection, peer.phase == .streaming,
              !peer.shipOutstanding, !peer.waitingForAppend, peer.shippedNext < log.nextOffset,
              !(ackClocked && peer.awaitingTailAck) else { return [] }
        let room = configuration.maxInFlightBytesPerFollower - peer.inFlightBytes
        guard room > 0 else { return [] }
        peer.shipOutstanding = true
        peers[node] = peer
        return [.ship(connection: connection, from: peer.shippedNext, maxBytes: min(configuration.maxShipBytes, room),
                      epoch: epoch, commitOffset: commitOffset)]
    }

    public mutating func logAppended(nextOffset: UInt64, endBytes: Int64, epochs: EpochHistory, now: Duration) -> [Action] {
        precondition(nextOffset >= log.nextOffset, "the log's end moved back from \(log.nextOffset) to \(nextOffset)")
        // Followers that had the whole log were caught up until this moment.
        for (node, peer) in peers where peer.phase == .streaming && peer.level(configuration.ackLevel) >= log.nextOffset {
            peers[node]!.lastCaughtUp = now
        }
        log.nextOffset = nextOffset
        log.epochs = epochs
        self.endBytes = endBytes
        samples.append(AppendSample(nextOffset: nextOffset, endBytes: endBytes, time: now))
        guard !stopped else { return [] }
        var actions: [Action] = []
        for node in peers.keys.sorted() {
            peers[node]!.waitingForAppend = false
            actions += ship(node)
        }
        return actions
    }

    /// Retention removed segments: a streaming follower that still needs them is closed, and
    /// reconnects into a reset.
    public mutating func logRetained(firstOffset: UInt64, now: Duration) -> [Action] {
        log.firstOffset = max(log.firstOffset, firstOffset)
        log.epochs.trimFront(firstOffset: log.firstOffset)
        var actions: [Action] = []
        for node in peers.keys.sorted() {
            guard let peer = peers[node], let connection = peer.connection, peer.phase == .streaming,
                  peer.shippedNext < log.firstOffset else { continue }
            actions += drop(connection, .outOfOrder,
                            "\(node) needs offset \(peer.shippedNext), retention kept from \(log.firstOffset); resync", now: now)
        }
        return actions
    }

    /// Heartbeats to streaming followers every `heartbeatInterval`, and waiters' timeouts.
    public mutating func tick(now: Duration) -> [Action] {
        guard !stopped else { return [] }
        var actions: [Action] = []
        for node in peers.keys.sorted() {
            guard let peer = peers[node], let connection = peer.connection, peer.phase == .streaming,
                  now - peer.lastHeartbeat >= configuration.heartbeatInterval else { continue }
            peers[node]!.lastHeartbeat = now
            actions.append(.send(.heartbeat(.init(epoch: epoch, commitOffset: commitOffset,
                                                  primaryNextOffset: log.nextOffset)), to: connection))
            actions += ship(node, ackClocked: false)
        }
        return actions + evaluateWaiters(now: now)
    }

    public mutating func stop(now: Duration) -> [Action] {
        guard !stopped else { return [] }
        stopped = true
        var actions = waiters.map { Action.fail($0.id, .notPrimary) }
        waiters = []
        for connection in connections.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            actions.append(.close(connection, .notPrimary, message: "this node stopped being primary"))
        }
        for node in Array(peers.keys) {
            peers[node]!.connection = nil
            peers[node]!.phase = .disconnected
            peers[node]!.resetStream()
        }
        connections = [:]
        return actions
    }
}
