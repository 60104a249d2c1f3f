import Foundation

/// Redis with Sentinel on 127.0.0.1 for the `failover-peers` workload: two data nodes (a master
/// and one replica) and three Sentinels (quorum 2), each a `ChildProcess` with its own port and
/// directory under `root`. Which node is master changes with every failover: `masterIndex`.
/// The Sentinels are redis-server in sentinel mode (`--sentinel`), the same binary Debian's
/// redis-sentinel package runs. `stop()` stops every process by pid and removes `root`.
final class SentinelCluster {
    static let masterName = "shiplog"
    let server: String
    let root: String
    /// Leave `root` (every process's log) in place after `stop()`: the bench's `--keep`.
    var keepDirectory = false
    let detectionMilliseconds: Int
    /// Sentinel's failover-timeout: also the pause (twice it) before Sentinel will fail the same
    /// master name over again, so rounds are spaced by `roundSpacingMilliseconds`.
    let failoverTimeoutMilliseconds: Int
    let nodePorts: [UInt16]
    let sentinelPorts: [UInt16]
    private var nodes: [ChildProcess?] = [nil, nil]
    private var sentinels: [ChildProcess] = []
    private(set) var masterIndex = 0
    private var lastKillAt: UInt64?
    var replicaIndex: Int { 1 - masterIndex }

    /// Sentinel refuses a second failover of one master within 2 × failover-timeout of the last
    /// one's start, which each Sentinel may also delay by up to 1 s (SENTINEL_MAX_DESYNC).
    var roundSpacingMilliseconds: Int { 2 * failoverTimeoutMilliseconds + 1500 }

    /// Starts both data nodes, waits for the replica's link, then the Sentinels, and returns once
    /// every Sentinel sees the master, the replica and the two other Sentinels (bounded waits).
    init(server: String, root: String, detectionMilliseconds: Int, failoverTimeoutMilliseconds: Int = 2000) throws {
        self.server = server
        self.root = root
        self.detectionMilliseconds = detectionMilliseconds
        self.failoverTimeoutMilliseconds = failoverTimeoutMilliseconds
        let ports = try distinctFreePorts(5)
        nodePorts = Array(ports[0..<2])
        sentinelPorts = Array(ports[2..<5])
        do {
            nodes[0] = try startNode(0, replicaOf: nil)
            nodes[1] = try startNode(1, replicaOf: nodePorts[0])
            for index in 0..<3 { sentinels.append(try startSentinel(index)) }
            try waitStable(timeoutSeconds: 60)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    private func nodeDirectory(_ index: Int) -> String { root + "/node\(index)" }

    /// A data node as `RedisPair` runs them (no persistence, diskless initial sync), answering PING.
    private func startNode(_ index: Int, replicaOf master: UInt16?) throws -> ChildProcess {
        let directory = nodeDirectory(index)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var arguments = ["--port", String(nodePorts[index]), "--bind", "127.0.0.1", "--dir", directory, "--daemonize", "no",
                         "--save", "", "--appendonly", "no", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                         "--logfile", ""]
        if let master { arguments += ["--replicaof", "127.0.0.1", String(master)] }
        let process = try ChildProcess(executable: server, arguments: arguments, output: .file(directory + "/redis.log"),
                                       name: "redis-server node \(index) on port \(nodePorts[index])")
        try waitForPing(port: nodePorts[index], process: process, log: directory + "/redis.log")
        return process
    }

    private func startSentinel(_ index: Int) throws -> ChildProcess {
        let directory = root + "/sentinel\(index)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let name = Self.masterName
        // Sentinel rewrites its configuration file, so each has its own, written here.
        let configuration = """
            port \(sentinelPorts[index])
            bind 127.0.0.1
            daemonize no
            dir \(directory)
            logfile ""
            sentinel monitor \(name) 127.0.0.1 \(nodePorts[masterIndex]) 2
            sentinel down-after-milliseconds \(name) \(detectionMilliseconds)
            sentinel failover-timeout \(name) \(failoverTimeoutMilliseconds)
            sentinel parallel-syncs \(name) 1

            """
        try configuration.write(toFile: directory + "/sentinel.conf", atomically: true, encoding: .utf8)
        let process = try ChildProcess(executable: server, arguments: [directory + "/sentinel.conf", "--sentinel"],
                                       output: .file(directory + "/sentinel.log"),
                                       name: "redis sentinel \(index) on port \(sentinelPorts[index])")
        try waitForPing(port: sentinelPorts[index], process: process, log: directory + "/sentinel.log")
        return process
    }

    private func waitForPing(port: UInt16, process: ChildProcess, log: String) throws {
        let end = deadline(milliseconds: 10_000)
        while monotonicNanoseconds() < end {
            if process.hasExited {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw NetworkError.child("\(process.name) exited at start: " + text.split(separator: "\n").suffix(5).joined(separator: " | "))
            }
            if let connection = try? TimedRESP(port: port), (try? connection.call("PING", timeoutMilliseconds: 500)) == .simple("PONG") {
                return
            }
            sleep(milliseconds: 20)
        }
        throw NetworkError.timeout("\(process.name) did not answer PING within 10 s")
    }

    /// Waits (at most `roundSpacingMilliseconds`) until Sentinel would fail the master over again.
    func waitForRoundSpacing() {
        guard let lastKillAt else { return }
        let earliest = lastKillAt + UInt64(roundSpacingMilliseconds) * 1_000_000
        while monotonicNanoseconds() < earliest { sleep(milliseconds: 10) }
    }

    /// kill -9 of the current master, by pid; returns the monotonic time just after the signal.
    /// The process is reaped later (`restartKilledNode`), off the measured path.
    func killMaster() -> (index: Int, at: UInt64) {
        let index = masterIndex
        kill(nodes[index]!.pid, SIGKILL)
        let at = monotonicNanoseconds()
        lastKillAt = at
        return (index, at)
    }

    /// After a failover to `newMaster`: reaps the killed node, starts it again (empty, as nothing
    /// is persisted) as a replica of the new master, and waits until the cluster is stable again.
    func restartKilledNode(_ killed: Int, newMaster: Int) throws {
        precondition(killed != newMaster, "the killed node cannot be the new master")
        nodes[killed]?.stop()
        nodes[killed] = nil
        masterIndex = newMaster
        nodes[killed] = try startNode(killed, replicaOf: nodePorts[newMaster])
        try waitStable(timeoutSeconds: 60)
    }

    /// Polls every 50 ms, for at most `timeoutSeconds`, until for a whole second all three
    /// Sentinels name the same master, see no failover in progress, know the two other Sentinels
    /// and see the other node as a healthy replica of it, linked. That master becomes
    /// `masterIndex`: at short timeouts Sentinel sometimes fails a freshly promoted master over
    /// again on its own (see `failoversLogged`); the next kill then waits as after one of ours.
    func waitStable(timeoutSeconds: Int) throws {
        let end = deadline(milliseconds: timeoutSeconds * 1000)
        var last = "not polled"
        var stableSince: (master: Int, at: UInt64)?
        while monotonicNanoseconds() < end {
            do {
                switch try stableMaster() {
                case .success(let master):
                    if let since = stableSince, since.master == master {
                        if monotonicNanoseconds() - since.at >= 1_000_000_000 {
                            if master != masterIndex {
                                lastKillAt = monotonicNanoseconds()
                                masterIndex = master
                            }
                            return
                        }
                    } else {
                        stableSince = (master, monotonicNanoseconds())
                    }
                case .failure(let reason):
                    stableSince = nil
                    last = reason.text
                }
            } catch {
                stableSince = nil
                last = "\(error)"
            }
            sleep(milliseconds: 50)
        }
        throw NetworkError.timeout("the Sentinel cluster did not settle within \(timeoutSeconds) s: \(last)")
    }

    /// Why `stableMaster` found the cluster unsettled.
    struct Unsettled: Error { var text: String }

    /// The node every Sentinel names master, if the cluster is as `waitStable` wants it.
    private func stableMaster() throws -> Result<Int, Unsettled> {
        let sentinels = try sentinelPorts.map { try TimedRESP(port: $0) }
        let named = Set(try sentinels.map { try masterPort(asking: $0) })
        guard named.count == 1, let index = nodePorts.firstIndex(of: named.first!) else {
            return .failure(Unsettled(text: "the Sentinels name \(named.sorted())"))
        }
        let master = nodePorts[index]
        let replica = nodePorts[1 - index]
        let masterInfo = try TimedRESP(port: master).call("INFO", "replication", timeoutMilliseconds: 1000).text ?? ""
        guard masterInfo.contains("role:master"), masterInfo.contains("connected_slaves:1") else {
            return .failure(Unsettled(text: "master \(master) has no replica"))
        }
        let replicaInfo = try TimedRESP(port: replica).call("INFO", "replication", timeoutMilliseconds: 1000).text ?? ""
        guard replicaInfo.contains("master_port:\(master)"), replicaInfo.contains("master_link_status:up") else {
            return .failure(Unsettled(text: "replica \(replica) not linked to \(master)"))
        }
        for sentinel in sentinels {
            let fields = try sentinel.call("SENTINEL", "MASTER", Self.masterName, timeoutMilliseconds: 1000).fields
            guard fields["flags"] == "master", fields["num-other-sentinels"] == "2" else {
                return .failure(Unsettled(text: "sentinel \(sentinel.port): master flags \(fields["flags"] ?? "?"), "
                                          + "other sentinels \(fields["num-other-sentinels"] ?? "?")"))
            }
            guard case .array(let replicas?) = try sentinel.call("SENTINEL", "REPLICAS", Self.masterName, timeoutMilliseconds: 1000),
                  replicas.contains(where: { $0.fields["port"] == String(replica) && $0.fields["flags"] == "slave"
                      && $0.fields["master-link-status"] == "ok" }) else {
                return .failure(Unsettled(text: "sentinel \(sentinel.port) does not see replica \(replica) as healthy"))
            }
        }
        return .success(index)
    }

    /// The failovers Sentinel has made (`+switch-master` lines in the first Sentinel's log): more
    /// than the rounds when it failed a freshly promoted master over again on its own, as it
    /// does at short down-after-milliseconds when its new link to that master is not answered
    /// in time (seen at 300 ms on a loaded machine: the master moved back and forth).
    func failoversLogged() -> Int {
        let log = (try? String(contentsOfFile: root + "/sentinel0/sentinel.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains("+switch-master") }.count
    }

    /// SENTINEL get-master-addr-by-name: the port of the master this Sentinel names.
    func masterPort(asking sentinel: TimedRESP, timeoutMilliseconds: Int = 1000) throws -> UInt16 {
        let reply = try sentinel.call("SENTINEL", "get-master-addr-by-name", Self.masterName, timeoutMilliseconds: timeoutMilliseconds)
        guard case .array(let address?) = reply, address.count == 2, let text = address[1].text, let port = UInt16(text) else {
            throw NetworkError.unexpectedReply("SENTINEL get-master-addr-by-name answered \(reply) on port \(sentinel.port)")
        }
        return port
    }

    /// Stops the Sentinels first (so none reacts to the rest stopping), then both nodes, by pid,
    /// and removes `root`. Safe to call twice.
    func stop() {
        for sentinel in sentinels { sentinel.stop() }
        sentinels = []
        for index in nodes.indices {
            nodes[index]?.stop()
            nodes[index] = nil
        }
        if !keepDirectory { try? FileManager.default.removeItem(atPath: root) }
    }
}

/// `count` ports free a moment ago, all different (see `LoopbackSocket.freePort`): held open
/// together while they are chosen, so the kernel cannot hand out one twice.
func distinctFreePorts(_ count: Int) throws -> [UInt16] {
    var listeners: [Int32] = []
    defer { for fd in listeners { close(fd) } }
    var ports: [UInt16] = []
    for _ in 0..<count {
        let (fd, port) = try LoopbackSocket.listen(port: 0, backlog: 1)
        listeners.append(fd)
        ports.append(port)
    }
    return ports
}
