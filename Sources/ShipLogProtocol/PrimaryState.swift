/// A fixed-capacity FIFO: appending to a full ring drops the oldest element. O(1) memory.
struct Ring<Element: Sendable>: Sendable {
    private var storage: [Element?]
    private var head = 0
    private(set) var count = 0
    init(capacity: Int) {
        precondition(capacity > 0)
        storage = Array(repeating: nil, count: capacity)
    }
    var capacity: Int { storage.count }
    var isEmpty: Bool { count == 0 }
    subscript(i: Int) -> Element {
        precondition(i >= 0 && i < count)
        return storage[(head + i) % storage.count]!
    }
    var first: Element? { isEmpty ? nil : self[0] }
    var last: Element? { isEmpty ? nil : self[count - 1] }
    /// Appends; when full, the oldest element is dropped (returned).
    @discardableResult
    mutating func append(_ element: Element) -> Element? {
        var dropped: Element? = nil
        if count == storage.count { dropped = removeFirst() }
        storage[(head + count) % storage.count] = element
        count += 1
        return dropped
    }
    @discardableResult
    mutating func removeFirst() -> Element {
        precondition(count > 0)
        let element = storage[head]!
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        return element
    }
    mutating func removeAll() {
        while count > 0 { removeFirst() }
    }
}

/// What the primary's log looked like after one append.
struct AppendSample: Sendable {
    var nextOffset: UInt64
    var endBytes: Int64
    var time: Duration
}

/// One `ship` the follower has not acknowledged as received yet.
struct InFlight: Sendable {
    var endOffset: UInt64
    var bytes: Int
    /// The ship took the log up to its end: the follower was caught up when it was sent.
    var reachedLogEnd: Bool
}

extension PrimaryReplicator {
    /// The primary's view of one follower.
    struct Peer: Sendable {
        enum Phase: Sendable, Equatable { case disconnected, awaitingFollow, streaming }
        var node: NodeID
        var connection: ConnectionID?
        var phase: Phase = .disconnected
        var progress = FollowerProgress(received: 0, written: 0, durable: 0)
        /// Next offset to ship from (everything below was shipped or was already on the follower).
        var shippedNext: UInt64 = 0
        var shipOutstanding = false
        /// A ship returned nothing though the log view had more: wait for the log to grow.
        var waitingForAppend = false
        /// Ships not yet acknowledged as received; bounded by `maxInFlightBytesPerFollower`.
        var inFlight: [InFlight] = []
        var inFlightHead = 0
        var inFlightBytes = 0
        /// When the follower last had the primary's whole log at the ack level.
        var lastCaughtUp: Duration? = nil
        var lastHeartbeat: Duration = .zero

        init(node: NodeID) { self.node = node }

        func level(_ ackLevel: AckLevel) -> UInt64 {
            switch ackLevel {
            case .received: progress.received
            case .written: progress.written
            case .durable: progress.durable
            }
        }

        mutating func resetStream() {
            shipOutstanding = false
            waitingForAppend = false
            inFlight = []
            inFlightHead = 0
            inFlightBytes = 0
        }

        /// Drops in-flight ships the follower has received.
        mutating func acknowledgeReceived(through received: UInt64) {
            while inFlightHead < inFlight.count, inFlight[inFlightHead].endOffset <= received {
                inFlightBytes -= inFlight[inFlightHead].bytes
                inFlightHead += 1
            }
            // Compact so the array never holds more than the ships in flight (O(1) in log size).
            if inFlightHead > 64, inFlightHead * 2 > inFlight.count {
                inFlight.removeFirst(inFlightHead)
                inFlightHead = 0
            }
            precondition(inFlightBytes >= 0, "in-flight bytes went negative")
        }

        /// The newest unacknowledged ship took the log to its end (see `ship(_:)`).
        var awaitingTailAck: Bool {
            inFlightHead < inFlight.count && inFlight[inFlight.count - 1].reachedLogEnd
        }
    }

    /// A sync append waiting for its followers.
    struct Waiter: Sendable {
        var id: AppendID
        var through: UInt64
        /// Followers that must have `through` at the ack level.
        var required: Int
        /// Only configured followers count (`syncAll`).
        var configuredOnly: Bool
        /// In-sync followers needed before the append may wait for acks.
        var gate: Int
        /// Still waiting for enough in-sync followers, until this time.
        var minSyncDeadline: Duration?
        var deadline: Duration
    }
}
