/// The follower's side of replication, for one connection to the primary at a time.
/// Pure: events in, actions out; the shell carries the actions out in order and reports back.
public struct FollowerReplicator: Sendable {
    public enum Action: Equatable, Sendable {
        case send(Frame)
        /// Append these stored batches, in order, to the log with `.os` durability (the log
        /// checks each CRC), then report `appended`. Appends are applied in the order given.
        case append([[UInt8]])
        /// fdatasync the log, then report `synced`. At most one is outstanding.
        case sync
        /// Cut the log so its next offset is `toNextOffset`, then report `truncated`.
        case truncate(toNextOffset: UInt64)
        /// Empty the log and start it at `startingAt` (full resync), then report `truncated`.
        case reset(startingAt: UInt64)
        /// Send `goodbye` if possible and close the connection to the primary.
        case close(CloseReason, message: String)
    }
}
