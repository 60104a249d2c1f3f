/// Every message two nodes exchange, one per frame (format.md §11). `FrameCodec` is the only
/// encoder and decoder; the shell never builds bytes itself.
public enum Frame: Equatable, Sendable {
    // Handshake (format.md §11.2): the connecting node speaks first.
    case hello(Hello)
    case challenge(Challenge)
    case proof(Proof)
    // Replication (format.md §11.3).
    case follow(Follow)
    case followReply(FollowReply)
    case batches(Batches)
    case ack(Ack)
    case heartbeat(Heartbeat)
    // Elections (format.md §13): one `ElectionMessageCodec` message, its bytes as encoded there.
    // The frame layer only bounds its length; `NodeMachine` decodes it (a malformed message
    // closes the connection).
    case election([UInt8])
    // Operations.
    case statusRequest
    case statusReply(StatusReply)
    /// An operator asks the primary to hand leadership to this node (`shiplog switchover --to`);
    /// answered by a `statusReply` once done, or a `goodbye` saying why not (format.md §11.1).
    case switchoverRequest(target: NodeID)
    /// Sent before closing a connection on purpose, so the peer can log why.
    case goodbye(Goodbye)

    /// Connector → listener: who I am, and a fresh nonce the listener must prove the key over.
    public struct Hello: Equatable, Sendable {
        public var protocolVersion: UInt16
        public var nodeID: NodeID
        /// 32 random bytes, new for every connection.
        public var nonce: [UInt8]
        public init(protocolVersion: UInt16, nodeID: NodeID, nonce: [UInt8]) {
            self.protocolVersion = protocolVersion
            self.nodeID = nodeID
            self.nonce = nonce
        }
    }

    /// Listener → connector: the listener's id and nonce, and its proof of the key over both nonces.
    public struct Challenge: Equatable, Sendable {
        public var nodeID: NodeID
        public var nonce: [UInt8]
        /// HMAC-SHA256 (32 bytes) as format.md §11.2 defines it.
        public var mac: [UInt8]
        public init(nodeID: NodeID, nonce: [UInt8], mac: [UInt8]) {
            self.nodeID = nodeID
            self.nonce = nonce
            self.mac = mac
        }
    }

    /// Connector → listener: the connector's proof of the key over both nonces.
    public struct Proof: Equatable, Sendable {
        public var mac: [UInt8]
        public init(mac: [UInt8]) { self.mac = mac }
    }

    /// Follower → primary: where my log ends; stream me what follows.
    public struct Follow: Equatable, Sendable {
        public var logEnd: LogEnd
        /// The newest epoch the follower has seen (it refuses anything older).
        public var knownEpoch: UInt64
        public init(logEnd: LogEnd, knownEpoch: UInt64) {
            self.logEnd = logEnd
            self.knownEpoch = knownEpoch
        }
    }

    /// Primary → follower: the answer to `follow`.
    public struct FollowReply: Equatable, Sendable {
        public enum Kind: UInt8, Sendable {
            /// The logs agree below `offset`: batches from `offset` follow.
            case stream = 1
            /// The follower's log diverged: cut it so its next offset is `offset`, then `follow` again.
            case truncate = 2
            /// The primary no longer has what the follower needs (retention), or nothing is
            /// shared: empty the log, start it at `offset` (the primary's first offset), then `follow` again.
            case reset = 3
        }
        public var kind: Kind
        public var offset: UInt64
        /// The primary's epoch.
        public var epoch: UInt64
        public init(kind: Kind, offset: UInt64, epoch: UInt64) {
            self.kind = kind
            self.offset = offset
            self.epoch = epoch
        }
    }

    /// Primary → follower: stored batches, byte for byte as in the primary's segments, contiguous
    /// in offsets and continuing exactly where the previous `batches` frame (or `stream` reply) ended.
    public struct Batches: Equatable, Sendable {
        /// The primary's epoch.
        public var epoch: UInt64
        /// Offsets below this are acknowledged to clients on the primary (for reads' staleness).
        public var commitOffset: UInt64
        /// Each element is one whole stored batch (format.md §3).
        public var batches: [[UInt8]]
        public init(epoch: UInt64, commitOffset: UInt64, batches: [[UInt8]]) {
            self.epoch = epoch
            self.commitOffset = commitOffset
            self.batches = batches
        }
    }

    /// Follower → primary: how far I have your log.
    public struct Ack: Equatable, Sendable {
        public var progress: FollowerProgress
        public init(progress: FollowerProgress) { self.progress = progress }
    }

    /// Primary → follower, every `heartbeatInterval` and whenever nothing else was sent.
    public struct Heartbeat: Equatable, Sendable {
        public var epoch: UInt64
        public var commitOffset: UInt64
        /// The primary's log end (for the follower's lag).
        public var primaryNextOffset: UInt64
        public init(epoch: UInt64, commitOffset: UInt64, primaryNextOffset: UInt64) {
            self.epoch = epoch
            self.commitOffset = commitOffset
            self.primaryNextOffset = primaryNextOffset
        }
    }

    /// A node's state for `shiplog status`, as UTF-8 JSON (the shell defines the document).
    public struct StatusReply: Equatable, Sendable {
        public var json: [UInt8]
        public init(json: [UInt8]) { self.json = json }
    }

    public struct Goodbye: Equatable, Sendable {
        public var reason: CloseReason
        public var message: String
        public init(reason: CloseReason, message: String) {
            self.reason = reason
            self.message = message
        }
    }
}

/// Why a connection is closed; carried in `goodbye` and in the state machines' close actions.
public enum CloseReason: UInt16, Sendable, Equatable {
    case shutdown = 1
    case authenticationFailed = 2
    case malformedFrame = 3
    case frameTooLarge = 4
    case unexpectedFrame = 5
    case staleEpoch = 6
    case outOfOrder = 7
    case corruptBatch = 8
    case notPrimary = 9
    case duplicateFollower = 10
    case protocolVersion = 11
    case localFailure = 12
    /// A follower heard nothing from its primary for `primaryTimeout`.
    case primaryTimeout = 13
}
