/// When a follower stops reading from its primary: the bytes of received batches waiting for
/// the log. The machine acknowledges a batch as received before it is written, so the primary's
/// in-flight cap (`maxInFlightBytesPerFollower`) does not bound them: a follower far behind
/// received faster than it wrote and held hundreds of megabytes (issue 9's catch-up: ~190 MB,
/// every page of it fresh memory to fault in). At `maxBytes` waiting, reads from the primary
/// stop until the next log write takes what waits; TCP's flow control holds the rest, and the
/// primary's writes wait for its socket to drain. Pure bookkeeping: `FollowerDriver` switches
/// the channel's reading. Confined to the driver's event loop.
struct FollowerReadPause {
    /// `ReplicationConfiguration.maxUnwrittenBytes`: a write takes all that waits when it
    /// starts, so the next is ready when it ends while this much arrives; memory stays at about
    /// twice this plus one receive buffer. 4 MiB cost ~10% of catch-up's throughput on a quiet
    /// machine (every 4 MiB the primary's sends stalled for a few wake-ups) against unbounded.
    let maxBytes: Int
    /// Stored bytes of received batches not yet taken by a log write.
    private(set) var waitingBytes = 0
    /// Reading from the primary is off.
    private(set) var paused = false
    /// Times reading was switched off (for tests and diagnosis).
    private(set) var pauses = 0

    /// A threshold below one byte counts as one (reading stops at any batch waiting).
    init(maxBytes: Int) {
        self.maxBytes = max(1, maxBytes)
    }

    /// Batches of `bytes` wait for the log. True when reading must stop now.
    mutating func waiting(_ bytes: Int) -> Bool {
        waitingBytes += bytes
        guard !paused, waitingBytes >= maxBytes else { return false }
        paused = true
        pauses += 1
        return true
    }

    /// A log write took everything waiting. True when reading must start again now.
    mutating func taken() -> Bool {
        waitingBytes = 0
        guard paused else { return false }
        paused = false
        return true
    }

    /// A new connection to the primary reads from the start; what waits still counts.
    mutating func connectionChanged() {
        paused = false
    }
}
