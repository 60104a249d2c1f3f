import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage

/// The follower's shell: owns a `FollowerReplicator`, feeds it events and carries out its
/// actions. Confined to one event loop. Log writes (append, truncate, reset) run one after
/// another off the loop (thread pool, or a task), in the order the machine asked for them, and
/// their results come back as events on the loop; a sync runs beside them (one at a time).
/// A small frame that fits the active segment while no log work is in flight is appended on
/// the loop instead (`appendOnLoop`), which is what a caught-up follower's frames are.
/// The connection to the primary is made by `PrimaryClient`; other authenticated connections
/// (from `shiplog status`) may only ask for status.
final class FollowerDriver: SessionDelegate, @unchecked Sendable {
    let loop: any EventLoop
    let log: SegmentLog
    let nodeID: NodeID
    let primaryID: NodeID
    let clock: NodeClock
    /// Where appends and fdatasyncs run, off the event loop.
    let pool: NIOThreadPool
    let logger: Logger
    let metrics: NodeMetrics
    private var machine: FollowerReplicator

    /// The authenticated connection to the primary, if any.
    private(set) var primary: (connection: ConnectionID, channel: any Channel)?
    /// Other authenticated connections (status clients).
    private var others: [ConnectionID: (channel: any Channel, peer: NodeID)] = [:]
    /// The tail of the chain of log writes; each starts when the one before it ended.
    var logWork: EventLoopFuture<Void>
    var syncing = false
    /// Batches of `.append` actions not yet handed to the log, and how many actions they came
    /// in: everything that arrives while one append runs is written by the next one, and each
    /// action is answered by one `appended`.
    var pendingBatches: [StoredBatch] = []
    var pendingAppends = 0
    /// Whether reading from the primary is off while `pendingBatches` wait for the log.
    var readPause: FollowerReadPause
    /// Log operations handed to the pool (or a task) and not yet reported back: while any
    /// runs, an append must queue behind it, not be written on the loop.
    var logWorkInFlight = 0
    /// Frames written to the primary's channel by the actions being performed, flushed once
    /// when the outermost `perform` ends: what a frame and its on-loop append answer leaves
    /// in one write, and the primary wakes once for it.
    private var performDepth = 0
    private var flushNeeded = false
    /// The last acknowledgement the machine asked for in this `perform`, not yet written. An ack
    /// carries all three offsets, so the latest says everything the earlier ones did: a frame
    /// appended on the loop sends one ack (`written`) instead of `received` then `written`,
    /// and the primary decodes and evaluates one. Written before any other frame, so frames
    /// keep their order, and at once where the ack must leave early (ack level `received`).
    private var pendingAck: Frame?
    private let ackLevel: AckLevel
    /// A log write failed beyond what the machine handles: the client stops reconnecting.
    var failedLocally = false
    private(set) var stopped = false
    private var ticker: RepeatedTask?
    /// Told on the loop when the connection to the primary authenticates (the client's backoff starts over).
    var onPrimaryAuthenticated: (() -> Void)?

    init(loop: any EventLoop, log: SegmentLog, configuration: NodeConfiguration, replication: ReplicationConfiguration,
         primaryID: NodeID, pool: NIOThreadPool, clock: NodeClock, logger: Logger, metrics: NodeMetrics) {
        self.loop = loop
        self.pool = pool
        self.log = log
        self.nodeID = configuration.id
        self.primaryID = primaryID
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.logWork = loop.makeSucceededVoidFuture()
        self.ackLevel = replication.ackLevel
        self.readPause = FollowerReadPause(maxBytes: replication.maxUnwrittenBytes)
        self.machine = FollowerReplicator(configuration: replication, nodeID: configuration.id, log: Self.logEnd(log),
                                          durableNextOffset: log.durableNextOffset, knownEpoch: Self.knownEpoch(log),
                                          now: clock.now())
    }

    func start(tickInterval: Duration) {
        loop.preconditionInEventLoop()
        let interval = TimeAmount.nanoseconds(Int64(tickInterval.milliseconds * 1_000_000))
        ticker = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            // While reads are paused the primary's silence is this node's doing (a write is
            // under way and frames wait in the socket), not the primary's: no timeout then.
            guard !stopped, !readPause.paused else { return }
            perform(machine.tick(now: clock.now()))
        }
    }

    // MARK: Connections

    /// The client's connection to the primary, identified before the handshake ends.
    private var primaryCandidate: ConnectionID?
    func connectingToPrimary(_ connection: ConnectionID) {
        loop.preconditionInEventLoop()
        primaryCandidate = connection
    }

    func sessionAuthenticated(_ connection: ConnectionID, peer: NodeID, channel: any Channel) {
        loop.runNowOrExecute { [self] in
            if stopped { channel.close(promise: nil); return }
            if connection == primaryCandidate {
                primary = (connection, channel)
                readPause.connectionChanged()
                onPrimaryAuthenticated?()
                perform(machine.connected(now: clock.now()))
            } else {
                others[connection] = (channel, peer)
            }
        }
    }

    func sessionReceived(_ frame: Frame, from connection: ConnectionID) {
        loop.runNowOrExecute { [self] in
            guard !stopped else { return }
            if let primary, primary.connection == connection {
                if case .goodbye(let goodbye) = frame {
                    logger.info("primary says goodbye: \(goodbye.message)", metadata: ["peer": "\(primaryID)", "reason": "\(goodbye.reason)"])
                }
                perform(machine.received(frame, now: clock.now()))
                return
            }
            guard let other = others[connection] else { return }
            switch frame {
            case .statusRequest:
                replyToStatusRequest(on: other.channel) { status() }
            case .goodbye:
                other.channel.close(promise: nil)
            default:
                let message = "\(nodeID) follows \(primaryID) and is not a primary; \(other.peer) may only ask for status"
                logger.warning("closing connection: \(message)", metadata: ["peer": "\(other.peer)", "reason": "\(CloseReason.notPrimary)"])
                metrics.closedConnection(reason: .notPrimary)
                other.channel.writeAndFlush(Frame.goodbye(.init(reason: .notPrimary, message: message)), promise: nil)
                other.channel.close(promise: nil)
            }
        }
    }

    func sessionClosed(_ connection: ConnectionID) {
        loop.runNowOrExecute { [self] in
            if let primary, primary.connection == connection {
                self.primary = nil
                readPause.connectionChanged()
                if !stopped { perform(machine.disconnected(now: clock.now())) }
            } else {
                others.removeValue(forKey: connection)
            }
        }
    }

    func sessionWritable(_ connection: ConnectionID) {}

    // MARK: Actions

    private func perform(_ actions: [FollowerReplicator.Action]) {
        performDepth += 1
        defer {
            performDepth -= 1
            if performDepth == 0 {
                writePendingAck()
                if flushNeeded {
                    flushNeeded = false
                    primary?.channel.flush()
                }
            }
        }
        for action in actions {
            switch action {
            case .send(let frame):
                guard let primary else { continue }
                if case .ack = frame {
                    pendingAck = frame
                    continue
                }
                writePendingAck()
                primary.channel.write(frame, promise: nil)
                flushNeeded = true
            case .append(let batches):
                // At ack level `received` the primary waits for the ack just written, not the write.
                if ackLevel == .received {
                    writePendingAck()
                    if flushNeeded {
                        flushNeeded = false
                        primary?.channel.flush()
                    }
                }
                if pendingAppends == 0, logWorkInFlight == 0, let outcome = Self.appendOnLoop(batches, to: log) {
                    switch outcome {
                    case .success(let end): perform(machine.appended(logEnd: end, now: clock.now()))
                    case .failure(let error): perform(machine.appendFailed("appending batches from \(primaryID): \(error)", now: clock.now()))
                    }
                    continue
                }
                pendingBatches += batches
                pendingAppends += 1
                var bytes = 0
                for batch in batches { bytes += batch.bytes.count }
                if readPause.waiting(bytes), let primary { primary.channel.setReading(false) }
                if pendingAppends == 1 { enqueueAppend() }
            case .sync:
                startSync()
            case .truncate(let nextOffset):
                enqueueLogWork { [log] in
                    if nextOffset <= log.firstOffset {
                        // Nothing this log holds survives the cut (its own retention removed what
                        // the cut would keep): empty it there; the primary then decides afresh.
                        try await log.reset(startingAt: nextOffset)
                    } else {
                        try await log.truncate(after: nextOffset - 1)
                    }
                    return Self.logEnd(log)
                } then: { [self] result in truncated(result, what: "truncating the log to next offset \(nextOffset)") }
            case .reset(let startingAt):
                metrics.fullResyncs.increment()
                logger.notice("full resync: emptying the log to start at \(startingAt)", metadata: ["primary": "\(primaryID)"])
                enqueueLogWork { [log] in
                    try await log.reset(startingAt: startingAt)
                    return Self.logEnd(log)
                } then: { [self] result in truncated(result, what: "resetting the log to start at \(startingAt)") }
            case .close(let reason, let message):
                // The machine repeats a close for each append that fails after it closed.
                guard let primary, primary.channel.isActive else { continue }
                writePendingAck()
                logger.warning("closing connection to primary: \(message)", metadata: ["peer": "\(primaryID)", "reason": "\(reason)"])
                metrics.closedConnection(reason: reason)
                primary.channel.writeAndFlush(Frame.goodbye(.init(reason: reason, message: message)), promise: nil)
                primary.channel.close(promise: nil)
            }
        }
    }

    /// Writes the held acknowledgement (unflushed) to the primary's connection, if there still is one.
    private func writePendingAck() {
        guard let ack = pendingAck else { return }
        pendingAck = nil
        guard let primary else { return }
        primary.channel.write(ack, promise: nil)
        flushNeeded = true
    }

    /// Feeds the machine one event at the current time and carries out what it answers (for
    /// the log work's reports, `FollowerDriver+LogWork.swift`).
    func feed(_ event: (inout FollowerReplicator, Duration) -> [FollowerReplicator.Action]) {
        perform(event(&machine, clock.now()))
    }

    // MARK: Status and stopping

    func status() -> NodeStatus {
        loop.preconditionInEventLoop()
        let heard = machine.lastHeardFromPrimary.map { (clock.now() - $0).milliseconds }
        return NodeStatus(node: nodeID.rawValue, role: "follower", primary: primaryID.rawValue, epoch: machine.knownEpoch,
                          firstOffset: log.firstOffset, nextOffset: log.nextOffset, durableNextOffset: log.durableNextOffset,
                          commitOffset: machine.primaryCommitOffset, followers: [], connectedToPrimary: primary != nil,
                          lastHeardFromPrimaryMilliseconds: heard)
    }

    /// Closes every connection and stops the ticks; the returned future completes when the
    /// log writes already queued have finished (so the log can be closed). Call on the loop.
    func stop() -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        if !stopped {
            stopped = true
            ticker?.cancel()
            primary?.channel.close(promise: nil)
            primary = nil
            for (_, other) in others { other.channel.close(promise: nil) }
            others = [:]
        }
        return logWork
    }
}
