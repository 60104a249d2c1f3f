/// What a follower must have done with a batch before it counts towards a sync append's quorum
/// (PostgreSQL's `synchronous_commit`, Kafka's `acks`).
public enum AckLevel: String, Sendable, CaseIterable, Codable {
    /// The batch reached the follower's process.
    case received
    /// The follower wrote it to its log (in its kernel's page cache).
    case written
    /// The follower fdatasynced it.
    case durable
}

/// Whether an append waits for followers.
public enum ReplicationMode: Equatable, Sendable {
    /// Returns after the local write; followers catch up.
    case async
    /// Returns once `quorum` followers have the append at the configured ack level.
    case sync(quorum: Int)
    /// Returns once every configured follower has it.
    case syncAll
}

/// The settings the replication state machines decide with. Times are durations on the
/// monotonic clock the shell passes in as `now`.
public struct ReplicationConfiguration: Equatable, Sendable {
    public var ackLevel: AckLevel = .written
    /// The followers this primary expects (for `syncAll` and for reporting).
    public var followers: [NodeID] = []
    /// A sync append needs at least this many in-sync followers, or it fails (after
    /// `minSyncFollowersTimeout` when that is non-zero). Never degrades to async.
    public var minSyncFollowers: Int = 1
    /// How long a sync append waits for enough in-sync followers before failing; zero fails at once.
    public var minSyncFollowersTimeout: Duration = .zero
    /// How long a sync append waits for its acknowledgements before failing with a timeout.
    public var syncTimeout: Duration = .seconds(10)
    /// A follower is in sync while it has been caught up (acknowledged the primary's end at the
    /// ack level) within this long (Kafka's `replica.lag.time.max.ms`).
    public var inSyncLagTimeout: Duration = .seconds(10)
    /// Between heartbeats from the primary to each follower.
    public var heartbeatInterval: Duration = .milliseconds(100)
    /// A follower closes its connection (and the shell reconnects) when the primary has sent
    /// nothing for this long while it streams or waits for a follow reply. The default is 30
    /// heartbeats at the default interval: far above scheduling or GC pauses, short enough that a
    /// follower of a vanished primary reconnects within seconds. Must exceed `heartbeatInterval`.
    public var primaryTimeout: Duration = .seconds(3)
    /// Stored bytes shipped to one follower and not yet acknowledged as received; beyond this
    /// the primary stops shipping to it, so a slow follower costs no memory (it is read from disk later).
    public var maxInFlightBytesPerFollower: Int = 8 << 20
    /// Stored bytes the shell reads for one `batches` frame.
    public var maxShipBytes: Int = 1 << 20
    /// Stored bytes a follower holds received (and acknowledged as received) but not yet handed
    /// to its log; at this many it stops reading from the primary until its next log write takes
    /// them, so a follower whose disk is slower than the network holds at most about twice this
    /// (`maxInFlightBytesPerFollower` counts received bytes, so it does not bound them). Large
    /// enough that pausing is rare: each pause stalls the primary's sends for a few wake-ups.
    public var maxUnwrittenBytes: Int = 32 << 20
    /// The largest frame either side accepts, header included; anything larger closes the
    /// connection. It must exceed the log's `maxBatchBytes`, since a frame carries whole batches.
    public var maxFrameBytes: Int = (64 << 20) + 4096
    public init() {}
}
