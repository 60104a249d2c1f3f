import Foundation

/// One failover round against an `EtcdCluster`, through the client issue 10's etcd figures
/// used: every put (a 1 KiB value under an incrementing key, through the v3 JSON gateway) has
/// a 100 ms timeout, and on an error or a timeout the client moves to the next member (in
/// member order, wrapping) and tries again. Without the timeout a follower holds the retried
/// put for its own request timeout, forwarding it to the dead leader. MTTR = the kill of the
/// leader to the first acknowledged put.
struct EtcdFailover {
    static let requestTimeoutMilliseconds = 100
    /// After an immediate error (a refused connect, an error answer) before the next try, so
    /// the client does not spin; a timeout has already waited.
    static let errorPauseMilliseconds = 1
    static let putsBeforeKill = 50
    static let giveUpMilliseconds = 60_000

    /// What one round measured.
    struct Round {
        var mttrMilliseconds: Double
        /// Raft terms from the killed leader's to the new one's: 1 when the first election won.
        var terms: UInt64
    }

    let cluster: EtcdCluster
    private let base64Value = Data(repeating: 0x65, count: 1024).base64EncodedString()
    private var key = 0
    /// The member the client is on (it stays there while its puts succeed), and its connection.
    private var current = 0
    private var connection: EtcdGateway?

    init(cluster: EtcdCluster) { self.cluster = cluster }

    /// One put on the current member within the timeout; on failure the client moves on.
    private mutating func put() -> Bool {
        key += 1
        let started = monotonicNanoseconds()
        do {
            if connection == nil { connection = try EtcdGateway(port: cluster.clientPorts[current]) }
            if try connection!.put(key: "failover/\(key)", base64Value: base64Value, timeoutMilliseconds: Self.requestTimeoutMilliseconds) {
                return true
            }
        } catch {}
        connection = nil
        current = (current + 1) % cluster.clientPorts.count
        if monotonicNanoseconds() - started < UInt64(Self.requestTimeoutMilliseconds) * 1_000_000 {
            sleep(milliseconds: Self.errorPauseMilliseconds)
        }
        return false
    }

    /// One round: puts, kill -9 of the leader, puts until one is acknowledged, the new term, then
    /// the killed member restarted and the cluster healthy again.
    mutating func round(leader: Int, term: UInt64) throws -> (round: Round, leader: Int, term: UInt64) {
        var acknowledged = 0
        for _ in 0..<(Self.putsBeforeKill * 4) where acknowledged < Self.putsBeforeKill {
            if put() { acknowledged += 1 }
        }
        guard acknowledged == Self.putsBeforeKill else {
            throw NetworkError.unexpectedReply("etcd acknowledged \(acknowledged) of \(Self.putsBeforeKill * 4) puts before the kill")
        }
        let killedAt = cluster.kill(leader)
        let end = killedAt + UInt64(Self.giveUpMilliseconds) * 1_000_000
        while monotonicNanoseconds() < end {
            guard put() else { continue }
            let acknowledgedAt = monotonicNanoseconds()
            precondition(current != leader, "a killed etcd leader acknowledged a put")
            // The acknowledging member has seen the new leader's term.
            let newTerm = (try? connection?.status(timeoutMilliseconds: 1000))?.raftTerm ?? term
            connection = nil
            let (nextLeader, nextTerm) = try cluster.restart(leader)
            return (Round(mttrMilliseconds: Double(acknowledgedAt - killedAt) / 1e6, terms: newTerm - min(newTerm, term)),
                    nextLeader, nextTerm)
        }
        throw NetworkError.timeout("no etcd member acknowledged a put within \(Self.giveUpMilliseconds / 1000) s of killing the leader")
    }
}
