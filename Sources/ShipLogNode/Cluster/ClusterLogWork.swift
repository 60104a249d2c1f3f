import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage

/// The node's log operations, carried out one after another on the thread pool in the order the
/// machine asked for them (format.md §14), each finished by a report on the event loop with the
/// log as it stood right after it. Reads for `ship` join the same line, so a read never runs
/// beside a write of the same log. Confined to `loop` (the line's tail is only touched there).
final class ClusterLogWork: @unchecked Sendable {
    let log: SegmentLog
    private let loop: any EventLoop
    private let pool: NIOThreadPool
    /// The tail of the line: each operation starts when the one before it ended.
    private var tail: EventLoopFuture<Void>
    /// The appends at the tail of the line, while nothing else has been queued behind them and
    /// their job has not started: a new append joins them (`enqueueAppend`).
    private var openGroup: (group: ClusterAppendGroup, reports: AppendReports)?

    init(log: SegmentLog, loop: any EventLoop, pool: NIOThreadPool) {
        self.log = log
        self.loop = loop
        self.pool = pool
        self.tail = loop.makeSucceededVoidFuture()
    }

    /// Runs `work` on the pool after every operation queued before it, then `report` on the loop
    /// with its result and the log as it then stood.
    func enqueue<T: Sendable>(_ work: @escaping @Sendable (SegmentLog) throws -> T,
                              report: @escaping (Result<T, any Error>, NodeLog) -> Void) {
        loop.preconditionInEventLoop()
        openGroup = nil  // an append queued after this must not be written before it
        let (log, pool, loop) = (self.log, self.pool, self.loop)
        let done = tail.flatMap {
            pool.runIfActive(eventLoop: loop) { () -> (Result<T, any Error>, NodeLog) in
                let result = Result { try work(log) }
                return (result, Self.nodeLog(log))
            }
        }
        // The future completes on `loop`, where `report` belongs.
        let bound = NIOLoopBound(report, eventLoop: loop)
        done.whenComplete { outcome in
            switch outcome {
            case .success(let (result, state)): bound.value(result, state)
            case .failure(let error): bound.value(.failure(error), Self.nodeLog(log))  // the pool is shut down
            }
        }
        tail = done.map { _ in }.recover { _ in }
    }

    /// Queues a `writeAppend` (the records as one batch in `member.epoch`, on disk first if
    /// `member.sync`). It joins the appends queued right before it, if nothing else was queued
    /// since and their job has not started, and shares their pool job and fdatasync
    /// (`ClusterAppendGroup`). When the group is done, on the loop, `written` runs for every
    /// member first (so the primary holds all their batches before shipping any), then `report`
    /// for every member, in order, with the log as it stood after the whole group.
    func enqueueAppend(_ member: ClusterAppendGroup.Member, written: @escaping (ClusterAppendGroup.Outcome) -> Void,
                       report: @escaping (ClusterAppendGroup.Outcome, NodeLog) -> Void) {
        loop.preconditionInEventLoop()
        if let open = openGroup, let index = open.group.join(member) {
            precondition(index == open.reports.items.count, "append group reports out of step with its members")
            open.reports.items.append((written, report))
            return
        }
        let group = ClusterAppendGroup()
        let reports = AppendReports()
        precondition(group.join(member) == 0)
        reports.items.append((written, report))
        enqueue({ log in ClusterAppendGroup.write(group.take(), to: log) }) { result, log in
            let outcomes: [ClusterAppendGroup.Outcome] = switch result {
            case .success(let outcomes): outcomes
            case .failure(let error): reports.items.map { _ in .failure(error) }  // the pool was shut down
            }
            precondition(outcomes.count == reports.items.count, "an append group wrote \(outcomes.count) of \(reports.items.count)")
            for (callbacks, outcome) in zip(reports.items, outcomes) { callbacks.written(outcome) }
            for (callbacks, outcome) in zip(reports.items, outcomes) { callbacks.report(outcome, log) }
        }
        openGroup = (group, reports)
    }

    /// The callbacks of each member of a group, in order; only touched on the loop.
    final class AppendReports {
        var items: [(written: (ClusterAppendGroup.Outcome) -> Void, report: (ClusterAppendGroup.Outcome, NodeLog) -> Void)] = []
    }

    /// Completes once every operation queued so far has finished (so the log can be closed).
    var drained: EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        return tail
    }

    /// The log as `NodeMachine` takes it. Read while no operation of this line runs (on the pool
    /// thread right after one, or at start), so the offsets and the history agree.
    static func nodeLog(_ log: SegmentLog) -> NodeLog {
        let durable = log.durableNextOffset
        let (history, next) = log.epochHistoryAndNextOffset
        let first = min(log.firstOffset, next)
        return NodeLog(firstOffset: first, nextOffset: next, epochs: history, durableNextOffset: min(durable, next),
                       endBytes: log.totalBytes)
    }

    // MARK: The operations (on the pool)

    /// `appendBatches`: a primary's stored batches, their CRCs checked once by the machine's
    /// replicator (the log checks contiguity and does not check a checked batch again).
    static func appendBatches(_ log: SegmentLog, _ batches: [StoredBatch]) throws {
        for batch in batches {
            _ = try log.append(storedBatch: batch, durability: .os)
        }
    }

    /// `truncateLog`: the next offset becomes at most `nextOffset` (durably).
    static func truncate(_ log: SegmentLog, toNextOffset nextOffset: UInt64) throws {
        if nextOffset <= log.firstOffset {
            // Nothing this log holds survives the cut: empty it there (as FollowerDriver does).
            try log.reset(startingAt: nextOffset)
        } else if nextOffset < log.nextOffset {
            try log.truncate(after: nextOffset - 1)
        }
    }
}
