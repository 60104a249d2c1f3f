import Foundation

/// One failover round against a `SentinelCluster`, as a Sentinel-aware client sees it: the
/// writer SETs 1 KiB values under incrementing keys on the master; the master is killed with
/// SIGKILL; the writer then asks a Sentinel (the next one each try, 100 ms timeout) for the
/// master's address and SETs there (100 ms timeout), pausing `retryPauseMilliseconds` before
/// each try, until a SET is acknowledged (`+OK`) by a node other than the killed one.
/// MTTR = that acknowledgement's time minus the kill's. Between tries the writer also SETs on
/// the surviving node directly, as a client that knew the topology could: the first of those
/// acknowledged is the promotion time (the replica accepts writes; Sentinel names it only once
/// its next INFO poll of the replica has seen the promotion).
struct SentinelFailover {
    static let requestTimeoutMilliseconds = 100
    static let retryPauseMilliseconds = 5
    /// Acknowledged writes on the master before each kill: the writer is mid-stream when it dies.
    static let writesBeforeKill = 50
    /// The longest a round may wait for a new master before it fails.
    static let giveUpMilliseconds = 60_000

    let cluster: SentinelCluster
    private let value = [UInt8](repeating: 0x73, count: 1024)
    private var key = 0
    private var sentinelTurn = 0

    init(cluster: SentinelCluster) { self.cluster = cluster }

    /// A SET of the next key within the request timeout: whether the node acknowledged it.
    private mutating func write(_ connection: TimedRESP) -> Bool {
        key += 1
        let reply = try? connection.call([Array("SET".utf8), Array("failover:\(key)".utf8), value],
                                         timeoutMilliseconds: Self.requestTimeoutMilliseconds)
        return reply == .simple("OK")
    }

    /// The master's port as the next Sentinel that answers names it. Each call starts at the
    /// Sentinel after the one asked last: the Sentinel that led the failover names the new
    /// master at once, the others only once its hello messages reach them, and a client that
    /// kept asking one stale Sentinel would measure that gossip rather than the failover.
    private mutating func askSentinels() -> UInt16? {
        for _ in cluster.sentinelPorts.indices {
            let port = cluster.sentinelPorts[sentinelTurn % cluster.sentinelPorts.count]
            sentinelTurn += 1
            if let sentinel = try? TimedRESP(port: port),
               let master = try? cluster.masterPort(asking: sentinel, timeoutMilliseconds: Self.requestTimeoutMilliseconds) {
                return master
            }
        }
        return nil
    }

    /// What one round measured, in milliseconds after the kill.
    struct Round {
        /// The first write acknowledged at the address Sentinel gave.
        var mttrMilliseconds: Double
        /// The first write the surviving node acknowledged when written to directly.
        var promotionMilliseconds: Double
    }

    /// One round: writes, the kill, the client's recovery, then the killed node restarted as a
    /// replica of the new master and the cluster settled.
    mutating func round() throws -> Round {
        // If Sentinel moved the master on its own since the cluster settled, the writes fail:
        // settle again (once) and start over.
        var master: TimedRESP?
        for attempt in 0..<2 where master == nil {
            if attempt > 0 { try cluster.waitStable(timeoutSeconds: 60) }
            cluster.waitForRoundSpacing()
            let connection = try TimedRESP(port: cluster.nodePorts[cluster.masterIndex])
            var written = 0
            while written < Self.writesBeforeKill && write(connection) { written += 1 }
            if written == Self.writesBeforeKill { master = connection }
        }
        guard let master else {
            throw NetworkError.unexpectedReply("the Redis master refused writes before the kill, also after the cluster settled again")
        }
        let (killed, killedAt) = cluster.killMaster()
        let killedPort = cluster.nodePorts[killed]
        let survivorPort = cluster.nodePorts[1 - killed]
        var promotedAt: UInt64?
        // The client still holds its connection to the dead master: its next write fails, as a
        // real client's would, and only then does it go to the Sentinels.
        let acknowledged = write(master)
        precondition(!acknowledged, "a killed Redis master acknowledged a write")
        let end = killedAt + UInt64(Self.giveUpMilliseconds) * 1_000_000
        while monotonicNanoseconds() < end {
            sleep(milliseconds: Self.retryPauseMilliseconds)
            if promotedAt == nil, let survivor = try? TimedRESP(port: survivorPort), write(survivor) {
                promotedAt = monotonicNanoseconds()
            }
            // An address that is still the dead master's costs a refused connect, then the pause.
            guard let port = askSentinels(), let connection = try? TimedRESP(port: port), write(connection) else { continue }
            let acknowledgedAt = monotonicNanoseconds()
            precondition(port != killedPort, "a killed Redis master acknowledged a write")
            guard let newMaster = cluster.nodePorts.firstIndex(of: port) else {
                throw NetworkError.unexpectedReply("a write was acknowledged on unknown port \(port)")
            }
            try cluster.restartKilledNode(killed, newMaster: newMaster)
            return Round(mttrMilliseconds: Double(acknowledgedAt - killedAt) / 1e6,
                         promotionMilliseconds: Double(min(promotedAt ?? acknowledgedAt, acknowledgedAt) - killedAt) / 1e6)
        }
        throw NetworkError.timeout("no Redis node acknowledged a write within \(Self.giveUpMilliseconds / 1000) s of killing the master on port \(killedPort)")
    }
}
