import Foundation

/// One failover round against a `SentinelCluster`, as a Sentinel-aware client sees it: the
/// writer SETs 1 KiB values under incrementing keys on the master; the master is killed with
/// SIGKILL; the writer then asks the Sentinels (in turn, 100 ms timeout each) for the master's
/// address and SETs there (100 ms timeout), pausing `retryPauseMilliseconds` after a failed
/// attempt, until a SET is acknowledged (`+OK`) by a node other than the killed one.
/// MTTR = that acknowledgement's time minus the kill's.
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

    /// The master's port as the next Sentinel that answers names it (each asked once, in turn).
    private mutating func askSentinels() -> UInt16? {
        for _ in cluster.sentinelPorts.indices {
            let port = cluster.sentinelPorts[sentinelTurn % cluster.sentinelPorts.count]
            if let sentinel = try? TimedRESP(port: port),
               let master = try? cluster.masterPort(asking: sentinel, timeoutMilliseconds: Self.requestTimeoutMilliseconds) {
                return master
            }
            sentinelTurn += 1
        }
        return nil
    }

    /// One round: writes, the kill, the client's recovery, then the killed node restarted as a
    /// replica of the new master and the cluster settled. Returns the MTTR in milliseconds.
    mutating func round() throws -> Double {
        cluster.waitForRoundSpacing()
        let master = try TimedRESP(port: cluster.nodePorts[cluster.masterIndex])
        for _ in 0..<Self.writesBeforeKill where !write(master) {
            throw NetworkError.unexpectedReply("the Redis master on port \(master.port) refused a write before the kill")
        }
        let (killed, killedAt) = cluster.killMaster()
        let killedPort = cluster.nodePorts[killed]
        // The client still holds its connection to the dead master: its next write fails, as a
        // real client's would, and only then does it go to the Sentinels.
        let acknowledged = write(master)
        precondition(!acknowledged, "a killed Redis master acknowledged a write")
        let end = killedAt + UInt64(Self.giveUpMilliseconds) * 1_000_000
        while monotonicNanoseconds() < end {
            sleep(milliseconds: Self.retryPauseMilliseconds)
            // An address that is still the dead master's costs a refused connect, then the pause.
            guard let port = askSentinels(), let connection = try? TimedRESP(port: port), write(connection) else { continue }
            let acknowledgedAt = monotonicNanoseconds()
            precondition(port != killedPort, "a killed Redis master acknowledged a write")
            guard let newMaster = cluster.nodePorts.firstIndex(of: port) else {
                throw NetworkError.unexpectedReply("a write was acknowledged on unknown port \(port)")
            }
            try cluster.restartKilledNode(killed, newMaster: newMaster)
            return Double(acknowledgedAt - killedAt) / 1e6
        }
        throw NetworkError.timeout("no Redis node acknowledged a write within \(Self.giveUpMilliseconds / 1000) s of killing the master on port \(killedPort)")
    }
}
