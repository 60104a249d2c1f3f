import Testing
import ShipLogStorage
@testable import ShipLogProtocol

/// One primary and N followers over an in-memory network the test controls: frames travel as
/// encoded bytes (through FrameCodec both ways) in per-connection queues that tests can drop,
/// duplicate, reorder or cut. Local log work is carried out at once, except syncs while
/// `holdSyncs` is set.
struct Cluster {
    struct Follower {
        var node: NodeID
        var replicator: FollowerReplicator
        var log: ModelLog
        var connection: ConnectionID? = nil
        /// Encoded frames on the way to this follower, and from it to the primary.
        var inbox: [[UInt8]] = []
        var outbox: [[UInt8]] = []
        var stalled = false
        var syncPending = false
        var closes: [CloseReason] = []
    }

    var configuration: ReplicationConfiguration
    var now: Duration = .zero
    var primary: PrimaryReplicator
    var primaryLog: ModelLog
    var followers: [Follower]
    var nextConnection: UInt64 = 1
    var acknowledged: [AppendID] = []
    var failed: [(AppendID, ReplicationError)] = []
    var primaryCloses: [CloseReason] = []
    var holdSyncs = false
    var closeMessages: [String] = []
    /// Each sync append's last offset and mode, to check an acknowledgement against the followers' own logs.
    var awaiting: [AppendID: (through: UInt64, mode: ReplicationMode)] = [:]
    /// Largest in-flight byte count seen per follower (flow control checks).
    var maxInFlight: [NodeID: Int] = [:]

    init(configuration: ReplicationConfiguration, primaryLog: ModelLog = ModelLog(), followerLogs: [ModelLog], epoch: UInt64 = 1) {
        var configuration = configuration
        configuration.followers = (0..<followerLogs.count).map { NodeID(UInt64($0) + 2) }
        self.configuration = configuration
        self.primaryLog = primaryLog
        primary = PrimaryReplicator(configuration: configuration, nodeID: NodeID(1), epoch: epoch, log: primaryLog.view, now: .zero)
        followers = followerLogs.enumerated().map { i, log in
            Follower(node: NodeID(UInt64(i) + 2),
                     replicator: FollowerReplicator(configuration: configuration, nodeID: NodeID(UInt64(i) + 2), log: log.end,
                                                    durableNextOffset: log.durable, knownEpoch: log.lastEpoch ?? 0, now: .zero),
                     log: log)
        }
    }

    // MARK: Events

    mutating func connect(_ i: Int) {
        if followers[i].connection != nil { disconnect(i) }
        let connection = ConnectionID(nextConnection)
        nextConnection += 1
        followers[i].connection = connection
        apply(primary.followerAuthenticated(connection, node: followers[i].node, now: now))
        apply(i, followers[i].replicator.connected(now: now))
    }

    mutating func connectAll() { for i in followers.indices { connect(i) } }

    /// Both ends learn the connection is gone; queued frames are lost.
    mutating func disconnect(_ i: Int) {
        guard let connection = followers[i].connection else { return }
        followers[i].connection = nil
        followers[i].inbox = []
        followers[i].outbox = []
        apply(primary.connectionClosed(connection, now: now))
        apply(i, followers[i].replicator.disconnected(now: now))
    }

    mutating func append(epoch: UInt64? = nil, records: Int = 3, tag: UInt8 = 0) {
        primaryLog.append(epoch: epoch ?? primary.epoch, records: records, tag: tag)
        apply(primary.logAppended(nextOffset: primaryLog.nextOffset, endBytes: primaryLog.endBytes,
                                  epochs: primaryLog.epochs, now: now))
    }

    mutating func await(_ id: UInt64, mode: ReplicationMode) {
        awaiting[AppendID(id)] = (primaryLog.nextOffset, mode)
        apply(primary.awaitReplication(AppendID(id), through: primaryLog.nextOffset, mode: mode, now: now))
    }

    mutating func advance(_ by: Duration) {
        now += by
        apply(primary.tick(now: now))
        for i in followers.indices { apply(i, followers[i].replicator.tick(now: now)) }
    }

    mutating func releaseSyncs() {
        for i in followers.indices where followers[i].syncPending {
            followers[i].syncPending = false
            followers[i].log.durable = followers[i].log.nextOffset
            apply(i, followers[i].replicator.synced(durableNextOffset: followers[i].log.durable, now: now))
        }
    }

    // MARK: Network

    /// Delivers one frame to follower `i` (`toFollower`) or from it to the primary; false when none is queued.
    @discardableResult
    mutating func deliver(_ i: Int, toFollower: Bool) -> Bool {
        guard let connection = followers[i].connection else { return false }
        var queue = toFollower ? followers[i].inbox : followers[i].outbox
        guard !queue.isEmpty else { return false }
        let bytes = queue.removeFirst()
        if toFollower { followers[i].inbox = queue } else { followers[i].outbox = queue }
        switch FrameCodec.decode(bytes, maxFrameBytes: configuration.maxFrameBytes) {
        case .frame(let frame, let consumed):
            precondition(consumed == bytes.count)
            if toFollower { apply(i, followers[i].replicator.received(frame, now: now)) }
            else { apply(primary.received(frame, from: connection, now: now)) }
        case .needMoreBytes:
            // The stream ended inside a frame: the connection is gone.
            disconnect(i)
        case .invalid(let error):
            if toFollower { followers[i].closes.append(error.reason) } else { primaryCloses.append(error.reason) }
            disconnect(i)
        }
        return true
    }

    /// Delivers everything until quiet (bounded).
    mutating func run(maxSteps: Int = 100_000, mustSettle: Bool = true) {
        for _ in 0..<maxSteps {
            var progressed = false
            for i in followers.indices where !followers[i].stalled {
                if deliver(i, toFollower: true) { progressed = true }
                if deliver(i, toFollower: false) { progressed = true }
            }
            if !progressed { return }
        }
        if mustSettle { Issue.record("the simulation did not settle in \(maxSteps) steps") }
    }

    /// Until every follower is streaming and quiet, reconnecting closed ones (bounded).
    mutating func settle(rounds: Int = 20) {
        for _ in 0..<rounds {
            run()
            var done = true
            for i in followers.indices where followers[i].connection == nil { connect(i); done = false }
            if done { return }
        }
    }

    // MARK: Carrying out actions

    mutating func apply(_ actions: [PrimaryReplicator.Action]) {
        for action in actions {
            switch action {
            case .send(let frame, let connection):
                guard let i = index(of: connection) else { continue }
                followers[i].inbox.append(FrameCodec.encode(frame))
            case .ship(let connection, let from, let maxBytes, let epoch, let commitOffset):
                guard let i = index(of: connection) else { continue }
                let batches = primaryLog.read(from: from, maxBytes: maxBytes)
                let end = batches.last.map { header($0).nextOffset } ?? from
                if !batches.isEmpty {
                    followers[i].inbox.append(FrameCodec.encode(.batches(.init(epoch: epoch, commitOffset: commitOffset, batches: batches))))
                }
                let bytes = batches.reduce(0) { $0 + $1.count }
                apply(primary.shipped(connection, nextOffset: end, bytes: bytes, now: now))
                if let peer = primary.peers[followers[i].node] {
                    maxInFlight[followers[i].node] = max(maxInFlight[followers[i].node] ?? 0, peer.inFlightBytes)
                }
            case .acknowledge(let id):
                acknowledged.append(id)
                checkReplicated(id)
            case .fail(let id, let error):
                failed.append((id, error))
            case .close(let connection, let reason, let message):
                primaryCloses.append(reason)
                closeMessages.append(message)
                guard let i = index(of: connection) else { continue }
                followers[i].connection = nil
                followers[i].inbox = []
                followers[i].outbox = []
                apply(i, followers[i].replicator.disconnected(now: now))
            }
        }
    }

    mutating func apply(_ i: Int, _ actions: [FollowerReplicator.Action]) {
        for action in actions {
            switch action {
            case .send(let frame):
                if followers[i].connection != nil { followers[i].outbox.append(FrameCodec.encode(frame)) }
            case .append(let batches):
                do {
                    for batch in batches { try followers[i].log.append(batch.bytes) }
                    apply(i, followers[i].replicator.appended(logEnd: followers[i].log.end, now: now))
                } catch {
                    apply(i, followers[i].replicator.appendFailed("\(error)", now: now))
                }
            case .sync:
                if holdSyncs { followers[i].syncPending = true; continue }
                followers[i].log.durable = followers[i].log.nextOffset
                apply(i, followers[i].replicator.synced(durableNextOffset: followers[i].log.durable, now: now))
            case .truncate(let offset):
                followers[i].log.truncate(toNextOffset: offset)
                apply(i, followers[i].replicator.truncated(logEnd: followers[i].log.end, now: now))
            case .reset(let offset):
                followers[i].log.reset(startingAt: offset)
                apply(i, followers[i].replicator.truncated(logEnd: followers[i].log.end, now: now))
            case .close(let reason, let message):
                followers[i].closes.append(reason)
                closeMessages.append(message)
                disconnect(i)
            }
        }
    }

    /// At the moment of acknowledgement the append is on enough followers at the ack level,
    /// judged from their own logs (received: what reached the follower's replicator).
    func checkReplicated(_ id: AppendID) {
        guard let (through, mode) = awaiting[id] else { return }
        let have = followers.filter { f in
            switch configuration.ackLevel {
            case .received: f.replicator.progress.received >= through
            case .written: f.log.nextOffset >= through && f.log.contents(from: 0).prefix(while: { header($0).nextOffset <= through }) == primaryLog.batches.prefix(while: { header($0).nextOffset <= through })
            case .durable: f.log.durable >= through
            }
        }.count
        switch mode {
        case .async: break
        case .sync(let quorum): #expect(have >= quorum, "\(id) acknowledged on \(have) followers")
        case .syncAll: #expect(have == followers.count, "\(id) acknowledged on \(have) followers")
        }
    }

    func index(of connection: ConnectionID) -> Int? {
        followers.firstIndex { $0.connection == connection }
    }

    /// Each follower's batches equal the primary's from the primary's first offset.
    func followersMatchPrimary() -> Bool {
        followers.allSatisfy { $0.log.contents(from: primaryLog.firstOffset) == primaryLog.batches }
    }
}
