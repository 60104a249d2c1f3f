/// One record as the log holds it: the shape every read returns (`record(at:)`,
/// `records(in:)`, `records(from:)`).
public struct LogRecord: Sendable, Equatable {
    public let offset: UInt64
    /// The leader epoch of the batch the record was appended in.
    public let epoch: UInt64
    /// When its batch was appended, in milliseconds since the Unix epoch.
    public let timestampMs: Int64
    public let bytes: [UInt8]

    public init(offset: UInt64, epoch: UInt64, timestampMs: Int64, bytes: [UInt8]) {
        self.offset = offset
        self.epoch = epoch
        self.timestampMs = timestampMs
        self.bytes = bytes
    }
}

extension StoredBatch {
    /// The batch's records as `LogRecord`s.
    func logRecords() throws -> [LogRecord] {
        let header = self.header
        return try decode().map {
            LogRecord(offset: $0.offset, epoch: header.leaderEpoch, timestampMs: header.timestampMs, bytes: Array($0.bytes))
        }
    }
}

/// Where a record sequence starts.
public enum LogPosition: Sendable, Equatable {
    /// At this offset: the first record delivered is the one at `offset`, even mid-batch.
    case offset(UInt64)
    /// At the first offset the log holds when iteration starts.
    case earliest
    /// At the log's next offset when `records(from:)` is called: only records appended after.
    case latest
}

/// Records from a position on, each exactly once and in order, waiting for new appends at
/// the end; a consumer resumes by saving the last offset it processed and starting at
/// `.offset(last + 1)`. Ends when the log closes or the task is cancelled. Throws
/// `offsetOutOfRange` when its position is not in the log (below the first offset after
/// retention, or past the end) and `truncated` when a truncate removes records it delivered.
public struct LogRecords: AsyncSequence, Sendable {
    public typealias Element = LogRecord
    public typealias Failure = any Error
    let log: SegmentLog
    let start: LogPosition

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Failure = any Error
        let log: SegmentLog
        let start: LogPosition
        var batches: LogTail.AsyncIterator?
        /// Records decoded from the last batch, not yet delivered.
        var pending: ArraySlice<LogRecord> = []
        /// One past the last record delivered.
        var nextOffset: UInt64 = 0
        /// The truncations accounted for (`SegmentLog.truncationGeneration`).
        var generation: UInt64 = 0
        /// A truncation cut records ahead of us: read again from `nextOffset` once `pending`,
        /// which holds only records before the cut, is delivered.
        var rereadAfterPending = false

        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> LogRecord? {
            if batches == nil {
                generation = log.truncationGeneration.load(ordering: .sequentiallyConsistent)
                nextOffset = try resolveStart()
                batches = log.tail(from: nextOffset).makeAsyncIterator()
            }
            while true {
                try accountForTruncations()
                if let record = pending.first {
                    pending.removeFirst()
                    nextOffset = record.offset + 1
                    return record
                }
                if rereadAfterPending {
                    batches = log.tail(from: nextOffset).makeAsyncIterator()
                    rereadAfterPending = false
                }
                do {
                    guard let batch = try await batches!.next(isolation: actor) else { return nil }
                    pending = try batch.logRecords().drop { $0.offset < nextOffset }
                } catch LogError.truncated {
                    // The batch cursor reads ahead of what was delivered: judge by our position.
                    rereadAfterPending = true
                }
            }
        }

        /// Records are decoded a batch at a time, so the check is made before each one is
        /// delivered: a truncation that removed records already delivered ends the sequence;
        /// one that removed only records not yet delivered drops them, and reading resumes
        /// from the new end.
        private mutating func accountForTruncations() throws {
            let now = log.truncationGeneration.load(ordering: .sequentiallyConsistent)
            guard now != generation else { return }
            let cut = log.lowestTruncation(since: generation) ?? .max
            generation = now
            if cut < nextOffset { throw LogError.truncated(readerOffset: nextOffset, newNextOffset: cut) }
            pending = pending.prefix { $0.offset < cut }
            rereadAfterPending = true
        }

        public mutating func next() async throws -> LogRecord? {
            try await next(isolation: nil)
        }

        private func resolveStart() throws -> UInt64 {
            let (first, next) = log.state.withLock { ($0.firstOffset, $0.nextOffset) }
            switch start {
            case .earliest, .latest:
                return start == .earliest ? first : next
            case .offset(let offset):
                guard offset >= first, offset <= next else {
                    throw LogError.offsetOutOfRange(requested: offset, firstOffset: first, nextOffset: next)
                }
                return offset
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(log: log, start: start)
    }
}

extension SegmentLog {
    /// Records from `position` on, then each new record as it is appended. See `LogRecords`.
    public func records(from position: LogPosition) -> LogRecords {
        if case .latest = position { return LogRecords(log: self, start: .offset(nextOffset)) }
        return LogRecords(log: self, start: position)
    }
}
