import ShipLogStorage
import Testing
@testable import ShipLogProtocol

@Suite struct ReplicationTests {
    /// A follower whose log ends at any offset of the primary's (at a batch boundary) catches up.
    @Test func catchUpFromEveryOffset() {
        var primary = ModelLog()
        for i in 0..<12 { primary.append(epoch: 1, records: i % 3 + 1) }
        var boundaries: [UInt64] = [0]
        for b in primary.batches { boundaries.append(header(b).nextOffset) }
        for (k, _) in boundaries.enumerated() {
            var follower = ModelLog()
            for b in primary.batches.prefix(k) { try! follower.append(b) }
            var cluster = Cluster(configuration: ReplicationConfiguration(), primaryLog: primary, followerLogs: [follower])
            cluster.connectAll()
            cluster.settle()
            #expect(cluster.followersMatchPrimary(), "from batch \(k)")
            cluster.append(records: 2)
            cluster.run()
            #expect(cluster.followersMatchPrimary(), "after an append, from batch \(k)")
            #expect(cluster.followers[0].closes.isEmpty && cluster.primaryCloses.isEmpty)
        }
    }

    /// Two histories share a prefix and differ after it, in several epoch layouts: the follower
    /// (a deposed primary) ends equal to the primary whatever the divergence point.
    @Test func divergenceAtEveryPositionRelativeToEpochBoundaries() {
        // (epoch, records) per batch after the shared prefix.
        let layouts: [(shared: [(UInt64, Int)], primary: [(UInt64, Int)], follower: [(UInt64, Int)])] = [
            ([(1, 2), (1, 3)], [(3, 2), (3, 1)], [(2, 4), (2, 1)]),
            ([(1, 2), (2, 3)], [(2, 2), (4, 2)], [(3, 1), (3, 1), (3, 2)]),
            ([(1, 2)], [(1, 1), (5, 3)], [(1, 4), (2, 2), (4, 1)]),
            ([(1, 1), (2, 1), (3, 1)], [(6, 2)], [(3, 2), (4, 2), (5, 2)]),
            ([], [(2, 3)], [(1, 3)]),
        ]
        for (l, layout) in layouts.enumerated() {
            for sharedCount in 0...layout.shared.count {
                for cut in 0...layout.follower.count {
                    var primary = ModelLog(), follower = ModelLog()
                    for (e, r) in layout.shared.prefix(sharedCount) { primary.append(epoch: e, records: r); follower.append(epoch: e, records: r) }
                    let lastShared = primary.lastEpoch ?? 0
                    for (e, r) in layout.primary where e >= lastShared { primary.append(epoch: e, records: r, tag: 1) }
                    for (e, r) in layout.follower.prefix(cut) where e >= (follower.lastEpoch ?? 0) { follower.append(epoch: e, records: r, tag: 2) }
                    let epoch = max(primary.lastEpoch ?? 1, follower.lastEpoch ?? 1) + 1
                    var cluster = Cluster(configuration: ReplicationConfiguration(), primaryLog: primary, followerLogs: [follower], epoch: epoch)
                    cluster.connectAll()
                    cluster.settle()
                    #expect(cluster.followersMatchPrimary(), "layout \(l) shared \(sharedCount) cut \(cut)")
                    #expect(cluster.followers[0].replicator.isStreaming)
                    cluster.append(records: 1)
                    cluster.run()
                    #expect(cluster.followersMatchPrimary(), "layout \(l) after append")
                }
            }
        }
    }

    /// Retention removed what the follower needs: it resets to the primary's first offset.
    @Test func fullResyncAfterRetention() {
        var primary = ModelLog()
        for _ in 0..<10 { primary.append(epoch: 1, records: 2) }
        var follower = ModelLog()
        for b in primary.batches.prefix(3) { try! follower.append(b) }
        primary.retain(from: 12)
        var cluster = Cluster(configuration: ReplicationConfiguration(), primaryLog: primary, followerLogs: [follower, ModelLog()])
        cluster.connectAll()
        cluster.settle()
        #expect(cluster.followersMatchPrimary())
        #expect(cluster.followers.allSatisfy { $0.log.firstOffset == 12 })
        // Retention while streaming behind: the stalled follower is closed and resyncs on reconnect.
        cluster.followers[1].stalled = true
        for _ in 0..<5 { cluster.append(records: 2) }
        cluster.primaryLog.retain(from: 26)
        _ = cluster.apply(cluster.primary.logRetained(firstOffset: 26, now: cluster.now))
        cluster.followers[1].stalled = false
        cluster.settle()
        #expect(cluster.followersMatchPrimary())
    }

    /// Reconnecting mid-stream, and duplicated, reordered, dropped or cut frames: the connection
    /// closes and the follower recovers after reconnecting.
    @Test func faultyNetworkClosesAndRecovers() {
        for fault in 0..<5 {
            var config = ReplicationConfiguration()
            config.maxShipBytes = 200
            var cluster = Cluster(configuration: config, followerLogs: [ModelLog()])
            cluster.connectAll()
            cluster.settle()
            cluster.followers[0].stalled = true
            for _ in 0..<6 { cluster.append(records: 2) }
            cluster.advance(.milliseconds(150))
            var inbox = cluster.followers[0].inbox
            // The first ship, then (after the heartbeat ships regardless) the rest of the backlog.
            let ships = inbox.indices.filter { i in
                if case .frame(.batches, _) = FrameCodec.decode(inbox[i], maxFrameBytes: config.maxFrameBytes) { return true }
                return false
            }
            #expect(ships.count >= 2)
            switch fault {
            case 0: inbox.insert(inbox[ships[0]], at: ships[0] + 1)        // duplicate
            case 1: inbox.swapAt(ships[0], ships[1])                       // reorder
            case 2: inbox.remove(at: ships[0])                             // drop
            case 3: inbox[ships[0]].removeLast(5)                          // cut short
            default: cluster.connect(0)                                    // reconnect mid-stream
            }
            if fault < 4 { cluster.followers[0].inbox = inbox }
            cluster.followers[0].stalled = false
            cluster.settle()
            #expect(cluster.followersMatchPrimary(), "fault \(fault)")
            if fault < 3 { #expect(!cluster.followers[0].closes.isEmpty || !cluster.primaryCloses.isEmpty, "fault \(fault)") }
            cluster.append(records: 1)
            cluster.run()
            #expect(cluster.followersMatchPrimary(), "fault \(fault) after append")
        }
    }

    /// An ack beyond what was shipped, or moving back, closes the connection.
    @Test func badAcksClose() {
        var cluster = Cluster(configuration: ReplicationConfiguration(), followerLogs: [ModelLog()])
        cluster.connectAll()
        cluster.settle()
        cluster.append(records: 3)
        cluster.run()
        let connection = cluster.followers[0].connection!
        let beyond = cluster.primary.received(.ack(.init(progress: .init(received: 50, written: 0, durable: 0))), from: connection, now: .zero)
        #expect(beyond.first == .close(connection, .outOfOrder, message: "ack FollowerProgress(received: 50, written: 0, durable: 0) from node 2 beyond what was shipped (3)"))
        cluster.connect(0)
        cluster.run()
        let c2 = cluster.followers[0].connection!
        let back = cluster.primary.received(.ack(.init(progress: .init(received: 1, written: 1, durable: 0))), from: c2, now: .zero)
        guard case .close(_, .outOfOrder, _) = back.first else { Issue.record("\(back)"); return }
    }

    /// A follower that knows a newer epoch than the primary's closes the connection (stale primary),
    /// and a follower refuses frames from an older epoch.
    @Test func staleEpochs() {
        var follower = ModelLog()
        follower.append(epoch: 7, records: 1)
        var cluster = Cluster(configuration: ReplicationConfiguration(), followerLogs: [follower], epoch: 3)
        cluster.connect(0)
        cluster.run()
        #expect(cluster.primaryCloses.contains(.staleEpoch))
        var f = FollowerReplicator(configuration: ReplicationConfiguration(), nodeID: NodeID(2), log: LogEnd(nextOffset: 0, lastEpoch: nil),
                                   durableNextOffset: 0, knownEpoch: 4, now: .zero)
        _ = f.connected(now: .zero)
        guard case .close(.staleEpoch, _) = f.received(.followReply(.init(kind: .stream, offset: 0, epoch: 3)), now: .zero).first else {
            Issue.record("old epoch accepted"); return
        }
    }

    /// A caught-up follower is shipped ack-clocked: appends made while the last ship is
    /// unacknowledged go out together in one frame when its ack arrives, and every sync append
    /// among them is acknowledged by that one round trip.
    @Test func appendsWhileATailShipIsUnacknowledgedShareTheNextFrame() throws {
        var cluster = Cluster(configuration: ReplicationConfiguration(), followerLogs: [ModelLog()])
        cluster.connectAll()
        cluster.settle()
        cluster.append(records: 1)
        cluster.await(1, mode: .sync(quorum: 1))
        #expect(cluster.followers[0].inbox.count == 1)
        for id in 2...6 {
            cluster.append(records: 1)
            cluster.await(UInt64(id), mode: .sync(quorum: 1))
        }
        #expect(cluster.followers[0].inbox.count == 1, "held while the first ship is unacknowledged")
        // The first frame and its ack: the five held appends leave in one frame.
        cluster.deliver(0, toFollower: true)
        while cluster.deliver(0, toFollower: false) {}  // its received and written acks
        #expect(cluster.acknowledged == [AppendID(1)])
        #expect(cluster.followers[0].inbox.count == 1)
        guard case .frame(.batches(let held), _) = FrameCodec.decode(cluster.followers[0].inbox[0], maxFrameBytes: 1 << 20) else {
            Issue.record("expected a batches frame"); return
        }
        #expect(held.batches.count == 5)
        cluster.run()
        #expect(Set(cluster.acknowledged) == Set((1...6).map { AppendID(UInt64($0)) }))
        #expect(cluster.followersMatchPrimary())
    }

    /// A follower behind gets full ships back to back (pipelined up to the in-flight cap), not
    /// one per round trip: only a ship that reached the log's end holds the next.
    @Test func aFollowerBehindIsShippedWithoutWaitingForAcks() {
        var config = ReplicationConfiguration()
        let batchBytes = makeBatch(first: 0, epoch: 1, records: 2).count
        config.maxShipBytes = batchBytes * 2
        var primaryLog = ModelLog()
        for _ in 0..<8 { primaryLog.append(epoch: 1, records: 2) }
        var cluster = Cluster(configuration: config, primaryLog: primaryLog, followerLogs: [ModelLog()])
        cluster.connectAll()
        cluster.deliver(0, toFollower: false)  // follow
        cluster.deliver(0, toFollower: true)   // follow reply
        cluster.followers[0].stalled = true
        #expect(cluster.followers[0].inbox.count == 4, "four ships of two batches without an ack")
        cluster.followers[0].stalled = false
        cluster.run()
        #expect(cluster.followersMatchPrimary())
    }

    /// A stalled follower: in-flight bytes stay within the cap while the primary appends 1000 batches.
    @Test func flowControlBoundsInFlightBytes() {
        var config = ReplicationConfiguration()
        let batchBytes = makeBatch(first: 0, epoch: 1, records: 2).count
        config.maxInFlightBytesPerFollower = batchBytes * 10
        config.maxShipBytes = batchBytes * 3
        var cluster = Cluster(configuration: config, followerLogs: [ModelLog()])
        cluster.connectAll()
        cluster.settle()
        cluster.followers[0].stalled = true
        for _ in 0..<1000 { cluster.append(records: 2) }
        let node = cluster.followers[0].node
        // Ack-clocked: the first ship took the log to its end, and nothing more goes out while
        // it is unacknowledged, until the heartbeat ships regardless (then the backlog streams).
        #expect(cluster.followers[0].inbox.count == 1)
        cluster.advance(config.heartbeatInterval + .milliseconds(1))
        #expect(cluster.maxInFlight[node]! <= config.maxInFlightBytesPerFollower)
        #expect(cluster.primary.peers[node]!.inFlightBytes == config.maxInFlightBytesPerFollower)
        #expect(cluster.followers[0].inbox.count <= 12)  // ships and a heartbeat
        // Released, it catches up from the log, still within the cap.
        cluster.followers[0].stalled = false
        cluster.run()
        #expect(cluster.followersMatchPrimary())
        #expect(cluster.maxInFlight[node]! <= config.maxInFlightBytesPerFollower)
        #expect(cluster.primary.peers[node]!.inFlight.count - cluster.primary.peers[node]!.inFlightHead == 0)
        #expect(cluster.primary.followers.first?.lagRecords == 0)
    }

    /// Heartbeats reach each streaming follower once per interval, carrying the commit offset and the end.
    @Test func heartbeatsAtTheInterval() {
        var config = ReplicationConfiguration()
        config.heartbeatInterval = .milliseconds(100)
        var cluster = Cluster(configuration: config, followerLogs: [ModelLog(), ModelLog()])
        cluster.connectAll()
        cluster.settle()
        cluster.append(records: 4)
        cluster.run()
        var counts = [0, 0]
        for step in 1...100 {
            cluster.advance(.milliseconds(10))
            for i in 0..<2 {
                for bytes in cluster.followers[i].inbox {
                    if case .frame(.heartbeat(let h), _) = FrameCodec.decode(bytes, maxFrameBytes: maxFrame) {
                        counts[i] += 1
                        #expect(h.primaryNextOffset == 4 && h.epoch == 1, "step \(step)")
                    }
                }
            }
            cluster.run()
        }
        #expect(counts == [10, 10])
        #expect(cluster.followers.allSatisfy { $0.replicator.primaryNextOffset == 4 && $0.replicator.lastHeardFromPrimary == cluster.now })
    }
}
