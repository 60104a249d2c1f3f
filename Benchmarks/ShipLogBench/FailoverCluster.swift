import Foundation
import ShipLogNode
import ShipLogStorage

/// Three `shiplog serve --role automatic` processes on 127.0.0.1 for the `failover` workload,
/// each with its own port (reserved once, reused by restarts), log directory and serve log
/// (standard error, appended across restarts), appending through `--stdin-appends sync:1`.
/// Every process is a `ChildProcess`, stopped by its pid.
final class FailoverCluster {
    static let nodes = [1, 2, 3]

    let root: String
    let setting: FailoverPeers.Settings
    private let shiplog: String
    private let key: [UInt8]
    private let keyFile: String
    private let ports: [Int: Int]
    private var processes: [Int: ChildProcess] = [:]
    /// Set once the writer exists; every started incarnation is attached to it.
    var writer: FailoverWriter?

    init(root: String, setting: FailoverPeers.Settings) throws {
        self.root = root
        self.setting = setting
        shiplog = try ReplicationCluster.shiplogPath()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        key = Array("shiplog-bench failover key \(UUID().uuidString)".utf8)
        keyFile = root + "/cluster.key"
        guard FileManager.default.createFile(atPath: keyFile, contents: Data(key), attributes: [.posixPermissions: 0o600]) else {
            throw BenchError.engine("cannot write \(keyFile)")
        }
        let reserved = try reserveLoopbackPorts(Self.nodes.count)
        ports = Dictionary(uniqueKeysWithValues: zip(Self.nodes, reserved))
    }

    func logDirectory(_ id: Int) -> String { root + "/node-\(id)" }
    func serveLog(_ id: Int) -> String { root + "/serve-\(id).log" }
    func pid(_ id: Int) -> pid_t? { processes[id]?.pid }

    /// Starts node `id` (again, after a kill: same directory, same port) and waits for it to listen.
    func start(_ id: Int) throws {
        precondition(processes[id] == nil, "node \(id) is already running")
        var arguments = ["serve", "--role", "automatic", "--id", "\(id)", "--log-dir", logDirectory(id),
                         "--listen", "127.0.0.1:\(ports[id]!)", "--key-file", keyFile,
                         "--heartbeat-interval-ms", "\(setting.heartbeatMilliseconds)",
                         "--election-timeout-ms", "\(setting.detectionTimeoutMilliseconds)",
                         "--log-level", "info", "--stdin-appends", "sync:1"]
        for peer in Self.nodes where peer != id { arguments += ["--peer", "\(peer)=127.0.0.1:\(ports[peer]!)"] }
        let process = try ChildProcess(executable: shiplog, arguments: arguments, output: .pipeWithErrors(appendingTo: serveLog(id)),
                                       name: "shiplog serve (node \(id))")
        processes[id] = process
        let line = try process.readLine(timeout: .seconds(30))
        guard line.hasPrefix("listening on ") else {
            throw NetworkError.unexpectedReply("node \(id) printed '\(line)' instead of 'listening on HOST:PORT'")
        }
        try writer?.attach(node: id, input: process.inputDescriptor, output: process.outputDescriptor)
    }

    /// Attaches every running node to `writer` (started before it existed).
    func attach(_ writer: FailoverWriter) throws {
        self.writer = writer
        for (id, process) in processes { try writer.attach(node: id, input: process.inputDescriptor, output: process.outputDescriptor) }
    }

    /// kill -9 of node `id` by its pid: returns the instant just before the signal, then waits
    /// for the process to end (reaped, its pipes closed by the writer's reader).
    func kill9(_ id: Int) -> ContinuousClock.Instant {
        let process = processes[id]!
        let at = ContinuousClock.now
        kill(process.pid, SIGKILL)
        _ = writer?.waitClosed(node: id, timeout: .seconds(5))
        process.stop(grace: .seconds(1))
        processes[id] = nil
        return at
    }

    /// Stops every running node by its pid (SIGTERM, then SIGKILL after 5 s): the defer path.
    func stopAll() {
        for (id, process) in processes.sorted(by: { $0.key < $1.key }) {
            kill(process.pid, SIGTERM)
            _ = writer?.waitClosed(node: id, timeout: .seconds(5))
            process.stop()
        }
        processes.removeAll()
    }

    /// Node `id`'s status (1 s timeout), nil if it does not answer.
    func status(_ id: Int) -> NodeStatus? {
        let address = PeerAddress(host: "127.0.0.1", port: ports[id]!)
        let key = self.key
        return try? blocking { try await NodeStatusClient.fetch(from: address, clusterKey: key, timeout: .seconds(1)) }
    }

    /// The primary that every running node agrees on (same epoch), or nil.
    func agreedPrimary() -> (id: Int, statuses: [Int: NodeStatus])? {
        var statuses: [Int: NodeStatus] = [:]
        for id in processes.keys { guard let status = status(id) else { return nil }; statuses[id] = status }
        guard let primary = statuses.values.first(where: { $0.role == "primary" }) else { return nil }
        let agreed = statuses.values.allSatisfy { $0.epoch == primary.epoch && ($0.node == primary.node || $0.primary == primary.node) }
        return agreed ? (Int(primary.node), statuses) : nil
    }

    /// Waits until all three run, agree on one primary, and every follower holds what the
    /// primary held when the wait began (the writer keeps appending meanwhile). Returns it.
    func waitCaughtUp(timeout: Duration) throws -> Int {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var target: UInt64?
        while clock.now < deadline {
            if processes.count == Self.nodes.count, let (primary, statuses) = agreedPrimary() {
                let end = target ?? statuses[primary]!.nextOffset
                target = end
                if statuses.values.allSatisfy({ $0.nextOffset >= end }) { return primary }
            }
            usleep(5_000)
        }
        throw NetworkError.timeout("waiting \(timeout) for three nodes agreeing on a primary and caught up to offset \(target.map { "\($0)" } ?? "?")")
    }

    /// Every node's records (offset → bytes), read from a copy of its log directory after the
    /// nodes have stopped, so that opening it cannot change what the node left.
    func records() throws -> [Int: [UInt64: [UInt8]]] {
        precondition(processes.isEmpty, "read the logs after stopping the nodes")
        var result: [Int: [UInt64: [UInt8]]] = [:]
        for id in Self.nodes {
            let copy = root + "/copy-\(id)"
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: logDirectory(id), toPath: copy)
            let log = try SegmentLog.open(directory: copy)
            var records: [UInt64: [UInt8]] = [:]
            for record in try log.records(in: log.firstOffset..<log.nextOffset) { records[record.offset] = Array(record.bytes) }
            try log.close()
            try? FileManager.default.removeItem(atPath: copy)
            result[id] = records
        }
        return result
    }
}

/// `count` distinct free TCP ports on 127.0.0.1, each bound and closed again (a restart then
/// binds the same port, with SO_REUSEADDR as NIO sets it). Drawn below the kernel's ephemeral
/// range: a port from it (port 0) can be taken, between a kill and the restart, as the source
/// port of any outgoing connection on the machine, and the restart would fail with EADDRINUSE.
func reserveLoopbackPorts(_ count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    defer { for socket in sockets { close(socket) } }
    var ports: [Int] = []
    let candidates = 10_000..<max(10_001, ephemeralPortRangeStart())
    var attempts = 0
    while ports.count < count {
        attempts += 1
        guard attempts <= 1000 else {
            throw NetworkError.system(call: "bind", errno: EADDRINUSE, context: "no free loopback port in \(candidates) after 1000 tries")
        }
        let port = Int.random(in: candidates)
        guard !ports.contains(port) else { continue }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NetworkError.system(call: "socket", errno: errno, context: "reserving a loopback port") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        if bound == 0 {
            sockets.append(fd)
            ports.append(port)
        } else {
            let error = errno
            close(fd)
            guard error == EADDRINUSE || error == EACCES else {
                throw NetworkError.system(call: "bind", errno: error, context: "reserving loopback port \(port)")
            }
        }
    }
    return ports
}

/// The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range), 32768 if unreadable.
func ephemeralPortRangeStart() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
          let first = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first, let start = Int(first)
    else { return 32768 }
    return start
}
