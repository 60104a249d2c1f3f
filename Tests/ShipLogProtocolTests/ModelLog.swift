import ShipLogStorage
@testable import ShipLogProtocol

/// A stored batch of `records` small records at `first` in `epoch`, built by the storage encoder.
func makeBatch(first: UInt64, epoch: UInt64, records: Int, tag: UInt8 = 0) -> [UInt8] {
    let payload = (0..<records).map { i in [tag, UInt8(truncatingIfNeeded: first + UInt64(i)), UInt8(truncatingIfNeeded: epoch)] }
    var batch = StoredBatch(encoding: payload, codec: .none)
    batch.seal(firstOffset: first, leaderEpoch: epoch, timestampMs: 1_700_000_000_000)
    return batch.bytes
}

func header(_ bytes: [UInt8]) -> BatchHeader {
    try! bytes.withUnsafeBytes { BatchHeader.decode($0) }.get()
}

/// An in-memory log of whole stored batches, standing in for SegmentLog in the simulations.
struct ModelLog: Equatable {
    var firstOffset: UInt64 = 0
    var batches: [[UInt8]] = []
    var endBytes: Int64 = 0
    var durable: UInt64 = 0

    var nextOffset: UInt64 { batches.last.map { header($0).nextOffset } ?? firstOffset }
    var lastEpoch: UInt64? { batches.last.map { header($0).leaderEpoch } }
    /// Where the log ends, with where its last epoch starts, as FollowerDriver reports it.
    var end: LogEnd { LogEnd(nextOffset: nextOffset, lastEpoch: lastEpoch, lastEpochStart: epochs.entries.last?.startOffset) }
    var epochs: EpochHistory {
        var history = EpochHistory()
        for batch in batches { let h = header(batch); history.record(epoch: h.leaderEpoch, startOffset: h.firstOffset) }
        return history
    }
    var view: PrimaryReplicator.LogView { .init(firstOffset: firstOffset, nextOffset: nextOffset, epochs: epochs) }

    /// Appends after checking contiguity and the CRC, as SegmentLog.append(storedBatch:) does.
    mutating func append(_ bytes: [UInt8]) throws {
        let batch = try StoredBatch(bytes: bytes)
        precondition(batch.header.firstOffset == nextOffset, "append at \(batch.header.firstOffset), log ends at \(nextOffset)")
        batches.append(bytes)
        endBytes += Int64(bytes.count)
    }

    mutating func append(epoch: UInt64, records: Int, tag: UInt8 = 0) {
        try! append(makeBatch(first: nextOffset, epoch: epoch, records: records, tag: tag))
    }

    /// Cuts whole batches, so the end may land before `offset` (at a batch boundary).
    mutating func truncate(toNextOffset offset: UInt64) {
        while let last = batches.last, header(last).nextOffset > offset { batches.removeLast() }
        durable = min(durable, nextOffset)
    }

    mutating func reset(startingAt offset: UInt64) {
        batches = []
        firstOffset = offset
        durable = offset
    }

    /// Retention: drops whole batches below `offset`.
    mutating func retain(from offset: UInt64) {
        while let first = batches.first, header(first).nextOffset <= offset {
            batches.removeFirst()
            firstOffset = header(first).nextOffset
        }
    }

    /// Batches from `from` (a boundary), at most `maxBytes` but at least one.
    func read(from: UInt64, maxBytes: Int) -> [[UInt8]] {
        guard let start = batches.firstIndex(where: { header($0).firstOffset == from }) else { return [] }
        var out: [[UInt8]] = []
        var bytes = 0
        for batch in batches[start...] {
            if !out.isEmpty && bytes + batch.count > maxBytes { break }
            out.append(batch)
            bytes += batch.count
        }
        return out
    }

    /// The records' bytes from `offset` on, with their epochs, for comparing logs.
    func contents(from offset: UInt64) -> [[UInt8]] {
        batches.filter { header($0).firstOffset >= offset }
    }
}
