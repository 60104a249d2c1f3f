import Foundation
@testable import ShipLogStorage

/// The epoch history read back from the batches themselves: what `epochHistory` must equal.
func epochsOfBatches(_ log: SegmentLog) throws -> EpochHistory {
    var history = EpochHistory()
    var cursor = log.batches(from: log.firstOffset)
    while let batch = try cursor.next() {
        history.record(epoch: batch.header.leaderEpoch, startOffset: batch.header.firstOffset)
    }
    return history
}

/// The epoch checkpoint file of the log in `directory`, decoded; nil when absent or damaged.
func checkpointFile(_ directory: String) -> EpochHistory? {
    let path = directory + "/" + Format.epochCheckpointName
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    return try? fileBytes(path).withUnsafeBytes { EpochCheckpoint.decode($0) }.get()
}

func history(_ pairs: [(UInt64, UInt64)]) -> EpochHistory {
    EpochHistory(entries: pairs.map { EpochHistory.Entry(epoch: $0.0, startOffset: $0.1) })
}

/// Ten records per batch: `epochs[i]` is the epoch of batch i, appended with fsync.
@discardableResult
func appendBatches(_ log: SegmentLog, epochs: [UInt64]) throws -> [[UInt8]] {
    var records: [[UInt8]] = []
    for epoch in epochs {
        let start = Int(log.nextOffset)
        let batch = (0..<10).map { makeRecord(start + $0) }
        try log.append(batch, epoch: epoch, durability: .fsync)
        records += batch
    }
    return records
}
