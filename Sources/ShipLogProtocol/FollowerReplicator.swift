import ShipLogStorage

/// The follower's side of replication, for one connection to the primary at a time.
/// Pure: events in, actions out; the shell carries the actions out in order and reports back.
public struct FollowerReplicator: Sendable {
    public enum Action: Equatable, Sendable {
        case send(Frame)
        /// Append these stored batches, in order, to the log with `.os` durability, then report
        /// `appended`. Appends are applied in the order given. Each batch's CRC was checked
        /// here (the `StoredBatch` remembers it), so the log does not check it again: the
        /// follower checks every batch exactly once, before it is counted or written.
        case append([StoredBatch])
        /// fdatasync the log, then report `synced`. At most one is outstanding.
        case sync
        /// Cut the log so its next offset is `toNextOffset`, then report `truncated`.
        case truncate(toNextOffset: UInt64)
        /// Empty the log and start it at `startingAt` (full resync), then report `truncated`.
        case reset(startingAt: UInt64)
        /// Send `goodbye` if possible and close the connection to the primary.
        case close(CloseReason, message: String)
    }

    enum Phase: Sendable, Equatable {
        case disconnected
        /// Connected; `follow` waits until local appends and cuts have finished.
        case connected
        case awaitingReply
        /// A truncate or reset is being carried out.
        case cutting
        case streaming
        /// This side closed the connection; waiting for `disconnected`.
        case closed
    }

    public let configuration: ReplicationConfiguration
    public let nodeID: NodeID
    /// The newest epoch seen; frames from older epochs close the connection.
    public private(set) var knownEpoch: UInt64
    public private(set) var primaryCommitOffset: UInt64 = 0
    /// The primary's log end from its last heartbeat.
    public private(set) var primaryNextOffset: UInt64 = 0
    public private(set) var lastHeardFromPrimary: Duration? = nil
    /// Since when this side has been waiting on the primary (its last frame, or the `follow`
    /// sent after local work): `tick` closes the connection once that exceeds `primaryTimeout`.
    var waitingSince: Duration? = nil
    /// The log as last reported written.
    public private(set) var logEnd: LogEnd
    var phase: Phase = .disconnected
    /// One past the last offset received (appends may still be in progress) and its batch's epoch.
    var received: UInt64
    var receivedEpoch: UInt64?
    var durable: UInt64
    var appendsOutstanding = 0
    var cutOutstanding = false
    var syncOutstanding = false
    var lastAck: FollowerProgress? = nil

    public init(configuration: ReplicationConfiguration, nodeID: NodeID, log: LogEnd, durableNextOffset: UInt64,
                knownEpoch: UInt64, now: Duration) {
        precondition(durableNextOffset <= log.nextOffset, "durable \(durableNextOffset) past the log's end \(log.nextOffset)")
        self.configuration = configuration
        self.nodeID = nodeID
        self.logEnd = log
        self.received = log.nextOffset
        self.receivedEpoch = log.lastEpoch
        self.durable = durableNextOffset
        self.knownEpoch = max(knownEpoch, log.lastEpoch ?? 0)
    }

    public var progress: FollowerProgress {
        FollowerProgress(received: received, written: logEnd.nextOffset, durable: durable)
    }

    /// Whether batches are flowing from the primary.
    public var isStreaming: Bool { phase == .streaming }

    /// Connected and authenticated to the primary: sends follow (once local work has finished).
    public mutating func connected(now: Duration) -> [Action] {
        phase = .connected
        lastAck = nil
        lastHeardFromPrimary = now
        waitingSince = now
        return followIfIdle(now: now)
    }

    mutating func followIfIdle(now: Duration) -> [Action] {
        guard phase == .connected, appendsOutstanding == 0, !cutOutstanding else { return [] }
        assert(received == logEnd.nextOffset)
        phase = .awaitingReply
        waitingSince = now
        return [.send(.follow(.init(logEnd: logEnd, knownEpoch: knownEpoch)))]
    }

    public mutating func received(_ frame: Frame, now: Duration) -> [Action] {
        guard phase != .disconnected, phase != .closed else { return [] }
        lastHeardFromPrimary = now
        waitingSince = now
        switch frame {
        case .followReply(let reply):
            guard phase == .awaitingReply else { return close(.unexpectedFrame, "follow reply while \(phase)") }
            guard reply.epoch >= knownEpoch else { return close(.staleEpoch, "reply from epoch \(reply.epoch), known \(knownEpoch)") }
            knownEpoch = reply.epoch
            switch reply.kind {
            case .stream:
                guard reply.offset == logEnd.nextOffset else {
                    return close(.outOfOrder, "stream from \(reply.offset), log ends at \(logEnd.nextOffset)")
                }
                phase = .streaming
                return ackIfChanged()
            case .truncate:
                guard reply.offset < logEnd.nextOffset else {
                    return close(.outOfOrder, "truncate to \(reply.offset) would not shorten the log ending at \(logEnd.nextOffset)")
                }
                phase = .cutting
                cutOutstanding = true
                return [.truncate(toNextOffset: reply.offset)]
            case .reset:
                phase = .cutting
                cutOutstanding = true
                return [.reset(startingAt: reply.offset)]
            }
        case .batches(let batches):
            guard phase == .streaming else { return close(.unexpectedFrame, "batches while \(phase)") }
            guard batches.epoch >= knownEpoch else {
                return close(.staleEpoch, "batches from epoch \(batches.epoch), known \(knownEpoch)")
            }
            knownEpoch = batches.epoch
            var next = received
            var lastEpoch = receivedEpoch
            var checked: [StoredBatch] = []
            checked.reserveCapacity(batches.batches.count)
            for (i, bytes) in batches.batches.enumerated() {
                guard bytes.count >= Format.batchHeaderBytes,
                      case .success(let header) = bytes.withUnsafeBytes({ BatchHeader.decode($0) }),
                      header.totalBytes == bytes.count else {
                    return close(.malformedFrame, "batch \(i) of a batches frame is not a stored batch")
                }
                guard header.firstOffset == next else {
                    return close(.outOfOrder, "batch \(i) starts at \(header.firstOffset), expected \(next)")
                }
                guard header.leaderEpoch <= batches.epoch, header.leaderEpoch >= (lastEpoch ?? 0) else {
                    return close(.staleEpoch, "batch \(i) epoch \(header.leaderEpoch) after \(lastEpoch ?? 0), frame \(batches.epoch)")
                }
                // The CRC is checked here, before `received` counts the batch: at ack level
                // `received` the ack below would otherwise vouch for bytes the log then refuses.
                guard let batch = try? StoredBatch(bytes: bytes) else {
                    return close(.corruptBatch, "batch \(i) of a batches frame (offsets \(header.firstOffset)..<\(header.nextOffset)) fails its CRC")
                }
                checked.append(batch)
                next = header.nextOffset
                lastEpoch = header.leaderEpoch
            }
            primaryCommitOffset = max(primaryCommitOffset, batches.commitOffset)
            guard !checked.isEmpty else { return [] }
            received = next
            receivedEpoch = lastEpoch
            appendsOutstanding += 1
            // The received ack goes first: a shell that appends synchronously reports `appended`
            // (and its written ack) before carrying out the next action.
            return ackIfChanged() + [.append(checked)]
        case .heartbeat(let heartbeat):
            guard heartbeat.epoch >= knownEpoch else {
                return close(.staleEpoch, "heartbeat from epoch \(heartbeat.epoch), known \(knownEpoch)")
            }
            knownEpoch = heartbeat.epoch
            primaryCommitOffset = max(primaryCommitOffset, heartbeat.commitOffset)
            primaryNextOffset = heartbeat.primaryNextOffset
            return []
        case .goodbye(let goodbye):
            return close(goodbye.reason, "primary said goodbye: \(goodbye.message)")
        case .statusRequest:
            return []
        default:
            return close(.unexpectedFrame, "\(frame.type) frame from the primary")
        }
    }

    /// The log wrote everything before `logEnd.nextOffset` (after `append`).
    public mutating func appended(logEnd: LogEnd, now: Duration) -> [Action] {
        precondition(appendsOutstanding > 0, "appended without an append outstanding")
        precondition(logEnd.nextOffset >= self.logEnd.nextOffset && logEnd.nextOffset <= received,
                     "appended to \(logEnd.nextOffset), written \(self.logEnd.nextOffset), received \(received)")
        appendsOutstanding -= 1
        self.logEnd = logEnd
        var actions: [Action] = []
        if configuration.ackLevel == .durable { actions += requestSync() }
        if phase == .streaming { actions += ackIfChanged() }
        return actions + followIfIdle(now: now)
    }

    /// The append failed (a CRC mismatch or a write error): the connection closes, and the next
    /// connection starts again from what the log has.
    /// A report after this machine has already closed the connection (it found the damage
    /// first) repeats the close, which the shell may carry out again harmlessly.
    public mutating func appendFailed(_ message: String, now: Duration) -> [Action] {
        precondition(appendsOutstanding > 0 || phase == .closed, "appendFailed without an append outstanding")
        if appendsOutstanding > 0 { appendsOutstanding -= 1 }
        received = logEnd.nextOffset
        receivedEpoch = logEnd.lastEpoch
        guard phase != .disconnected else { return followIfIdle(now: now) }
        return close(.corruptBatch, "appending the primary's batches failed: \(message)")
    }

    public mutating func synced(durableNextOffset: UInt64, now: Duration) -> [Action] {
        precondition(syncOutstanding, "synced without a sync outstanding")
        syncOutstanding = false
        durable = max(durable, min(durableNextOffset, logEnd.nextOffset))
        var actions = requestSync()
        if phase == .streaming { actions += ackIfChanged() }
        return actions
    }

    /// One fdatasync at a time; a later one covers every append since.
    mutating func requestSync() -> [Action] {
        guard !syncOutstanding, durable < logEnd.nextOffset else { return [] }
        syncOutstanding = true
        return [.sync]
    }

    /// After truncate or reset: the log's new end. Sends follow again.
    public mutating func truncated(logEnd: LogEnd, now: Duration) -> [Action] {
        precondition(cutOutstanding, "truncated without a truncate outstanding")
        cutOutstanding = false
        self.logEnd = logEnd
        received = logEnd.nextOffset
        receivedEpoch = logEnd.lastEpoch
        // What the cut kept stays durable as far as it was; a reset log holds nothing to lose.
        durable = min(durable, logEnd.nextOffset)
        if logEnd.lastEpoch == nil { durable = logEnd.nextOffset }
        if phase == .cutting { phase = .connected }
        return followIfIdle(now: now)
    }

    public mutating func disconnected(now: Duration) -> [Action] {
        phase = .disconnected
        lastAck = nil
        return []
    }

    /// Closes a connection whose primary has been silent for longer than `primaryTimeout` while
    /// this side waited on it (a follow reply, batches or heartbeats): a primary whose host died
    /// or whose network dropped without a FIN leaves the socket open, and only this notices it.
    /// Time spent on local work (appends, cuts) does not count.
    public mutating func tick(now: Duration) -> [Action] {
        guard phase == .streaming || phase == .awaitingReply, let since = waitingSince,
              now - since > configuration.primaryTimeout else { return [] }
        return close(.primaryTimeout, "nothing from the primary for \(now - since) (primaryTimeout \(configuration.primaryTimeout))")
    }

    mutating func ackIfChanged() -> [Action] {
        let current = progress
        guard current != lastAck else { return [] }
        lastAck = current
        return [.send(.ack(.init(progress: current)))]
    }

    mutating func close(_ reason: CloseReason, _ message: String) -> [Action] {
        phase = .closed
        return [.close(reason, message: message)]
    }
}
