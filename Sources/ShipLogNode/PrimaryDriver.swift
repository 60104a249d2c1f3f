import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage

/// The primary's shell: owns a `PrimaryReplicator`, feeds it events and carries out its actions.
/// Confined to one event loop (`loop`): every method runs there, and actions are carried out in
/// the order the machine returned them. Reads of the log for shipping run on a thread pool and
/// come back as `shipped` events on the loop. It decides nothing itself.
final class PrimaryDriver: SessionDelegate, @unchecked Sendable {
    let loop: any EventLoop
    let log: SegmentLog
    let nodeID: NodeID
    let epoch: UInt64
    private let followerIDs: Set<NodeID>
    let pool: NIOThreadPool
    let clock: NodeClock
    private let logger: Logger
    let metrics: NodeMetrics
    private var machine: PrimaryReplicator

    struct Session {
        var channel: any Channel
        var peer: NodeID
        /// A configured follower; anyone else with the key may only ask for status.
        var isFollower: Bool
        /// A `ship` that waits for the channel to become writable (backpressure).
        var deferredShip: Ship?
        /// Reads this follower's stream off the loop, one read at a time.
        var reader: ShipReader
        /// The read started when the last one ended, for the `ship` expected next (from `from`):
        /// the pool reads the next frame while the loop writes this one.
        var readAhead: (from: UInt64, read: EventLoopFuture<ShipRead>)?
    }
    struct Ship { var from: UInt64; var maxBytes: Int; var epoch: UInt64; var commitOffset: UInt64 }

    var sessions: [ConnectionID: Session] = [:]
    /// Sync appends waiting for acknowledgements, completed from the loop (no promise between).
    private var waiting: [AppendID: (wait: ReplicationWait, offsets: Range<UInt64>)] = [:]
    private var lastAppendID: UInt64 = 0
    /// The log end last reported to the machine; shipping never reads past it.
    private(set) var reportedNextOffset: UInt64
    /// The batches appended last, shipped from memory to a follower that is caught up.
    private(set) var recent = RecentBatches(maxBytes: 4 << 20)
    /// The largest log end appended and not yet told to the machine (`noteAppendedSoon`).
    private var pendingNextOffset: UInt64 = 0
    private var appendedReportScheduled = false
    /// Sync appends that reached the loop and wait for the report above: registered with the
    /// machine just before their batches are shipped, all in one call.
    private var pendingWaits: [(id: AppendID, wait: ReplicationWait, offsets: Range<UInt64>, mode: ReplicationMode)] = []
    /// The log's first offset last reported to the machine (retention moves it up).
    private var reportedFirstOffset: UInt64
    /// Stored bytes retention removed, so the byte count the machine sees only grows.
    private var bytesRetained: Int64 = 0
    private(set) var stopped = false
    private var ticker: RepeatedTask?

    init(loop: any EventLoop, log: SegmentLog, configuration: NodeConfiguration, replication: ReplicationConfiguration,
         epoch: UInt64, pool: NIOThreadPool, clock: NodeClock, logger: Logger, metrics: NodeMetrics) {
        self.loop = loop
        self.log = log
        self.nodeID = configuration.id
        self.epoch = epoch
        self.followerIDs = Set(replication.followers)
        self.pool = pool
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        let view = PrimaryReplicator.LogView(firstOffset: log.firstOffset, nextOffset: log.nextOffset, epochs: log.epochHistory)
        self.reportedNextOffset = view.nextOffset
        self.reportedFirstOffset = view.firstOffset
        self.machine = PrimaryReplicator(configuration: replication, nodeID: configuration.id, epoch: epoch, log: view,
                                         now: clock.now(), endBytes: log.totalBytes)
    }

    /// Starts the clock's ticks (heartbeats, timeouts). Call on the loop.
    func start(tickInterval: Duration) {
        loop.preconditionInEventLoop()
        let interval = TimeAmount.nanoseconds(Int64(tickInterval.milliseconds * 1_000_000))
        ticker = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            guard !stopped else { return }
            // Retention run on the log directly (not through Node) shows up here.
            noteRetained(bytesRemoved: 0)
            perform(machine.tick(now: clock.now()))
            metrics.recordLag(machine.followers)
        }
    }

    // MARK: Appends

    /// Tells the machine the log grew to `nextOffset` (after a local append). Call on the loop.
    func noteAppended(nextOffset: UInt64) {
        loop.preconditionInEventLoop()
        // Appends finish in any order; the log's end only grows, and every offset below the
        // largest finished append is written (the log writes batches in order).
        guard !stopped, nextOffset > reportedNextOffset else { return }
        reportedNextOffset = nextOffset
        perform(machine.logAppended(nextOffset: nextOffset, endBytes: log.totalBytes + bytesRetained,
                                    epochs: log.epochHistory, now: clock.now()))
    }

    /// Tells the machine when retention moved the log's first offset up. Call on the loop.
    func noteRetained(bytesRemoved: Int64) {
        loop.preconditionInEventLoop()
        bytesRetained += bytesRemoved
        let first = log.firstOffset
        guard !stopped, first > reportedFirstOffset else { return }
        reportedFirstOffset = first
        perform(machine.logRetained(firstOffset: first, now: clock.now()))
    }

    /// Appends that reach the loop together are told to the machine once, after the tasks
    /// already queued behind them: their batches go out in one `batches` frame and share one
    /// round trip to each follower (as fsync appends share an fdatasync), instead of a frame,
    /// a pair of acknowledgements and a wakeup of both event loops each. A lone append pays
    /// one more task on the loop, no thread hand-off.
    private func noteAppendedSoon(nextOffset: UInt64) {
        pendingNextOffset = max(pendingNextOffset, nextOffset)
        guard !appendedReportScheduled else { return }
        appendedReportScheduled = true
        loop.execute { [self] in
            appendedReportScheduled = false
            // The waits first, then the batches: after the `writev` this loop has nothing left
            // to do and sleeps, leaving the CPU to the follower (shipping first and registering
            // after made the two compete on a loaded 2-CPU machine: +0.3 follower context
            // switches per append). Either order is correct: an acknowledgement is only read
            // on a later turn of the loop.
            registerPendingWaits()
            noteAppended(nextOffset: pendingNextOffset)
        }
    }

    private func registerPendingWaits() {
        guard !pendingWaits.isEmpty else { return }
        let appends = pendingWaits
        pendingWaits.removeAll(keepingCapacity: true)
        guard !stopped else {
            for append in appends { failStopped(append.wait, append.offsets) }
            return
        }
        for append in appends { waiting[append.id] = (append.wait, append.offsets) }
        perform(machine.awaitReplication(appends.map { ($0.id, $0.offsets.upperBound, $0.mode) }, now: clock.now()))
    }

    private func failStopped(_ wait: ReplicationWait, _ offsets: Range<UInt64>) {
        wait.complete(.failure(NodeError.replicationFailed(offsets: offsets, .notPrimary, followers: "")))
    }

    /// Waits until the machine acknowledges `offsets` under `mode` (at once for `.async`).
    /// `stored` is the batch holding exactly `offsets` as the log stored it, if the caller has
    /// it: shipped from memory instead of read back from the log on the thread pool.
    func replicate(_ offsets: Range<UInt64>, stored: [UInt8]? = nil, mode: ReplicationMode) async throws {
        try await startReplicating(offsets, stored: stored, mode: mode)?.wait()
    }

    /// `replicate` without the wait: the wait completes when `replicate` would return, so the
    /// caller can do its own work (a local fdatasync) while the followers do theirs; nil for
    /// `.async`, which has nothing to wait for (awaiting even a completed wait costs a trip
    /// to the event loop and back to the task).
    func startReplicating(_ offsets: Range<UInt64>, stored: [UInt8]?, mode: ReplicationMode) -> ReplicationWait? {
        let wait: ReplicationWait? = mode == .async ? nil : ReplicationWait()
        loop.execute { [self] in
            if let stored { recent.insert(stored, first: offsets.lowerBound, nextOffset: offsets.upperBound) }
            if let wait {
                if stopped { return failStopped(wait, offsets) }
                // Registered on the loop and completed there: no hop from the task's thread.
                lastAppendID += 1
                pendingWaits.append((AppendID(lastAppendID), wait, offsets, mode))
            }
            noteAppendedSoon(nextOffset: offsets.upperBound)
        }
        return wait
    }

    // MARK: Connections

    func sessionAuthenticated(_ connection: ConnectionID, peer: NodeID, channel: any Channel) {
        loop.runNowOrExecute { [self] in
            if stopped { channel.close(promise: nil); return }
            let isFollower = followerIDs.contains(peer)
            sessions[connection] = Session(channel: channel, peer: peer, isFollower: isFollower,
                                           reader: ShipReader(log: log, allocator: channel.allocator))
            if isFollower { perform(machine.followerAuthenticated(connection, node: peer, now: clock.now())) }
        }
    }

    func sessionReceived(_ frame: Frame, from connection: ConnectionID) {
        loop.runNowOrExecute { [self] in
            guard !stopped, let session = sessions[connection] else { return }
            switch frame {
            case .statusRequest:
                replyToStatusRequest(on: session.channel) { status() }
                return
            case .goodbye(let goodbye):
                logger.info("peer says goodbye: \(goodbye.message)", metadata: ["peer": "\(session.peer)", "reason": "\(goodbye.reason)"])
            default:
                break
            }
            if session.isFollower {
                perform(machine.received(frame, from: connection, now: clock.now()))
            } else if case .goodbye = frame {
                close(connection, reason: .shutdown, message: "peer said goodbye")
            } else {
                close(connection, reason: .unexpectedFrame,
                      message: "\(session.peer) is not a configured follower of \(nodeID); it may only ask for status")
            }
        }
    }

    func sessionClosed(_ connection: ConnectionID) {
        loop.runNowOrExecute { [self] in
            guard let session = sessions.removeValue(forKey: connection), !stopped else { return }
            if session.isFollower { perform(machine.connectionClosed(connection, now: clock.now())) }
        }
    }

    func sessionWritable(_ connection: ConnectionID) {
        loop.runNowOrExecute { [self] in
            guard let ship = sessions[connection]?.deferredShip else { return }
            sessions[connection]?.deferredShip = nil
            startShip(connection, ship)
        }
    }

    // MARK: Actions

    func perform(_ actions: [PrimaryReplicator.Action]) {
        for action in actions {
            switch action {
            case .send(let frame, let connection):
                if case .followReply(let reply) = frame, reply.kind == .reset { metrics.fullResyncs.increment() }
                sessions[connection]?.channel.writeAndFlush(frame, promise: nil)
            case .ship(let connection, let from, let maxBytes, let epoch, let commitOffset):
                startShip(connection, Ship(from: from, maxBytes: maxBytes, epoch: epoch, commitOffset: commitOffset))
            case .acknowledge(let id):
                metrics.acknowledgements.increment()
                waiting.removeValue(forKey: id)?.wait.complete(.success(()))
            case .fail(let id, let error):
                if let (wait, offsets) = waiting.removeValue(forKey: id) {
                    wait.complete(.failure(NodeError.replicationFailed(offsets: offsets, error, followers: followerSummary())))
                }
            case .close(let connection, let reason, let message):
                close(connection, reason: reason, message: message)
            }
        }
    }

    /// Tells the machine a ship went out (or found nothing), after its frame was written.
    func reportShipped(_ connection: ConnectionID, nextOffset: UInt64, bytes: Int) {
        perform(machine.shipped(connection, nextOffset: nextOffset, bytes: bytes, now: clock.now()))
    }

    func close(_ connection: ConnectionID, reason: CloseReason, message: String) {
        guard let session = sessions[connection] else { return }
        logger.warning("closing connection: \(message)", metadata: [
            "peer": "\(session.peer)", "reason": "\(reason)", "connection": "\(connection.rawValue)"])
        metrics.closedConnection(reason: reason)
        session.channel.writeAndFlush(Frame.goodbye(.init(reason: reason, message: message)), promise: nil)
        session.channel.close(promise: nil)
    }

    // MARK: Status and stopping

    /// Where each follower stands, for errors: "node 2 disconnected; node 3 streaming, in sync, written below 40".
    private func followerSummary() -> String {
        machine.followers.map { f in
            let state = f.connection == nil ? "disconnected" : (f.streaming ? "streaming" : "connected")
            return "\(f.node) \(state)\(f.inSync ? ", in sync" : ""), received/written/durable below "
                + "\(f.progress.received)/\(f.progress.written)/\(f.progress.durable)"
        }.joined(separator: "; ")
    }

    func status() -> NodeStatus {
        loop.preconditionInEventLoop()
        return NodeStatus(node: nodeID.rawValue, role: "primary", primary: nil, epoch: machine.epoch,
                          firstOffset: log.firstOffset, nextOffset: log.nextOffset, durableNextOffset: log.durableNextOffset,
                          commitOffset: machine.commitOffset, followers: machine.followers.map(NodeStatus.Follower.init),
                          connectedToPrimary: nil, lastHeardFromPrimaryMilliseconds: nil)
    }

    /// Fails every waiting append, closes every connection and stops the ticks. Call on the loop.
    func stop() {
        loop.preconditionInEventLoop()
        guard !stopped else { return }
        perform(machine.stop(now: clock.now()))
        stopped = true
        ticker?.cancel()
        let failed = waiting
        waiting = [:]
        for (_, waiter) in failed { failStopped(waiter.wait, waiter.offsets) }
        let pending = pendingWaits
        pendingWaits = []
        for append in pending { failStopped(append.wait, append.offsets) }
        for (_, session) in sessions { session.channel.close(promise: nil) }
        sessions = [:]
    }
}
