import Foundation

/// A three-member etcd cluster on 127.0.0.1 for the `failover-peers` workload: each member a
/// `ChildProcess` of Debian's `etcd` (3.4) with its own client and peer ports and data directory
/// under `root`, `--heartbeat-interval` and `--election-timeout` as given, everything else at
/// etcd's defaults (so no pre-vote: 3.4's default). A killed member restarts on its own data
/// directory. `stop()` stops every member by pid and removes `root`.
final class EtcdCluster {
    let executable: String
    let root: String
    /// Leave `root` (every process's log) in place after `stop()`: the bench's `--keep`.
    var keepDirectory = false
    let heartbeatMilliseconds: Int
    let electionMilliseconds: Int
    let clientPorts: [UInt16]
    let peerPorts: [UInt16]
    private var members: [ChildProcess?] = [nil, nil, nil]
    private let token = "shiplog-" + UUID().uuidString

    /// etcd on the PATH (or in /usr/bin, /usr/local/bin), nil if none.
    static func findServer() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return directories.map { $0 + "/etcd" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts the three members and returns once they agree on a leader (bounded: 60 s).
    init(executable: String, root: String, heartbeatMilliseconds: Int, electionMilliseconds: Int) throws {
        self.executable = executable
        self.root = root
        self.heartbeatMilliseconds = heartbeatMilliseconds
        self.electionMilliseconds = electionMilliseconds
        let ports = try distinctFreePorts(6)
        clientPorts = Array(ports[0..<3])
        peerPorts = Array(ports[3..<6])
        do {
            for index in 0..<3 { try start(index) }
            _ = try waitHealthy(timeoutSeconds: 60)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    private func name(_ index: Int) -> String { "m\(index)" }
    private func directory(_ index: Int) -> String { root + "/" + name(index) }

    /// Starts (or restarts, on the same data directory: etcd then ignores the initial-cluster
    /// flags) member `index`.
    private func start(_ index: Int) throws {
        precondition(members[index] == nil, "etcd member \(index) is already running")
        try FileManager.default.createDirectory(atPath: directory(index), withIntermediateDirectories: true)
        let client = "http://127.0.0.1:\(clientPorts[index])"
        let peer = "http://127.0.0.1:\(peerPorts[index])"
        let cluster = (0..<3).map { "\(name($0))=http://127.0.0.1:\(peerPorts[$0])" }.joined(separator: ",")
        let arguments = ["--name", name(index), "--data-dir", directory(index) + "/data",
                         "--listen-client-urls", client, "--advertise-client-urls", client,
                         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                         "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
                         "--heartbeat-interval", String(heartbeatMilliseconds), "--election-timeout", String(electionMilliseconds),
                         "--logger", "zap", "--log-outputs", "stderr"]
        // Appended to, so the log of a member's earlier lives survives its restarts.
        let log = directory(index) + "/etcd-\(UUID().uuidString.prefix(8)).log"
        members[index] = try ChildProcess(executable: executable, arguments: arguments, output: .file(log),
                                          name: "etcd member \(name(index)) (client port \(clientPorts[index]))")
    }

    /// kill -9 of member `index` by pid; returns the monotonic time just after the signal. The
    /// process is reaped later (`restart`), off the measured path.
    func kill(_ index: Int) -> UInt64 {
        Glibc.kill(members[index]!.pid, SIGKILL)
        return monotonicNanoseconds()
    }

    /// Reaps the killed member, starts it again on its data directory, and waits until all
    /// three are healthy under one leader.
    func restart(_ index: Int) throws -> (leader: Int, term: UInt64) {
        members[index]?.stop()
        members[index] = nil
        try start(index)
        return try waitHealthy(timeoutSeconds: 60)
    }

    /// Each live member's status (nil for one that does not answer within `timeoutMilliseconds`).
    func statuses(timeoutMilliseconds: Int = 1000) -> [EtcdGateway.Status?] {
        clientPorts.indices.map { index in
            guard members[index] != nil else { return nil }
            return try? EtcdGateway(port: clientPorts[index]).status(timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// Polls every 50 ms, for at most `timeoutSeconds`, until every member answers its status,
    /// all name the same leader, and two polls in a row agree; returns that leader and its term.
    func waitHealthy(timeoutSeconds: Int) throws -> (leader: Int, term: UInt64) {
        let end = deadline(milliseconds: timeoutSeconds * 1000)
        var previous: (leader: Int, term: UInt64)?
        var last = "not polled"
        while monotonicNanoseconds() < end {
            for (index, member) in members.enumerated() where member?.hasExited == true {
                throw NetworkError.child("etcd member \(name(index)) exited (status \(member!.waitStatus!)); its log is under \(directory(index))")
            }
            let all = statuses()
            if all.allSatisfy({ $0 != nil }), let first = all[0], first.leaderID != "0",
               all.allSatisfy({ $0!.leaderID == first.leaderID }),
               let leader = all.firstIndex(where: { $0!.memberID == first.leaderID }) {
                let now: (leader: Int, term: UInt64) = (leader, all[leader]!.raftTerm)
                if let previous, previous == now { return now }
                previous = now
            } else {
                previous = nil
                last = all.map { status in status.map { "leader \($0.leaderID) term \($0.raftTerm)" } ?? "no answer" }.joined(separator: "; ")
            }
            sleep(milliseconds: 50)
        }
        throw NetworkError.timeout("the etcd members did not agree on a leader within \(timeoutSeconds) s: \(last)")
    }

    /// Stops every member by pid (SIGTERM, SIGKILL after 5 s) and removes `root`. Safe to call twice.
    func stop() {
        for index in members.indices {
            members[index]?.stop()
            members[index] = nil
        }
        if !keepDirectory { try? FileManager.default.removeItem(atPath: root) }
    }
}
