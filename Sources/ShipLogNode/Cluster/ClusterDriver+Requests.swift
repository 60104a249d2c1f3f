import Logging
import Metrics
import NIOCore
import ShipLogProtocol
import ShipLogStorage
import Synchronization

/// What the application asks of an automatic-role node (appends, switchover, status), and what
/// the machine tells it back (roles, events). All on the driver's loop.
extension ClusterDriver {
    /// Hands `records` to the machine as one append; the future completes when the machine
    /// acknowledges or fails it (a node that is not primary fails it at once).
    func append(_ records: [[UInt8]], mode: ReplicationMode) -> EventLoopFuture<Range<UInt64>> {
        let promise = loop.makePromise(of: Range<UInt64>.self)
        loop.execute { [self] in
            guard !halted else {
                return promise.fail(failure.map { ClusterError.nodeFailed(node: nodeID, reason: $0) } ?? NodeError.notRunning(node: nodeID))
            }
            let id = nextAppendID()
            held[id] = records
            waiting[id] = (promise, nil)
            feed { $0.append(id, mode: mode, now: $1) }
        }
        return promise.futureResult
    }

    /// Asks the machine to hand leadership to `target`; completes when this node follows it.
    func transferLeadership(to target: NodeID, timeout: Duration) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        loop.execute { [self] in
            guard !halted else { return promise.fail(NodeError.notRunning(node: nodeID)) }
            let role = machine.role
            guard role.role == .primary else {
                let primary = role.primary.map { "; the primary is \($0)" } ?? "; no primary is known"
                return promise.fail(ClusterError.switchoverRefused(target: target, reason: "\(nodeID) is not the primary\(primary)"))
            }
            if let earlier = transfers[target] {
                // The same switchover asked for again: it ends as the first one does. The machine
                // is asked again too: a later request for another target may have replaced it there.
                earlier.promise.futureResult.cascade(to: promise)
                feed { $0.transferLeadership(to: target, now: $1) }
                return
            }
            let deadline = loop.scheduleTask(in: .nanoseconds(Int64(timeout.milliseconds * 1_000_000))) { [self] in
                guard let pending = transfers.removeValue(forKey: target) else { return }
                pending.promise.fail(ClusterError.switchoverFailed(target: target, reason: "\(target) did not take over within \(timeout)"))
            }
            transfers[target] = (promise, deadline)
            feed { $0.transferLeadership(to: target, now: $1) }
        }
        return promise.futureResult
    }

    /// Retention removed segments: tells the machine, through the log's line of operations, so
    /// the log it is shown is the one after every operation reported before.
    func noteRetained() {
        loop.preconditionInEventLoop()
        logWork?.enqueue({ _ in }) { [self] _, log in feed { $0.logRetained(log: log, now: $1) } }
    }

    /// Whether a switchover failed only because this node was not the primary when asked.
    func transferRefusedBecauseNotPrimary(_ error: any Error) -> Bool {
        if case ClusterError.switchoverRefused(_, let reason) = error { return reason.contains("is not the primary") }
        return false
    }

    func finishTransfer(_ target: NodeID, with error: ClusterError?) {
        guard let pending = transfers.removeValue(forKey: target) else { return }
        pending.deadline.cancel()
        if let error { pending.promise.fail(error) } else { pending.promise.succeed(()) }
    }

    /// Ends every switchover but `kept`'s with `reason`.
    func finishTransfers(except kept: NodeID, reason: String) {
        for target in transfers.keys.sorted() where target != kept {
            finishTransfer(target, with: .switchoverFailed(target: target, reason: reason))
        }
    }

    /// The error an append's caller sees.
    func nodeError(_ error: NodeAppendError, offsets: Range<UInt64>?) -> any Error {
        switch error {
        case .notPrimary(let primary?): return NodeError.notPrimary(node: nodeID, primary: primary)
        case .notPrimary(nil), .becomingPrimary, .switchoverInProgress: return NodeError.unavailable(node: nodeID, error)
        case .replication(let replication):
            return NodeError.replicationFailed(offsets: offsets ?? 0..<0, replication, followers: followerSummary())
        case .localFailure(let message): return NodeError.logFailure(offsets: offsets, message: message)
        }
    }

    private func followerSummary() -> String {
        (machine.primary?.followers ?? []).map { f in
            let state = f.connection == nil ? "disconnected" : (f.streaming ? "streaming" : "connected")
            return "\(f.node) \(state)\(f.inSync ? ", in sync" : ""), received/written/durable below "
                + "\(f.progress.received)/\(f.progress.written)/\(f.progress.durable)"
        }.joined(separator: "; ")
    }

    // MARK: What the machine says

    func roleChanged(_ change: NodeRoleChange) {
        if change.role != .primary { recent.removeAll() }
        logger.notice("now \(change.role) in epoch \(change.epoch)", metadata: [
            "primary": "\(change.primary.map { "\($0)" } ?? "none")"])
        roles.publish(change)
        if change.role != .primary, let primary = change.primary, primary != nodeID, !transfers.isEmpty {
            finishTransfer(primary, with: nil)
            finishTransfers(except: primary, reason: "\(primary) became primary instead")
        }
    }

    func logged(_ event: NodeEvent) {
        switch event {
        case .election(.promoted(let epoch, let cause, let detection, let promotion)):
            metrics.promotions.increment()
            if detection != nil { metrics.failovers.increment() }
            logger.notice("promoted to primary in epoch \(epoch) (\(cause))", metadata: [
                "detection": "\(detection.map { "\($0)" } ?? "none")", "promotion": "\(promotion)"])
        case .election(.steppedDown(let epoch, let reason)):
            metrics.stepDowns.increment()
            logger.warning("stepped down from epoch \(epoch): \(reason)")
        case .election(.campaignStarted(let epoch, let preVote, let cause)):
            if !preVote { metrics.elections.increment() }
            logger.info("\(preVote ? "pre-" : "")campaign for epoch \(epoch) (\(cause))")
        case .election(.primaryConnectionClosed(let primary, let epoch)):
            logger.info("connection to primary \(primary) of epoch \(epoch) closed: it is suspected unless it answers soon")
        case .election(.primarySuspected(let primary, let epoch, let silentFor)):
            logger.notice("primary \(primary) of epoch \(epoch) suspected after \(silentFor) of silence")
        case .election(.transferStarted(let target, let epoch)):
            // The others are not failed here: one already sent `timeoutNow` may still take over
            // (its caller must then hear it succeeded). A new primary or each one's deadline ends them.
            logger.notice("switchover to \(target) started in epoch \(epoch): appends pause until it has caught up")
        case .election(.transferRefused(let target, let reason)):
            logger.warning("switchover to \(target) refused: \(reason)")
            finishTransfer(target, with: .switchoverRefused(target: target, reason: reason))
        case .election(.transferAborted(let target, let epoch)):
            logger.warning("switchover to \(target) aborted in epoch \(epoch): appends resume here")
            finishTransfer(target, with: .switchoverFailed(target: target, reason: "\(target) did not catch up and take over in time"))
        case .election(.ignored(let from, let reason)):
            logger.warning("ignored an election message from \(from): \(reason)")
        case .asyncWritesGivenUp(let previous, let previousEpoch, let offsets):
            metrics.givenUpRecords.increment(by: Int64(offsets.count))
            logger.warning("offsets \(offsets.lowerBound)..<\(offsets.upperBound) of \(previous)'s epoch \(previousEpoch) are given up (written without a majority's acknowledgement)")
        case .divergentSuffixDiscarded(let offsets, let primary, let epoch):
            metrics.discardedRecords.increment(by: Int64(offsets.count))
            logger.warning("discarded offsets \(offsets.lowerBound)..<\(offsets.upperBound) on the word of \(primary) (epoch \(epoch))")
        default:
            logger.debug("\(event)")
        }
    }

    // MARK: Status

    func status() -> NodeStatus {
        loop.preconditionInEventLoop()
        let now = clock.now()
        let role = machine.role
        let election = machine.election.status(now: now)
        let log = logWork?.log
        // A node that failed (fail-stop) takes no part any more, whatever its machine last was.
        let following = role.role == .primary || failure != nil ? nil : role.primary
        let commit = machine.primary?.commitOffset ?? machine.followerReplicator?.primaryCommitOffset ?? 0
        // A node that no longer runs shows the epoch it will come back in: the last one durable
        // (a persist queued or failed at the halt never reached the ELECTION file).
        var status = NodeStatus(
            node: nodeID.rawValue, role: failure != nil ? "failed" : "\(role.role)", primary: following?.rawValue,
            epoch: halted ? persistedEpoch : role.epoch,
            firstOffset: log?.firstOffset ?? 0, nextOffset: log?.nextOffset ?? 0, durableNextOffset: log?.durableNextOffset ?? 0,
            commitOffset: commit, followers: failure != nil ? [] : machine.primary?.followers.map(NodeStatus.Follower.init) ?? [],
            connectedToPrimary: following.map { mesh.connection(to: $0) != nil },
            lastHeardFromPrimaryMilliseconds: election.silentFor?.milliseconds)
        let detector: String = switch cluster.election.detector {
        case .fixedTimeout(let timeout): "fixed timeout \(timeout)"
        case .phiAccrual(let settings): "phi accrual, threshold \(settings.threshold)"
        }
        status.election = NodeStatus.ElectionDetails(
            electionRole: "\(election.role)", votedFor: election.votedFor?.rawValue, detector: detector,
            phi: election.phi.isFinite ? election.phi : nil, suspected: election.suspected, rank: election.rank,
            ranking: election.ranking.map(\.rawValue), transferTarget: election.transferTarget?.rawValue,
            connectedPeers: cluster.voters.keys.filter { mesh.connection(to: $0) != nil }.map(\.rawValue).sorted(),
            failure: failure)
        return status
    }

    private func nextAppendID() -> AppendID {
        appendCounter += 1
        return AppendID(appendCounter)
    }
}

/// Every subscriber's stream of role changes (`Node.roleChanges`). Each stream starts with the
/// role at the time of subscription; a subscriber more than 256 changes behind sees the newest.
final class RoleBroadcast: Sendable {
    private struct State {
        var next = 0
        var continuations: [Int: AsyncStream<NodeRoleChange>.Continuation] = [:]
        var current: NodeRoleChange?
        var finished = false
    }
    private let state = Mutex(State())

    func subscribe() -> AsyncStream<NodeRoleChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: NodeRoleChange.self, bufferingPolicy: .bufferingNewest(256))
        let finished = state.withLock { state -> Bool in
            // Yielded under the lock, so the current role comes before any later change.
            if let current = state.current { continuation.yield(current) }
            guard !state.finished else { return true }
            let id = state.next
            state.next += 1
            state.continuations[id] = continuation
            continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.continuations.removeValue(forKey: id) } }
            return false
        }
        if finished { continuation.finish() }
        return stream
    }

    func publish(_ change: NodeRoleChange) {
        state.withLock { state in
            state.current = change
            for continuation in state.continuations.values { continuation.yield(change) }
        }
    }

    /// Ends every stream (the node stopped).
    func finish() {
        let continuations = state.withLock { state in
            state.finished = true
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}

/// Counters of the election (exported by `shiplog serve` like the node's other metrics).
final class ClusterMetrics: Sendable {
    let elections: Counter
    let promotions: Counter
    let failovers: Counter
    let stepDowns: Counter
    let givenUpRecords: Counter
    /// Records this node cut from its log on a newer primary's word (written by it as a deposed
    /// primary, never on a majority; any of them acknowledged in `async` mode are lost): the
    /// loss that no new primary can report, since none of them ever reached it.
    let discardedRecords: Counter

    init(node: NodeID, factory: any MetricsFactory = MetricsSystem.factory) {
        let dimensions = [("node", String(node.rawValue))]
        elections = Counter(label: "shiplog_elections_total", dimensions: dimensions, factory: factory)
        promotions = Counter(label: "shiplog_promotions_total", dimensions: dimensions, factory: factory)
        failovers = Counter(label: "shiplog_failovers_total", dimensions: dimensions, factory: factory)
        stepDowns = Counter(label: "shiplog_step_downs_total", dimensions: dimensions, factory: factory)
        givenUpRecords = Counter(label: "shiplog_async_records_given_up_total", dimensions: dimensions, factory: factory)
        discardedRecords = Counter(label: "shiplog_divergent_records_discarded_total", dimensions: dimensions, factory: factory)
    }
}
