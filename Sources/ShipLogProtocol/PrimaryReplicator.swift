import ShipLogStorage

/// An append waiting for its followers, numbered by the shell.
public struct AppendID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "append \(rawValue)" }
}

/// Why a sync append was not acknowledged.
public enum ReplicationError: Error, Equatable, Sendable {
    /// Fewer in-sync followers than `minSyncFollowers` (or than the quorum asks for).
    case notEnoughFollowers(inSync: Int, required: Int)
    /// The followers did not acknowledge within `syncTimeout`.
    case timedOut(through: UInt64, acknowledgedBy: Int, required: Int)
    /// This node stopped being primary before the append was acknowledged.
    case notPrimary
}

/// The primary's side of replication: one instance per primary, covering every follower.
/// Pure: events in (each a method taking `now`, monotonic time since an arbitrary origin),
/// actions out, for the shell to carry out in order. No I/O, no clock, no randomness.
public struct PrimaryReplicator: Sendable {
    public let configuration: ReplicationConfiguration
    public let nodeID: NodeID
    public private(set) var epoch: UInt64
    /// Highest offset acknowledged to a client or replicated to `max(1, minSyncFollowers)` followers.
    public internal(set) var commitOffset: UInt64
    /// The primary's log as last reported.
    public internal(set) var log: LogView
    var endBytes: Int64 = 0
    /// Followers by node (kept across reconnects for status), and which node each connection serves.
    var peers: [NodeID: Peer] = [:]
    var connections: [ConnectionID: NodeID] = [:]
    /// Sync appends waiting, sorted by `through`.
    var waiters: [Waiter] = []
    /// (nextOffset, endBytes, time) after recent appends, for lag in bytes and time.
    var samples = Ring<AppendSample>(capacity: 1024)
    var stopped = false

    /// `endBytes` is the log's stored-byte count now, on the same scale `logAppended` reports it
    /// (for lag in bytes; 0 when unknown).
    public init(configuration: ReplicationConfiguration, nodeID: NodeID, epoch: UInt64, log: LogView, now: Duration,
                endBytes: Int64 = 0) {
        self.configuration = configuration
        self.nodeID = nodeID
        self.epoch = epoch
        self.log = log
        self.commitOffset = log.firstOffset
        self.endBytes = endBytes
        samples.append(AppendSample(nextOffset: log.nextOffset, endBytes: endBytes, time: now))
    }

    public enum Action: Equatable, Sendable {
        case send(Frame, to: ConnectionID)
        /// Read stored batches from the log starting exactly at `from` (a batch boundary), at most
        /// `maxBytes` but always at least one whole batch when one exists, never past the log's
        /// end, send them as one `batches` frame (with `epoch` and `commitOffset` from this
        /// action) on `connection`, then report `shipped`. Only one `ship` per connection is
        /// outstanding at a time.
        case ship(connection: ConnectionID, from: UInt64, maxBytes: Int, epoch: UInt64, commitOffset: UInt64)
        /// The sync append may return to its caller.
        case acknowledge(AppendID)
        /// The sync append fails with this error (its records stay in the primary's log).
        case fail(AppendID, ReplicationError)
        /// Send `goodbye` if possible and close the connection.
        case close(ConnectionID, CloseReason, message: String)
    }

    /// What the primary's own log looks like, as the shell reads it.
    public struct LogView: Equatable, Sendable {
        public var firstOffset: UInt64
        public var nextOffset: UInt64
        public var epochs: EpochHistory
        public init(firstOffset: UInt64, nextOffset: UInt64, epochs: EpochHistory) {
            self.firstOffset = firstOffset
            self.nextOffset = nextOffset
            self.epochs = epochs
        }
    }

    /// One follower as `status` reports it.
    public struct FollowerStatus: Equatable, Sendable {
        public var node: NodeID
        public var connection: ConnectionID?
        public var streaming: Bool
        public var inSync: Bool
        public var progress: FollowerProgress
        /// Records between the follower's position at the ack level and the primary's end.
        public var lagRecords: UInt64
        /// Stored bytes between the same two points (an estimate once it is older than the samples kept).
        public var lagBytes: Int64
        /// How long ago the primary appended the oldest record the follower has not acknowledged.
        public var lag: Duration
    }
}
