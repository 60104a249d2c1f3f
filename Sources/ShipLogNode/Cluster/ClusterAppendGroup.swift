import ShipLogProtocol
import ShipLogStorage
import Synchronization

/// `writeAppend`s queued back to back on a node's line of log operations, carried out by one
/// pool job with one fdatasync among them: group commit for the cluster path. Without it, 64
/// concurrent `.fsync` appends on an automatic-role primary paid 64 fdatasyncs one after another
/// (`Review10bAppendPathTests`). Only appends with nothing else queued between them join a group,
/// so the line's order (format.md §14) is kept: each is written in the order the machine asked.
///
/// Filled on the node's event loop; the pool job closes it when it starts (`take`), after which a
/// new append opens a new group behind it.
final class ClusterAppendGroup: Sendable {
    struct Member: Sendable {
        let records: [[UInt8]]
        let epoch: UInt64
        /// On disk before it is reported written (the machine's `sync`, or the log's `.fsync`).
        let sync: Bool
    }

    private let state = Mutex<(members: [Member], started: Bool)>(([], false))

    /// Adds `member` unless the job already started. Returns its index in the group.
    func join(_ member: Member) -> Int? {
        state.withLock { state in
            guard !state.started else { return nil }
            state.members.append(member)
            return state.members.count - 1
        }
    }

    /// The members, once: the group is closed from here on.
    func take() -> [Member] {
        state.withLock { state in
            precondition(!state.started, "an append group was taken twice")
            state.started = true
            return state.members
        }
    }

    /// What one member's write came to: its offsets and the stored batch read back from the page
    /// cache (for shipping without a read), or why it failed.
    typealias Outcome = Result<(offsets: Range<UInt64>, stored: [UInt8]?), any Error>

    /// On the pool: writes every member at `.os` in order, then one fdatasync if any member needs
    /// one. A failed fdatasync fails every member: the log has cut itself back to its durable end,
    /// so none of them is in it any more, and it refuses writes from then on (`LogError.failed`),
    /// which stops the node.
    static func write(_ members: [Member], to log: SegmentLog) -> [Outcome] {
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(members.count)
        var needsSync = false
        for member in members {
            do {
                let offsets = try log.append(member.records, epoch: member.epoch, durability: .os)
                outcomes.append(.success((offsets, nil)))
                needsSync = needsSync || member.sync
            } catch {
                outcomes.append(.failure(error))
            }
        }
        if needsSync {
            do {
                try log.sync()
            } catch {
                return members.map { _ in .failure(error) }
            }
        }
        for index in outcomes.indices {
            guard case .success(let written) = outcomes[index] else { continue }
            outcomes[index] = .success((written.offsets, readBack(log, written.offsets)))
        }
        return outcomes
    }

    private static func readBack(_ log: SegmentLog, _ offsets: Range<UInt64>) -> [UInt8]? {
        var cursor = log.batches(from: offsets.lowerBound, bufferBytes: 16 << 10)
        guard let batch = try? cursor.next(), batch.header.firstOffset == offsets.lowerBound,
              batch.header.nextOffset == offsets.upperBound else { return nil }
        return batch.bytes
    }
}
