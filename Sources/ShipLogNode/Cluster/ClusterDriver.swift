import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage

/// The shell of an automatic-role node: owns its `NodeMachine`, feeds it events (each with
/// `now` from `NodeClock`) and carries out its actions strictly in the order returned, the way
/// the simulator does (Sources/ShipLogSimulation/Simulator+Actions.swift is the reference):
/// - `persist` writes the election state file durably on the thread pool, and nothing later
///   (of this batch or any later one) is carried out before it completes;
/// - log operations run one after another on the pool (`ClusterLogWork`), each reported back
///   with its event and the log as it then stood;
/// - `send`, `ship` and `disconnect` go to the connection the peer had when the machine
///   returned them, and are dropped if that connection has ended since;
/// - ticks come from a repeated task on the loop.
/// It decides nothing. Confined to `loop`; the mesh calls it there.
final class ClusterDriver: PeerMeshDelegate, @unchecked Sendable {
    typealias Action = NodeMachine.Action
    let loop: any EventLoop
    let nodeID: NodeID
    let cluster: ClusterConfiguration
    let mesh: PeerMesh
    let logWork: ClusterLogWork?  // nil on a witness, which keeps no log
    let roles = RoleBroadcast()
    var machine: NodeMachine
    let store: ElectionStateStore
    let pool: NIOThreadPool
    let clock: NodeClock
    let logger: Logger
    let metrics: ClusterMetrics

    /// Actions not carried out yet, each with the connection its peer had when it was returned.
    private var queue: [(action: Action, connection: ConnectionID?)] = []
    private var queueHead = 0
    private var draining = false
    private var persisting = false
    /// No event reaches the machine any more: the node stopped, or failed (`failure` says why).
    private(set) var halted = false
    private(set) var failure: String?
    /// Stopped as a crash would: connections dropped without goodbye.
    private(set) var crashed = false
    /// The newest epoch the ELECTION file is known to hold (what `status` shows once halted).
    private(set) var persistedEpoch: UInt64
    private var ticker: RepeatedTask?

    // Appends: the records wait here from `append` until the machine's `writeAppend`.
    var appendCounter: UInt64 = 0
    var held: [AppendID: [[UInt8]]] = [:]
    var waiting: [AppendID: (promise: EventLoopPromise<Range<UInt64>>, offsets: Range<UInt64>?)] = [:]
    /// The batches this node appended last as primary, shipped from memory to followers caught up.
    var recent = RecentBatches(maxBytes: 4 << 20)
    /// Switchovers asked for and not finished, by target. Each ends by what the machine says:
    /// a refusal or an abort ends only its own (an impossible request must not cancel one under
    /// way), a new primary ends them all (its own succeeds), else the caller's deadline. A later
    /// request for another target does not end it: this one's `timeoutNow` may already be out.
    var transfers: [NodeID: (promise: EventLoopPromise<Void>, deadline: Scheduled<Void>)] = [:]
    /// A `ship` waiting for its peer's connection to drain (the machine has one outstanding per peer).
    var deferredShips: [NodeID: () -> Void] = [:]
    /// Whether reading from the primary is off while its batches wait for the log (`ClusterDriver+ReadPause`).
    var readPause: ClusterReadPause
    /// The connection of the `batches` frame being fed, for the `appendBatches` it queues.
    private var batchSource: ConnectionID?

    init(loop: any EventLoop, cluster: ClusterConfiguration, machine: NodeMachine, log: SegmentLog?, store: ElectionStateStore,
         pool: NIOThreadPool, clock: NodeClock, mesh: PeerMesh, logger: Logger, metrics: ClusterMetrics) {
        self.loop = loop
        self.nodeID = machine.nodeID
        self.cluster = cluster
        self.machine = machine
        self.persistedEpoch = machine.epoch
        self.logWork = log.map { ClusterLogWork(log: $0, loop: loop, pool: pool) }
        self.store = store
        self.pool = pool
        self.clock = clock
        self.mesh = mesh
        self.logger = logger
        self.metrics = metrics
        self.readPause = ClusterReadPause(maxBytes: machine.configuration.replication.maxUnwrittenBytes)
    }

    /// The machine's first event and the ticks; call on the loop before the listener accepts
    /// (a peer's connection must find a started machine), then `connect`.
    func start() {
        loop.preconditionInEventLoop()
        mesh.delegate = self
        feed { $0.start(now: $1) }
        let interval = TimeAmount.nanoseconds(Int64(cluster.tickInterval.milliseconds * 1_000_000))
        ticker = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in feed { $0.tick(now: $1) } }
    }

    /// Starts dialling the peers. Call on the loop.
    func connect() {
        loop.preconditionInEventLoop()
        mesh.start()
    }

    // MARK: Events

    /// Hands one event to the machine and carries out what it returns (after what is queued).
    func feed(_ event: (inout NodeMachine, Duration) -> [Action]) {
        loop.preconditionInEventLoop()
        guard !halted else { return }
        for action in event(&machine, clock.now()) {
            switch action {
            case .send(_, let to), .ship(let to, _, _, _, _, _), .disconnect(let to, _, _):
                queue.append((action, mesh.connection(to: to)))
            case .appendBatches:
                queue.append((action, batchSource))
            default:
                queue.append((action, nil))
            }
        }
        drain()
    }

    func peerConnected(_ peer: NodeID) { feed { $0.peerConnected(peer, now: $1) } }
    func peerWritable(_ peer: NodeID) { deferredShips.removeValue(forKey: peer)?() }
    func peerDisconnected(_ peer: NodeID) {
        readPauseConnectionEnded()
        feed { $0.peerDisconnected(peer, now: $1) }
    }

    func received(_ frame: Frame, from peer: NodeID) {
        if case .goodbye(let goodbye) = frame {
            logger.info("peer says goodbye: \(goodbye.message)", metadata: ["peer": "\(peer)", "reason": "\(goodbye.reason)"])
        }
        // Only a `batches` frame makes `appendBatches`: they come from the peer's current connection.
        if case .batches = frame { batchSource = mesh.connection(to: peer) }
        defer { batchSource = nil }
        feed { $0.received(frame, from: peer, now: $1) }
    }

    func operatorFrame(_ frame: Frame, on channel: any Channel, from peer: NodeID) {
        switch frame {
        case .statusRequest:
            replyToStatusRequest(on: channel) { status() }
        case .switchoverRequest(let target):
            logger.notice("\(peer) asks for a switchover to \(target)")
            transferLeadership(to: target, timeout: cluster.electionTimeout * 3).whenComplete { [self] result in
                switch result {
                case .success:
                    channel.writeAndFlush(Frame.statusReply(.init(json: status().json())), promise: nil)
                case .failure(let error):
                    let reason: CloseReason = transferRefusedBecauseNotPrimary(error) ? .notPrimary : .localFailure
                    channel.writeAndFlush(Frame.goodbye(.init(reason: reason, message: "\(error)")), promise: nil)
                    channel.close(promise: nil)
                }
            }
        case .goodbye:
            channel.close(promise: nil)
        default:
            let message = "\(peer) is not a voter of this cluster: it may only ask for status"
            channel.writeAndFlush(Frame.goodbye(.init(reason: .unexpectedFrame, message: message)), promise: nil)
            channel.close(promise: nil)
        }
    }

    // MARK: Carrying out actions

    /// Carries out queued actions in order until a `persist` is in flight (it resumes when the
    /// file is durable). Re-entrant calls (an event fed while carrying out) only queue.
    private func drain() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while !persisting, !halted, queueHead < queue.count {
            let (action, connection) = queue[queueHead]
            queueHead += 1
            carryOut(action, connection)
        }
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: queue.count < 1024)
            queueHead = 0
        }
    }

    private func carryOut(_ action: Action, _ connection: ConnectionID?) {
        switch action {
        case .persist(let state):
            persisting = true
            let store = self.store
            pool.runIfActive(eventLoop: loop) { try store.save(state) }.whenComplete { [self] result in
                persisting = false
                switch result {
                case .success:
                    persistedEpoch = max(persistedEpoch, state.epoch)
                    drain()
                case .failure(let error): fail("writing \(store.path) (epoch \(state.epoch)): \(error)")
                }
            }
        case .send(let frame, let to):
            mesh.send(frame, to: to, on: connection)
        case .disconnect(let peer, let reason, let message):
            guard connection != nil, mesh.connection(to: peer) == connection else { return }
            mesh.disconnect(peer, reason: reason, message: message)
            readPauseConnectionEnded()
            feed { $0.peerDisconnected(peer, now: $1) }
        case .writeAppend(let id, let epoch, let sync):
            writeAppend(id, epoch: epoch, sync: sync)
        case .appendBatches(let batches):
            guard let logWork else { return }
            let bytes = batchesQueued(batches, from: connection)
            logWork.enqueue({ log in try ClusterLogWork.appendBatches(log, batches) }) { [self] result, log in
                batchesReported(bytes)
                switch result {
                case .success: feed { $0.batchesAppended(log: log, now: $1) }
                case .failure(let error):
                    feed { $0.batchesAppendFailed("\(error)", log: log, now: $1) }
                    failIfPoisoned(error, "appending a primary's batches")
                }
            }
        case .truncateLog(let nextOffset):
            logWork?.enqueue({ log in try ClusterLogWork.truncate(log, toNextOffset: nextOffset) }) { [self] result, log in
                cut(result, log, "truncating the log to next offset \(nextOffset)")
            }
        case .resetLog(let startingAt):
            logWork?.enqueue({ log in try log.reset(startingAt: startingAt) }) { [self] result, log in
                cut(result, log, "resetting the log to start at \(startingAt)")
            }
        case .syncLog:
            logWork?.enqueue({ log in try log.sync() }) { [self] result, log in
                switch result {
                case .success: feed { $0.logSynced(log: log, now: $1) }
                case .failure(let error): fail("fdatasync of the log: \(error)")
                }
            }
        case .ship(let to, let machineConnection, let from, let maxBytes, let epoch, let commitOffset):
            ship(to: to, on: connection, machineConnection, from: from, maxBytes: maxBytes, epoch: epoch, commitOffset: commitOffset)
        case .acknowledge(let id):
            if let waiter = waiting.removeValue(forKey: id) { waiter.promise.succeed(waiter.offsets ?? 0..<0) }
        case .fail(let id, let error):
            held[id] = nil
            if let waiter = waiting.removeValue(forKey: id) { waiter.promise.fail(nodeError(error, offsets: waiter.offsets)) }
        case .roleChanged(let change):
            // A new role (primary, candidate, another primary or epoch) ends the session the
            // pause belonged to: reading must not stay off on its connection meanwhile.
            resumeReading()
            roleChanged(change)
        case .log(let event):
            logged(event)
        }
    }

    // MARK: Stopping

    /// Stops feeding the machine and closes every connection (without goodbye when `abruptly`,
    /// as a crash would); the future completes when the log operations queued have finished.
    func stop(abruptly: Bool) -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        if abruptly { crashed = true }
        halt(NodeError.notRunning(node: nodeID))
        mesh.stop(abruptly: abruptly)
        return logWork?.drained ?? loop.makeSucceededVoidFuture()
    }

    /// Fail-stop: a durable write the machine relies on failed.
    func fail(_ reason: String) {
        guard !halted else { return }
        logger.critical("node stops taking part in the cluster: \(reason)")
        failure = reason
        halt(ClusterError.nodeFailed(node: nodeID, reason: reason))
        mesh.stop(abruptly: false)
    }

    private func halt(_ error: any Error) {
        guard !halted else { return }
        halted = true
        ticker?.cancel()
        resumeReading()
        for (_, waiter) in waiting {
            if let offsets = waiter.offsets {
                waiter.promise.fail(NodeError.replicationFailed(offsets: offsets, .notPrimary, followers: ""))
            } else {
                waiter.promise.fail(error)
            }
        }
        waiting = [:]
        held = [:]
        let pending = transfers
        transfers = [:]
        for (_, transfer) in pending {
            transfer.deadline.cancel()
            transfer.promise.fail(error)
        }
        roles.finish()
    }
}
