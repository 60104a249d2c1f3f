/// A node of the cluster, named by a number every node's configuration agrees on.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: NodeID, b: NodeID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "node \(rawValue)" }
}

/// One TCP connection as the shell numbers them; the state machines only compare them.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "connection \(rawValue)" }
}

/// Where a log ends, as a follower reports it to the primary.
public struct LogEnd: Equatable, Sendable {
    /// The offset the next record would get.
    public var nextOffset: UInt64
    /// The epoch of the last batch; nil when the log holds no batch.
    public var lastEpoch: UInt64?
    /// Where `lastEpoch` starts in this log (its epoch history's last entry); nil when unknown.
    /// A primary that does not have the follower's last epoch knows from it that every record
    /// from there on is not its own, and cuts there in one step (format.md §11.4).
    public var lastEpochStart: UInt64?
    public init(nextOffset: UInt64, lastEpoch: UInt64?, lastEpochStart: UInt64? = nil) {
        precondition(lastEpochStart == nil || (lastEpoch != nil && lastEpochStart! < nextOffset),
                     "last epoch start \(lastEpochStart.map(String.init) ?? "nil") needs a last epoch and must be below \(nextOffset)")
        self.nextOffset = nextOffset
        self.lastEpoch = lastEpoch
        self.lastEpochStart = lastEpochStart
    }
}

/// How far a follower has the primary's log, as next offsets (one past the last record).
/// Always `durable <= written <= received`.
public struct FollowerProgress: Equatable, Sendable {
    /// Batches that reached the follower's process.
    public var received: UInt64
    /// Batches written to the follower's log (in its kernel).
    public var written: UInt64
    /// Batches the follower has fdatasynced.
    public var durable: UInt64
    public init(received: UInt64, written: UInt64, durable: UInt64) {
        self.received = received
        self.written = written
        self.durable = durable
    }
}
