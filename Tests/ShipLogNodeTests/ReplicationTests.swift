import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// A primary and two followers in this process over real sockets on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ReplicationTests {
    @Test(arguments: [AckLevel.written, .durable])
    func appendsInEveryModeReachTheFollowersRecordByRecord(ackLevel: AckLevel) async throws {
        var replication = ReplicationConfiguration()
        replication.ackLevel = ackLevel
        let cluster = try await LocalCluster(followers: 2, replication: replication)
        do {
            var i = 0
            for mode in [ReplicationMode.async, .sync(quorum: 1), .sync(quorum: 2), .syncAll] {
                for _ in 0..<40 {
                    let records = (0..<(1 + i % 5)).map { record(i * 10 + $0) }
                    i += 1
                    let offsets = try await cluster.primary.append(records, mode: mode)
                    // At the moment a sync append returns, the quorum has it at the ack level,
                    // as the followers' own logs show.
                    let required: Int
                    switch mode {
                    case .async: required = 0
                    case .sync(let quorum): required = quorum
                    case .syncAll: required = 2
                    }
                    let holding = try cluster.followers.filter { follower in
                        let log = try follower.log
                        return ackLevel == .durable ? log.durableNextOffset >= offsets.upperBound : log.nextOffset >= offsets.upperBound
                    }.count
                    #expect(holding >= required, "\(mode) append \(offsets) acknowledged with \(holding) follower(s) holding it at \(ackLevel)")
                }
            }
            try await cluster.waitForFollowers()
            let expected = try allRecords(cluster.primary.log)
            #expect(expected.count > 100)
            for follower in cluster.followers {
                #expect(try allRecords(follower.log) == expected, "\(follower.configuration.id)'s records differ from the primary's")
            }
            let status = try await cluster.primary.status()
            #expect(status.role == "primary")
            #expect(status.followers.map(\.node).sorted() == [2, 3])
            #expect(status.followers.allSatisfy { $0.connected && $0.lagRecords == 0 }, "\(status.followers)")
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    @Test func aStoppedFollowerCatchesUpAfterRestarting() async throws {
        let cluster = try await LocalCluster(followers: 2)
        do {
            for i in 0..<50 { try await cluster.primary.append([record(i)], mode: .sync(quorum: 2)) }
            let stopped = cluster.followers[0]
            try await stopped.stop()
            // Follower 3 alone acknowledges while 2 is down.
            for i in 50..<300 { try await cluster.primary.append([record(i, size: 2000)], mode: .sync(quorum: 1)) }
            let restarted = cluster.makeFollower(stopped.configuration.id)
            try await restarted.start()
            cluster.followers[0] = restarted
            try await cluster.waitForFollowers()
            let expected = try allRecords(cluster.primary.log)
            #expect(expected.count == 300)
            #expect(try allRecords(restarted.log) == expected)
            // And it keeps up with new appends, counting towards sync quorums again.
            try await cluster.waitForStreaming()
            let last = try await cluster.primary.append([record(300)], mode: .syncAll)
            #expect(try restarted.log.nextOffset >= last.upperBound)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    @Test func aFollowerRefusesAppendsNamingThePrimary() async throws {
        let cluster = try await LocalCluster(followers: 1)
        do {
            await #expect(throws: NodeError.notPrimary(node: NodeID(2), primary: NodeID(1))) {
                try await cluster.followers[0].append([record(0)], mode: .async)
            }
            let status = try await NodeStatusClient.fetch(
                from: PeerAddress(host: "127.0.0.1", port: cluster.followers[0].listeningPort!), clusterKey: testKey)
            #expect(status.role == "follower" && status.primary == 1)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    @Test func tooFewFollowersFailsASyncAppendSayingSo() async throws {
        var replication = ReplicationConfiguration()
        replication.minSyncFollowers = 1
        let cluster = try await LocalCluster(followers: 1, replication: replication)
        do {
            try await cluster.primary.append([record(0)], mode: .sync(quorum: 1))
            try await cluster.followers[0].stop()
            try await waitUntil("the primary to notice the follower left") {
                try await cluster.primary.status().followers.allSatisfy { !$0.connected }
            }
            do {
                try await cluster.primary.append([record(1)], mode: .sync(quorum: 1))
                Issue.record("a sync append without followers succeeded")
            } catch let error as NodeError {
                guard case .replicationFailed(let offsets, _, let followers) = error else { throw error }
                #expect(offsets == 1..<2)
                #expect("\(error)".contains("1..<2") && followers.contains("node 2 disconnected"), "\(error)")
            }
            cluster.followers = []
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }
}
