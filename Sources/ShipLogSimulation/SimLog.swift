import ShipLogProtocol
import ShipLogStorage

/// One stored batch in a simulated log, with its header's fields at hand.
struct SimBatch: Sendable {
    var bytes: [UInt8]
    var first: UInt64
    var next: UInt64
    var epoch: UInt64
}

/// An in-memory log standing in for SegmentLog: whole stored batches (built and checked by the
/// storage target's own encoder and CRC), a written end and a durable prefix. A process crash
/// keeps what is written (the kernel has it); a power loss keeps the durable prefix and, like a
/// kernel that flushed some pages on its own, possibly a few batches more.
struct SimLog: Sendable {
    var firstOffset: UInt64 = 0
    var batches: [SimBatch] = []
    var durableCount = 0
    var epochs = EpochHistory()
    var endBytes: Int64 = 0

    var nextOffset: UInt64 { batches.last?.next ?? firstOffset }
    var durableNextOffset: UInt64 { durableCount == 0 ? firstOffset : batches[durableCount - 1].next }

    var nodeLog: NodeLog {
        NodeLog(firstOffset: firstOffset, nextOffset: nextOffset, epochs: epochs, durableNextOffset: durableNextOffset,
                endBytes: endBytes)
    }

    /// A batch of one to three records naming the append, sealed at this log's end.
    static func makeBatch(append id: UInt64, first: UInt64, epoch: UInt64) -> [UInt8] {
        let records = (0..<(1 + Int(id % 3))).map { i in
            (0..<8).map { UInt8(truncatingIfNeeded: id >> (8 * UInt64($0))) } + [UInt8(i)]
        }
        var batch = StoredBatch(encoding: records, codec: .none)
        batch.seal(firstOffset: first, leaderEpoch: epoch, timestampMs: 1_700_000_000_000)
        return batch.bytes
    }

    /// Appends after the checks SegmentLog.append(storedBatch:) makes: the CRC and contiguity.
    mutating func append(_ bytes: [UInt8]) throws -> SimBatch {
        let stored = try StoredBatch(bytes: bytes)
        let header = stored.header
        guard header.firstOffset == nextOffset else {
            throw SimLogError.notContiguous(at: header.firstOffset, end: nextOffset)
        }
        guard header.leaderEpoch >= (epochs.lastEpoch ?? 0) else {
            throw SimLogError.epochBackwards(header.leaderEpoch, after: epochs.lastEpoch ?? 0)
        }
        let batch = SimBatch(bytes: bytes, first: header.firstOffset, next: header.nextOffset, epoch: header.leaderEpoch)
        batches.append(batch)
        epochs.record(epoch: batch.epoch, startOffset: batch.first)
        endBytes += Int64(bytes.count)
        return batch
    }

    mutating func sync() { durableCount = batches.count }

    /// Whole batches, so the end may land before `offset`; durable, like SegmentLog's truncate.
    mutating func truncate(toNextOffset offset: UInt64) -> [SimBatch] {
        var cut: [SimBatch] = []
        while let last = batches.last, last.next > offset { cut.append(batches.removeLast()) }
        durableCount = min(durableCount, batches.count)
        epochs.truncate(toNextOffset: nextOffset)
        return cut
    }

    mutating func reset(startingAt offset: UInt64) -> [SimBatch] {
        let cut = batches
        batches = []
        durableCount = 0
        firstOffset = offset
        epochs = EpochHistory()
        return cut
    }

    /// Power loss: keeps the durable prefix and `extra` of the batches after it; returns the lost.
    mutating func losePower(keepingExtra extra: Int) -> [SimBatch] {
        let keep = min(batches.count, durableCount + extra)
        let lost = Array(batches[keep...])
        batches.removeLast(batches.count - keep)
        durableCount = batches.count  // what survived came back from the disk
        var history = EpochHistory()
        for batch in batches { history.record(epoch: batch.epoch, startOffset: batch.first) }
        epochs = history
        return lost
    }

    /// Batches from `from` (a boundary), at most `maxBytes` but at least one.
    func read(from: UInt64, maxBytes: Int) -> [[UInt8]] {
        guard let start = index(of: from) else { return [] }
        var out: [[UInt8]] = []
        var bytes = 0
        for batch in batches[start...] {
            if !out.isEmpty && bytes + batch.bytes.count > maxBytes { break }
            out.append(batch.bytes)
            bytes += batch.bytes.count
        }
        return out
    }

    /// The index of the batch starting at `offset` (binary search: batches are sorted).
    func index(of offset: UInt64) -> Int? {
        var low = 0
        var high = batches.count
        while low < high {
            let mid = (low + high) / 2
            if batches[mid].first < offset { low = mid + 1 } else { high = mid }
        }
        return low < batches.count && batches[low].first == offset ? low : nil
    }

    /// The batch holding `offset`, if any.
    func batch(at offset: UInt64) -> SimBatch? {
        guard offset >= firstOffset, offset < nextOffset else { return nil }
        var low = 0
        var high = batches.count
        while low < high {
            let mid = (low + high) / 2
            if batches[mid].next <= offset { low = mid + 1 } else { high = mid }
        }
        return low < batches.count ? batches[low] : nil
    }
}

enum SimLogError: Error {
    case notContiguous(at: UInt64, end: UInt64)
    case epochBackwards(UInt64, after: UInt64)
}
