import ShipLogStorage

extension NodeMachine {
    /// What the shell must do, in order. Log operations (`writeAppend`, `appendBatches`,
    /// `truncateLog`, `resetLog`) are carried out one after another in the order given, each
    /// reported back with its event; `syncLog` may run alongside them.
    public enum Action: Equatable, Sendable {
        /// Write the election state file (format.md §13.2) durably before carrying out any later
        /// action of this batch. When present it is always the first action of a batch.
        case persist(ElectionDurableState)
        /// Send on the current connection to `to`; drop it when there is none.
        case send(Frame, to: NodeID)
        /// Send `goodbye` if possible and close the connection to `peer`. The machine already
        /// treats the connection as gone; report `peerDisconnected` when it is closed and
        /// `peerConnected` for the next one (never before the old one's `peerDisconnected`).
        case disconnect(NodeID, CloseReason, message: String)
        /// Primary: append the records of `id` as one batch with leader epoch `epoch`, fdatasync
        /// it when `sync` (ack level `durable`), then report `appendWritten` or `appendFailed`.
        case writeAppend(AppendID, epoch: UInt64, sync: Bool)
        /// Follower: append these stored batches (their CRCs already checked by the replicator;
        /// the log checks contiguity) without fsync, then
        /// report `batchesAppended` or `batchesAppendFailed`.
        case appendBatches([StoredBatch])
        /// Cut the log so its next offset is at most `toNextOffset` (durably), then report `logCut`.
        case truncateLog(toNextOffset: UInt64)
        /// Empty the log and start it at `startingAt` (durably), then report `logCut`.
        case resetLog(startingAt: UInt64)
        /// fdatasync the log, then report `logSynced`.
        case syncLog
        /// Read stored batches from the log exactly at `from` (at most `maxBytes`, at least one
        /// whole batch when one exists), send them as one `batches` frame with this epoch and
        /// commit offset on connection `connection` to `to` (drop the ship if that connection is
        /// gone), then report `shipped(connection, ...)`.
        case ship(to: NodeID, connection: ConnectionID, from: UInt64, maxBytes: Int, epoch: UInt64, commitOffset: UInt64)
        /// The append may return to its caller.
        case acknowledge(AppendID)
        /// The append fails with this error.
        case fail(AppendID, NodeAppendError)
        /// The node's role, epoch or primary changed (for the application and status).
        case roleChanged(NodeRoleChange)
        case log(NodeEvent)
    }
}
