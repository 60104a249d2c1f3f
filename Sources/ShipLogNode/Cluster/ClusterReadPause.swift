import ShipLogProtocol

/// When an automatic-role follower stops reading from its primary: the bytes of received
/// batches queued for the log (`appendBatches`) and not yet written. The machine acknowledges a
/// batch as received before it is written, so the primary's in-flight cap does not bound them;
/// a follower catching up gigabytes from a primary faster than its disk held them all. At
/// `maxBytes` queued, reading stops on the connection the batches came from (only that one:
/// votes and heartbeats of other voters keep arriving) until the log's reports bring the queue
/// below `maxBytes` again; TCP's flow control holds the rest and the primary's ships wait for its
/// socket to drain (`ClusterDriver.ship`). The fixed-role follower's `FollowerReadPause` is the
/// model; here each `appendBatches` is its own log job, so bytes count down per report.
///
/// Why pausing the connection that also carries the primary's heartbeats is safe for the
/// failure detector, rather than reading on:
/// - A pause is short. Reading stops only at `maxBytes` queued and starts again as soon as the
///   queue drops below it, once the log has written what was read past the mark: the frames
///   completed by one read, at most `PeerMesh.maxReadBytes` (256 KiB) per turn of the loop on
///   a voter's connection, so at most a frame and a read past the mark. (NIO's default, 4 reads
///   of up to 4 MiB, read the whole connection, up to `maxInFlightBytesPerFollower` (8 MiB),
///   past it: at a disk's 2 MiB/s a silence of seconds, Review13SlowDiskElectionTests.)
/// - The heartbeats are not what proves the primary alive while reading is paused: they wait in
///   the connection behind up to the primary's in-flight cap of batches (a follower that does
///   not read acknowledges nothing), drained at the follower's disk rate, 4 s at 2 MiB/s. The
///   batches frames ahead of them arrive as the log writes, one per `maxShipBytes` written, and
///   each restarts the follower's own detector (`Election.primaryFrame`, as Raft's
///   AppendEntries do). The pre-vote window stays on heartbeats (a dead primary's batches still
///   draining must not make the follower refuse the failover), so a follower paused longer than
///   `preVoteSilence` grants pre-votes: harmless while no voter suspects the primary.
/// - A longer pause is a log that does not keep up (or hangs). A follower whose detector then
///   fires is safe to let suspect: with pre-vote and check-quorum (the defaults), every voter
///   that heard the primary within `preVoteSilence` refuses with `primaryAlive`, and any voter
///   whose log is ahead (the primary, a caught-up follower) refuses with `logBehind`: it is
///   catching up, so it is behind. It bumps no epoch; the refused pre-candidate follows again
///   and reconnects, and its catch-up continues from what its log holds. In two-node
///   self-promotion (no pre-vote, no one to refuse) it could promote itself: what that mode
///   already accepts for any silence of the primary, a partition's included.
/// - The primary's check-quorum hears a paused follower through the written acks its log
///   reports (one per job): only a log that completes nothing for a whole election timeout
///   goes unheard, where before it still answered heartbeats. A primary whose majority's logs
///   all stall that long now steps down (before, it kept office on their `received` acks).
/// - The alternative, reading on and holding batches back, bounds nothing (they are read), and
///   skipping the machine's ticks while paused (what `FollowerDriver` does) would also stop the
///   campaign rounds and hide a hung log from the election.
/// Pure bookkeeping, confined to the driver's loop; `ClusterDriver` switches the channel.
struct ClusterReadPause: Equatable {
    /// `ReplicationConfiguration.maxUnwrittenBytes`; below one byte counts as one.
    let maxBytes: Int
    /// Stored bytes of `appendBatches` queued for the log and not yet reported.
    private(set) var waitingBytes = 0
    /// The most `waitingBytes` ever held: the memory the pause actually bounds (tests).
    private(set) var peakWaitingBytes = 0
    /// The connection whose reading is off, if any.
    private(set) var paused: ConnectionID?
    /// Times reading was switched off, when the current pause began, and the longest pause
    /// (for tests and diagnosis: the detector's margin).
    private(set) var pauses = 0
    private(set) var pausedSince: Duration?
    private(set) var longestPause: Duration = .zero

    init(maxBytes: Int) {
        self.maxBytes = max(1, maxBytes)
    }

    /// Batches of `bytes` read from `connection` (nil: not known, nothing to stop) were queued
    /// for the log. Returns the connection whose reading must stop now.
    mutating func queued(_ bytes: Int, from connection: ConnectionID?, now: Duration) -> ConnectionID? {
        precondition(bytes >= 0, "queued \(bytes) bytes")
        waitingBytes += bytes
        peakWaitingBytes = max(peakWaitingBytes, waitingBytes)
        guard paused == nil, waitingBytes >= maxBytes, let connection else { return nil }
        paused = connection
        pausedSince = now
        pauses += 1
        return connection
    }

    /// The log reported (written or failed: either way released) batches of `bytes`. Returns
    /// the connection whose reading must start again now.
    mutating func written(_ bytes: Int, now: Duration) -> ConnectionID? {
        precondition(bytes >= 0 && bytes <= waitingBytes, "written \(bytes) of \(waitingBytes) waiting bytes")
        waitingBytes -= bytes
        guard waitingBytes < maxBytes else { return nil }
        return resume(now: now)
    }

    /// Reading must not stay off whatever waits (the role changed, the node stops): returns the
    /// connection to start reading again. What waits still counts; the next batch queued while
    /// it is over `maxBytes` stops reading again.
    mutating func resume(now: Duration) -> ConnectionID? {
        if let since = pausedSince { longestPause = max(longestPause, now - since) }
        pausedSince = nil
        defer { paused = nil }
        return paused
    }

    /// `connection` ended: nothing is left to switch on it.
    mutating func ended(_ connection: ConnectionID, now: Duration) {
        if paused == connection { _ = resume(now: now) }
    }
}
