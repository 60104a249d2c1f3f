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

    /// `writeAppend`: the records as one batch in `epoch`; fdatasynced when `sync`. Returns the
    /// offsets and the stored batch read back from the page cache (for shipping without a read).
    static func writeAppend(_ log: SegmentLog, _ records: [[UInt8]], epoch: UInt64, sync: Bool) throws
        -> (offsets: Range<UInt64>, stored: [UInt8]?) {
        let durability: Durability = sync || log.options.durability == .fsync ? .fsync : .os
        let offsets = try log.append(records, epoch: epoch, durability: durability)
        var cursor = log.batches(from: offsets.lowerBound, bufferBytes: 16 << 10)
        guard let batch = try? cursor.next(), batch.header.firstOffset == offsets.lowerBound,
              batch.header.nextOffset == offsets.upperBound else { return (offsets, nil) }
        return (offsets, batch.bytes)
    }

    /// `appendBatches`: a primary's stored batches, each checked (CRC, contiguity) by the log.
    static func appendBatches(_ log: SegmentLog, _ batches: [[UInt8]]) throws {
        for bytes in batches {
            _ = try log.append(storedBatch: try StoredBatch(bytes: bytes), durability: .os)
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
