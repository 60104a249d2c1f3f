import NIOCore
import ShipLogProtocol
import ShipLogStorage

/// Reading from the primary stops while too many of its batches wait for the log
/// (`ClusterReadPause`, where the choice against the failure detector is argued). Every path
/// that ends a pause: a log report (written, failed, or the pool shut down: `ClusterLogWork`
/// reports each job exactly once), the connection's end (`peerDisconnected`, the machine's own
/// `disconnect`, a newer connection replacing it), a role announcement (promotion, campaign,
/// step-down, a new primary or epoch: the session ends with it), and the node halting. A cut
/// (truncate, reset) comes only from a follow reply, at a session's start, after every append
/// of the sessions before it was reported (`NodeMachine.settle` starts a session on an idle
/// log), so no pause is left then. None of them waits on the paused connection: no deadlock.
extension ClusterDriver {
    /// Counts `batches` queued for the log from `connection`, stopping reading there at the
    /// mark. Returns their bytes, for `batchesReported`.
    func batchesQueued(_ batches: [StoredBatch], from connection: ConnectionID?) -> Int {
        var bytes = 0
        for batch in batches { bytes += batch.bytes.count }
        // A connection that ended while the action waited (behind a persist) has nothing to stop.
        let source = connection.flatMap { mesh.isCurrent($0) ? $0 : nil }
        if let stop = readPause.queued(bytes, from: source, now: clock.now()) {
            logger.debug("reading from the primary stops: \(readPause.waitingBytes) bytes of its batches wait for the log")
            mesh.setReading(false, on: stop)
        }
        return bytes
    }

    /// The log reported an `appendBatches` of `bytes` (written or failed: released either way).
    func batchesReported(_ bytes: Int) {
        if let start = readPause.written(bytes, now: clock.now()) { mesh.setReading(true, on: start) }
    }

    /// Reading starts again on the paused connection whatever waits.
    func resumeReading() {
        if let start = readPause.resume(now: clock.now()) { mesh.setReading(true, on: start) }
    }

    /// A peer's connection ended: if it was the paused one, nothing is left to switch on.
    func readPauseConnectionEnded() {
        if let paused = readPause.paused, !mesh.isCurrent(paused) { readPause.ended(paused, now: clock.now()) }
    }
}
