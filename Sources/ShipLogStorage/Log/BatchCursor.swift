#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads stored batches in offset order from some offset on, across segments, through a
/// buffered scanner. The first batch returned is the one holding the starting offset.
/// It stops (returns nil) at the log's current end; call `next()` again later for more.
///
/// A cursor never mixes the log before and after a `truncate`: when one removes records
/// it has already returned (or the offset it waits at), `next()` throws
/// `LogError.truncated` naming where the log was cut, so a consumer knows to resync.
public struct BatchCursor {
    let log: SegmentLog
    /// The offset the next returned batch must hold.
    public private(set) var nextOffset: UInt64
    private var scanner: SegmentScanner?
    private var segmentBase: UInt64 = 0
    private var limit: Int64 = 0
    private let bufferBytes: Int
    /// The smallest read buffer a cursor uses, whatever it is asked for.
    static let bufferBytesMin = 4096
    /// The truncations this cursor has accounted for (`SegmentLog.truncationGeneration`).
    private var generation: UInt64

    init(log: SegmentLog, from offset: UInt64, bufferBytes: Int) {
        self.log = log
        self.nextOffset = offset
        self.bufferBytes = max(bufferBytes, Self.bufferBytesMin)
        self.generation = log.truncationGeneration.load(ordering: .sequentiallyConsistent)
    }

    /// Accounts for truncations since the last check. The generation is bumped before a
    /// truncation touches a file, so when it is unchanged after a read, the bytes read
    /// predate any truncation. Returns the lowest offset a new truncation removed, having
    /// dropped the scanner (its buffer may hold bytes from before the cut); throws when that
    /// offset is below what this cursor has returned.
    private mutating func newTruncationPoint() throws -> UInt64? {
        let now = log.truncationGeneration.load(ordering: .sequentiallyConsistent)
        guard now != generation else { return nil }
        let lowest = log.lowestTruncation(since: generation) ?? UInt64.max
        generation = now
        scanner = nil
        limit = 0
        // A reset restarts the log at an offset that may lie past this reader: the records
        // it waited for will never come, so it resyncs too, from the log's new start.
        let first = log.state.withLock { $0.firstOffset }
        if lowest < nextOffset || nextOffset < first {
            throw LogError.truncated(readerOffset: nextOffset, newNextOffset: max(lowest, first))
        }
        return lowest
    }

    public mutating func next() throws -> StoredBatch? {
        try next(flushing: true)
    }

    /// With `flushing` false, a batch still in the process buffer makes it throw
    /// `NeedsFlush` instead of flushing through the blocking `flush()`, so that an async
    /// caller can await the flush instead.
    mutating func next(flushing: Bool) throws -> StoredBatch? {
        while true {
            _ = try newTruncationPoint()
            if scanner == nil {
                let located: SegmentLog.Place?
                let file: (any StorageFile)?
                do {
                    located = try log.locate(nextOffset, flushing: flushing)
                    file = try located?.segment.handle.file()
                } catch LogError.io(let operation, let path, ENOENT) {
                    // The segment went away between finding it and opening it.
                    if try newTruncationPoint() != nil { continue }
                    let (first, next) = log.state.withLock { ($0.firstOffset, $0.nextOffset) }
                    if nextOffset < first { throw LogError.offsetOutOfRange(requested: nextOffset, firstOffset: first, nextOffset: next) }
                    throw LogError.io(operation: operation, path: path, errno: ENOENT)
                }
                guard let place = located, let file else { return nil }
                if place.segment.baseOffset == segmentBase, place.limit == limit, place.start >= limit { return nil }
                scanner = try SegmentScanner(file: file, from: place.start, limit: place.limit, bufferBytes: bufferBytes)
                segmentBase = place.segment.baseOffset
                limit = place.limit
            }
            switch try scanner!.next() {
            case .batch(let batch, let position):
                let header = batch.header
                if header.nextOffset <= nextOffset { continue }
                // Read after a cut inside it: read it again as it is now.
                if let cut = try newTruncationPoint(), cut < header.nextOffset { continue }
                guard header.firstOffset <= nextOffset else {
                    throw LogError.corruption(file: scanner!.file.path, position: position, offset: header.firstOffset,
                                              reason: "offset gap: expected a batch holding \(nextOffset)")
                }
                nextOffset = header.nextOffset
                return batch
            case .end(let position):
                // The end of what was visible when the scan started: look again.
                let file = scanner!.file.path
                scanner = nil
                if position < limit {
                    if try newTruncationPoint() != nil { continue }
                    throw LogError.corruption(file: file, position: position, offset: nextOffset,
                                              reason: "zeroes inside the log's valid range")
                }
                if let place = try log.locate(nextOffset, flushing: flushing), place.segment.baseOffset == segmentBase, place.limit == limit {
                    return nil
                }
            case .invalid(let position, let reason):
                let file = scanner!.file.path
                if try newTruncationPoint() != nil { continue }
                throw LogError.corruption(file: file, position: position, offset: nextOffset, reason: reason)
            }
        }
    }
}

extension SegmentLog {
    struct Place {
        var segment: SegmentInfo
        var start: Int64
        var limit: Int64
    }

    /// Where a scan for `offset` starts and how far it may read; nil at or past the end.
    /// Flushes the in-process buffer when the reader needs bytes still in it.
    func locate(_ offset: UInt64, flushing: Bool = true) throws -> Place? {
        enum Found { case end, needsFlush, segment(SegmentInfo, Int, Int64) }
        let found: Found = try state.withLock { state in
            if state.isClosed { throw LogError.closed }
            if offset >= state.nextOffset { return .end }
            guard offset >= state.firstOffset else {
                throw LogError.offsetOutOfRange(requested: offset, firstOffset: state.firstOffset, nextOffset: state.nextOffset)
            }
            // Only the writer may flush; the reader asks for it through the queue.
            if offset >= state.flushedNextOffset { return .needsFlush }
            var low = 0
            var high = state.segments.count - 1
            while low < high {
                let mid = (low + high + 1) / 2
                if state.segments[mid].baseOffset <= offset { low = mid } else { high = mid - 1 }
            }
            let isActive = low == state.segments.count - 1
            return .segment(state.segments[low], low, isActive ? state.flushedPosition : state.segments[low].endPosition)
        }
        guard case .segment(let found0, let slot, let limit0) = found else {
            if case .needsFlush = found {
                guard flushing else { throw NeedsFlush() }
                try flush()
                return try locate(offset)
            }
            return nil
        }
        var segment = found0
        var limit = limit0
        if segment.index == nil {
            segment = try loadIndex(segment, slot: slot)
        }
        let start = segment.index?.floor(offset)?.position ?? Int64(Format.segmentHeaderBytes)
        limit = max(limit, start)
        return Place(segment: segment, start: start, limit: limit)
    }

    /// Loads a sealed segment's index file, or rebuilds it by scanning (and rewrites the file).
    private func loadIndex(_ segment: SegmentInfo, slot: Int) throws -> SegmentInfo {
        var segment = segment
        let file: IndexFile
        if let loaded = files.loadIndex(baseOffset: segment.baseOffset, segmentBytes: segment.endPosition),
            loaded.nextOffset == segment.nextOffset {
            file = loaded
        } else {
            file = try files.rebuildIndex(of: segment.handle, endPosition: segment.endPosition,
                                          intervalBytes: options.indexIntervalBytes)
            guard file.nextOffset == segment.nextOffset else {
                throw LogError.corruption(file: segment.handle.path, position: segment.endPosition, offset: file.nextOffset,
                                          reason: "segment ends at offset \(file.nextOffset), the next segment starts at \(segment.nextOffset)")
            }
            try? files.writeIndex(of: SegmentInfo(baseOffset: segment.baseOffset, handle: segment.handle,
                                                  endPosition: segment.endPosition, nextOffset: segment.nextOffset,
                                                  index: SparseIndex(entries: file.entries),
                                                  newestTimestampMs: file.newestTimestampMs),
                                      intervalBytes: options.indexIntervalBytes)
        }
        segment.index = SparseIndex(entries: file.entries)
        segment.newestTimestampMs = file.newestTimestampMs
        let loaded = segment
        state.withLock { state in
            if slot < state.segments.count, state.segments[slot].baseOffset == loaded.baseOffset,
                state.segments[slot].index == nil {
                state.segments[slot].index = loaded.index
                state.segments[slot].newestTimestampMs = loaded.newestTimestampMs
            }
        }
        return segment
    }

    // MARK: Public reads

    /// A cursor over stored batches from the batch holding `offset` to the current end.
    public func batches(from offset: UInt64, bufferBytes: Int = 1 << 20) -> BatchCursor {
        BatchCursor(log: self, from: offset, bufferBytes: bufferBytes)
    }

    /// Stored batches from the one holding `offset`, up to about `maxBytes` (at least one).
    public func read(from offset: UInt64, maxBytes: Int = 1 << 20) throws -> [StoredBatch] {
        var cursor = batches(from: offset, bufferBytes: 64 << 10)
        var result: [StoredBatch] = []
        var bytes = 0
        while bytes < maxBytes, let batch = try cursor.next() {
            result.append(batch)
            bytes += batch.bytes.count
        }
        return result
    }

    /// The records with offsets in `range` that the log holds, in order. A truncation that
    /// cuts into the range while it is read makes the read start over, so the result is the
    /// log before or after it, never a mix.
    public func records(in range: Range<UInt64>) throws -> [LogRecord] {
        var attempts = 0
        while true {
            do {
                var cursor = batches(from: range.lowerBound, bufferBytes: 64 << 10)
                var result: [LogRecord] = []
                while let batch = try cursor.next() {
                    for record in try batch.logRecords() where range.contains(record.offset) { result.append(record) }
                    if batch.header.nextOffset >= range.upperBound { break }
                }
                return result
            } catch LogError.truncated where attempts < Self.readAttemptsMax {
                attempts += 1
            }
        }
    }

    /// How many times a one-shot read starts over after truncations cut into it.
    static let readAttemptsMax = 16

    /// The record at `offset`; throws `offsetOutOfRange` when the log does not hold it.
    public func record(at offset: UInt64) throws -> LogRecord {
        guard offset < UInt64.max, let record = try records(in: offset..<(offset + 1)).first else {
            let (first, next) = state.withLock { ($0.firstOffset, $0.nextOffset) }
            throw LogError.offsetOutOfRange(requested: offset, firstOffset: first, nextOffset: next)
        }
        return record
    }
}

/// A read needs records still in the process buffer: the async reader awaits `flush()`.
struct NeedsFlush: Error {}
