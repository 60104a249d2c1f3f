import PropertyBased
import Testing
@testable import ShipLogProtocol

/// Random schedules of appends, sync waits, stalls, frames lost with their connection,
/// duplicated or reordered frames, and reconnects: no acknowledgement is ever ahead of the followers' logs, and once the network
/// heals every follower equals the primary.
@Suite struct RandomSimulationTests {
    @Test func randomFaultsNeverBreakReplication() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...9).array(of: 10...120), Gen.int(in: 0...2)) { steps, level in
            var config = ReplicationConfiguration()
            config.ackLevel = [.received, .written, .durable][level]
            config.maxShipBytes = 150
            config.maxInFlightBytesPerFollower = 400
            config.syncTimeout = .seconds(100)
            var c = Cluster(configuration: config, followerLogs: [ModelLog(), ModelLog(), ModelLog()])
            c.connectAll()
            var id: UInt64 = 0
            for (n, step) in steps.enumerated() {
                let i = n % 3
                switch step {
                case 0, 1: c.append(records: n % 4 + 1)
                case 2: id += 1; c.append(records: 1); c.await(id, mode: .sync(quorum: n % 3 + 1))
                case 3: c.deliver(i, toFollower: true)
                case 4: c.deliver(i, toFollower: false)
                case 5: if c.followers[i].inbox.count > 1 { c.followers[i].inbox.swapAt(0, 1) }
                case 6:
                    // TCP loses nothing inside a connection: a lost frame is a broken
                    // connection, and the follower reconnects.
                    if !c.followers[i].inbox.isEmpty {
                        c.followers[i].inbox.removeFirst()
                        c.connect(i)
                    }
                case 7: if let f = c.followers[i].outbox.first { c.followers[i].outbox.append(f) }
                case 8: c.connect(i)
                default: c.advance(.milliseconds(50)); c.run(maxSteps: 3, mustSettle: false)
                }
            }
            c.settle()
            c.advance(.milliseconds(200))
            c.settle()
            #expect(c.followersMatchPrimary())
            // Everything waiting is acknowledged once the followers caught up.
            #expect(c.acknowledged.count + c.failed.count == Int(id))
        }
    }
}
