import NIOCore
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// An automatic-role follower stops reading from its primary while `maxUnwrittenBytes` of
/// received batches wait for its log (`ClusterReadPause`) and reads again as the log reports
/// them; a catch-up many times that size ends with exactly the primary's records, without
/// disturbing the election, also when its primary dies in the middle of it.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ClusterReadPauseTests {
    @Test func readingStopsAtTheMarkOnTheBatchesConnectionAndStartsBelowIt() {
        var pause = ClusterReadPause(maxBytes: 1000)
        let (a, b) = (ConnectionID(7), ConnectionID(8))
        // Each step: bytes queued from a connection, or reported written (nil connection and
        // `written`); what it switches, and the state after it.
        enum Step { case queued(Int, ConnectionID?), written(Int) }
        let steps: [(step: Step, switches: ConnectionID?, paused: ConnectionID?, waiting: Int)] = [
            (.queued(400, a), nil, nil, 400),
            (.queued(599, a), nil, nil, 999),     // below the mark
            (.queued(1, a), a, a, 1000),          // at it: reading stops on a
            (.queued(5000, a), nil, a, 6000),     // already stopped: nothing to switch
            (.written(4000), nil, a, 2000),       // still at or over the mark
            (.written(1000), nil, a, 1000),
            (.written(1), a, nil, 999),           // below it: reading starts again on a
            (.written(999), nil, nil, 0),         // already reading
            (.queued(1500, nil), nil, nil, 1500), // from no known connection: nothing to stop
            (.queued(10, b), b, b, 1510),         // over the mark, from b: b stops
        ]
        for (i, step) in steps.enumerated() {
            let now = Duration.milliseconds(i)  // a millisecond per step
            let switched = switch step.step {
            case .queued(let bytes, let connection): pause.queued(bytes, from: connection, now: now)
            case .written(let bytes): pause.written(bytes, now: now)
            }
            #expect(switched == step.switches, "step \(i)")
            #expect(pause.paused == step.paused, "step \(i)")
            #expect(pause.waitingBytes == step.waiting, "step \(i)")
        }
        #expect(pause.pauses == 2)
        #expect(pause.longestPause == .milliseconds(4))  // a's, from step 2 to step 6
        #expect(pause.pausedSince == .milliseconds(9))
        // The end of another connection changes nothing; b's end forgets its pause.
        pause.ended(a, now: .milliseconds(20))
        #expect(pause.paused == b)
        pause.ended(b, now: .milliseconds(20))
        #expect(pause.paused == nil && pause.pausedSince == nil && pause.waitingBytes == 1510)
        #expect(pause.longestPause == .milliseconds(11))
        // A resume (role change, halt) starts reading whatever waits; the next batch stops it again.
        #expect(pause.queued(1, from: a, now: .milliseconds(30)) == a)
        #expect(pause.resume(now: .milliseconds(30)) == a && pause.paused == nil && pause.resume(now: .milliseconds(40)) == nil)
        #expect(pause.queued(1, from: a, now: .milliseconds(50)) == a && pause.pauses == 4 && pause.waitingBytes == 1512)
        #expect(pause.longestPause == .milliseconds(11))
        // A mark below one byte stops reading at any batch.
        var zero = ClusterReadPause(maxBytes: 0)
        #expect(zero.maxBytes == 1 && zero.queued(1, from: a, now: .zero) == a && zero.written(1, now: .zero) == a)
    }

    @Test func aFollowerCatchesUpManyTimesTheMarkAndTheElectionIsUndisturbed() async throws {
        let cluster = try await Self.cluster()
        do {
            let primary = try await cluster.waitForPrimary()
            let epoch = try await cluster.node(primary).status().epoch
            let follower = cluster.ids.first { $0 != primary }!
            try await cluster.crash(follower)
            let written = try await Self.backlog(on: cluster.node(primary), bytes: 8 * Self.mark)
            let restarted = try await cluster.start(follower)
            try await cluster.waitForEqualLogs(to: primary, timeout: .seconds(90))
            #expect(try allRecords(restarted.log).count == written)
            let pause = try await Self.readPause(of: restarted)
            #expect(pause.pauses > 0, "the catch-up never stopped reading")
            print("catch-up of \(written) records: \(pause.pauses) pauses, the longest \(pause.longestPause)")
            #expect(pause.waitingBytes == 0 && pause.paused == nil)
            // Pausing the connection that carries the heartbeats made no one take over.
            #expect(try await cluster.waitForPrimary() == primary)
            #expect(try await cluster.node(primary).status().epoch == epoch)
        } catch {
            await cluster.stopAll()
            throw error
        }
        await cluster.stopAll()
    }

    @Test func thePrimaryCrashingWhileAFollowerIsPausedLeavesItToCatchUpFromTheNextOne() async throws {
        let cluster = try await Self.cluster()
        do {
            let primary = try await cluster.waitForPrimary()
            let follower = cluster.ids.first { $0 != primary }!
            try await cluster.crash(follower)
            let written = try await Self.backlog(on: cluster.node(primary), bytes: 32 * Self.mark)
            try await cluster.waitForEqualLogs(to: primary, timeout: .seconds(30))  // the third node has every record
            let restarted = try await cluster.start(follower)
            try await waitUntil("the catching-up follower to stop reading", timeout: .seconds(60)) {
                try await Self.readPause(of: restarted).pauses > 0
            }
            // Its connection to the primary ends (with the batches still waiting, maybe paused);
            // the third node, which has every record, is elected.
            try await cluster.crash(primary)
            let atCrash = try await Self.readPause(of: restarted)
            let left = try cluster.node(cluster.ids.first { $0 != primary && $0 != follower }!).log.totalBytes
                - restarted.log.totalBytes
            let next = try await cluster.waitForPrimary(timeout: .seconds(30))
            #expect(next != primary)
            try await cluster.waitForEqualLogs(to: next, timeout: .seconds(90))
            #expect(try allRecords(restarted.log).count == written)
            let pause = try await Self.readPause(of: restarted)
            #expect(pause.waitingBytes == 0 && pause.paused == nil)
            // A pause left over from the ended connection would keep the new one from pausing.
            if left >= Int64(4 * Self.mark) {
                #expect(pause.pauses > atCrash.pauses, "\(left) bytes caught up from \(next) without a pause")
            }
        } catch {
            await cluster.stopAll()
            throw error
        }
        await cluster.stopAll()
    }

    /// The mark: 1 MiB (32 MiB by default), one ship frame, keeps the logs small.
    static let mark = 1 << 20

    static func cluster() async throws -> AutoCluster {
        var replication = ReplicationConfiguration()
        replication.maxUnwrittenBytes = mark
        // The default timings (the tests' 300 ms timeout is tight for a debug build on a busy
        // machine whose log writes lag by a whole 1 MiB frame at a time).
        let cluster = try await AutoCluster(voters: 3, heartbeat: .milliseconds(100), timeout: .seconds(1), replication: replication)
        try await cluster.startAll()
        return cluster
    }

    /// Appends about `bytes` on `primary` in batches of 64 records of 1 KiB that LZ4 cannot
    /// shrink, acknowledged by a majority; returns how many records.
    static func backlog(on primary: Node, bytes: Int) async throws -> Int {
        var written = 0
        for _ in 0..<10_000 where try primary.log.totalBytes < Int64(bytes) {
            let records = (0..<64).map { FollowerReadPauseTests.incompressible(written + $0) }
            written += records.count
            _ = try await primary.append(records, mode: .async)
        }
        #expect(try primary.log.totalBytes >= Int64(bytes))
        return written
    }

    static func readPause(of node: Node) async throws -> ClusterReadPause {
        let running = try node.running()
        let driver = try #require(running.cluster)
        return try await running.loop.submit { driver.readPause }.get()
    }
}
