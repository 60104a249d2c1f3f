import ShipLogProtocol
import ShipLogStorage

/// The follower's view of its log for the machine, and the append a caught-up follower does
/// on its event loop. Static: they touch the log, not the driver's state.
extension FollowerDriver {
    static func logEnd(_ log: SegmentLog) -> LogEnd {
        let history = log.epochHistory
        let next = log.nextOffset
        // The start is sent only when it is below the end (a history the log is ahead of, or an
        // empty log after a reset, says nothing reliable).
        let start = history.entries.last.map(\.startOffset).flatMap { $0 < next ? $0 : nil }
        return LogEnd(nextOffset: next, lastEpoch: history.lastEpoch, lastEpochStart: history.lastEpoch == nil ? nil : start)
    }

    static func knownEpoch(_ log: SegmentLog) -> UInt64 {
        max(log.lastEpoch, log.epochHistory.lastEpoch ?? 0)
    }

    /// The largest frame's worth of batches appended on the event loop (`appendOnLoop`).
    /// Frames of a caught-up follower (a few KiB) fit; catch-up's 1 MiB frames go to the pool,
    /// where their write overlaps the loop receiving the next frame.
    static let onLoopAppendBytesMax = 64 << 10

    /// Appends `batches` on the event loop when that needs no waiting, saving the two thread
    /// hand-offs (loop → pool → loop) of `enqueueAppend` that a sync append at ack level
    /// `written` otherwise waits for; nil when it cannot (the caller queues it to the pool).
    ///
    /// Why this does not block the loop for an unbounded time: `appendWithoutWaiting` takes
    /// the log's mutex only if it is free and writes only when nothing is queued or being
    /// written (no roll, truncate, reset, close or fdatasync can hold what it needs; an
    /// fdatasync runs outside the mutex and does not stop a write), and only when the batches
    /// fit in the active segment (a roll, with its fdatasyncs, stays on the pool). Its one I/O
    /// is a pwrite of at most `onLoopAppendBytesMax` bytes into the page cache, a bounded
    /// memcpy (the kernel's dirty-page throttling can slow it, as it slows any writer). Log
    /// work on the pool is never overtaken: this runs only when none is in flight.
    static func appendOnLoop(_ batches: [StoredBatch], to log: SegmentLog) -> Result<LogEnd, any Error>? {
        var bytes = 0
        for batch in batches { bytes += batch.bytes.count }
        guard bytes <= onLoopAppendBytesMax else { return nil }
        do {
            // The machine checked each CRC; the log does not check it again.
            guard try log.appendWithoutWaiting(storedBatches: batches) != nil else { return nil }
            return .success(logEnd(log))
        } catch {
            return .failure(error)
        }
    }
}
