import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// Review of 52105e4 (review12): ships to a caught-up follower are ack-clocked, and `tick` ships
/// regardless once per heartbeat. These tests look for an ack that never releases the held
/// appends, so that only the heartbeat (or nothing) moves them.
@Suite struct Review12AckClockTests {
    /// `received(.ack)` accepts an ack for a ship whose `shipped` report has not arrived yet
    /// (its bound is `max(shippedNext, log.nextOffset)` while a ship is outstanding). That ack
    /// finds nothing in flight to drop; the `shipped` report that follows then records a ship
    /// the follower already acknowledged, which reached the log's end: `awaitingTailAck` holds
    /// every later append until the heartbeat, because the follower (caught up, nothing new
    /// received) never acks again. Expected: the next append ships at once.
    @Test func anAckBeforeItsShippedReportDoesNotHoldTheNextAppend() {
        let configuration = ReplicationConfiguration()
        var log = ModelLog()
        var primary = PrimaryReplicator(configuration: configuration, nodeID: NodeID(1), epoch: 1, log: log.view, now: .zero)
        let connection = ConnectionID(1)
        _ = primary.followerAuthenticated(connection, node: NodeID(2), now: .zero)
        _ = primary.received(.follow(.init(logEnd: LogEnd(nextOffset: 0, lastEpoch: nil), knownEpoch: 0)), from: connection, now: .zero)
        _ = primary.received(.ack(.init(progress: FollowerProgress(received: 0, written: 0, durable: 0))), from: connection, now: .zero)

        log.append(epoch: 1, records: 2)
        let first = primary.logAppended(nextOffset: log.nextOffset, endBytes: log.endBytes, epochs: log.epochs, now: .zero)
        #expect(first.contains { if case .ship = $0 { true } else { false } })
        let end = log.nextOffset
        let bytes = Int(log.endBytes)
        // The follower's ack overtakes the shell's report of the ship.
        let ack = primary.received(.ack(.init(progress: FollowerProgress(received: end, written: end, durable: 0))),
                                   from: connection, now: .milliseconds(1))
        #expect(!ack.contains { if case .close = $0 { true } else { false } })
        _ = primary.shipped(connection, nextOffset: end, bytes: bytes, now: .milliseconds(1))
        #expect(primary.peers[NodeID(2)]!.inFlightBytes == 0, "the follower acknowledged everything shipped")

        log.append(epoch: 1, records: 2)
        let second = primary.logAppended(nextOffset: log.nextOffset, endBytes: log.endBytes, epochs: log.epochs,
                                         now: .milliseconds(2))
        #expect(second.contains { if case .ship = $0 { true } else { false } },
                "the append waits for an ack the follower already sent (until the next heartbeat)")
    }

    /// Random interleavings of appends, sync waits, deliveries in both directions, syncs and
    /// reconnects, for each ack level and one or two followers, with no `tick` at all: once the
    /// network is drained, every sync append is decided and every follower holds the log. A
    /// hole in the ack clock (an ack that does not release held appends) leaves a waiter only
    /// the heartbeat would move.
    @Test(arguments: [AckLevel.received, .written, .durable])
    func theAckClockAloneCarriesEveryAppend(ackLevel: AckLevel) {
        for seed in UInt64(1)...60 {
            let salt: UInt64 = switch ackLevel { case .received: 1; case .written: 2; case .durable: 3 }
            var random = ElectionRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ salt)
            func draw(_ bound: Int) -> Int { Int(random.next(upperBound: UInt64(bound))) }
            var config = ReplicationConfiguration()
            config.ackLevel = ackLevel
            // Appends made while a follower is not streaming wait for it (time never moves here).
            config.minSyncFollowersTimeout = .seconds(10)
            let batchBytes = makeBatch(first: 0, epoch: 1, records: 2).count
            config.maxShipBytes = batchBytes * (1 + draw(3))
            config.maxInFlightBytesPerFollower = batchBytes * (2 + draw(6))
            let followerCount = 1 + draw(2)
            var cluster = Cluster(configuration: config, followerLogs: Array(repeating: ModelLog(), count: followerCount))
            cluster.holdSyncs = draw(2) == 0
            cluster.connectAll()
            var id: UInt64 = 0
            for _ in 0..<400 {
                let i = draw(followerCount)
                switch draw(100) {
                case 0..<25:
                    id += 1
                    cluster.append(records: 2)
                    let mode: ReplicationMode = draw(4) == 0 ? .async : .sync(quorum: 1)
                    cluster.await(id, mode: mode)
                case 25..<60: cluster.deliver(i, toFollower: true)
                case 60..<95: cluster.deliver(i, toFollower: false)
                case 95..<97: cluster.releaseSyncs()
                case 97: cluster.connect(i)
                default: if cluster.followers[i].connection == nil { cluster.connect(i) }
                }
            }
            // Drain without ticks: reconnect closed followers, deliver, release syncs.
            for _ in 0..<20 {
                cluster.settle()
                cluster.releaseSyncs()
                cluster.run()
            }
            let decided = Set(cluster.acknowledged + cluster.failed.map(\.0))
            #expect(cluster.failed.isEmpty, "seed \(seed): \(cluster.failed)")
            #expect(id == 0 || decided == Set((1...id).map { AppendID($0) }),
                    "seed \(seed): \(Int(id) - decided.count) appends still wait (ack level \(ackLevel))")
            #expect(cluster.primary.waiters.isEmpty, "seed \(seed): waiters held without a tick")
            #expect(cluster.followersMatchPrimary(), "seed \(seed): a follower was left behind without a tick")
        }
    }
}
