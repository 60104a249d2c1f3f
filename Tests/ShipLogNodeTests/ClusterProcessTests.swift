import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Three `shiplog serve --role automatic` processes on loopback (heartbeat 50 ms, timeout
/// 300 ms), appending in sync:1 through the hidden stdin client: kill -9 the primary, another
/// process acknowledges appends, the killed one restarts and follows with an identical log.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ClusterProcessTests {
    /// Runs `shiplog ARGS` to its end (at most 30 s): its status and output.
    func runTool(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServeProcess.toolPath)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { $0.key != "SHIPLOG_CLUSTER_KEY" }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let deadline = Date(timeIntervalSinceNow: 30)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test func killNineThePrimaryProcessAndItRejoinsAsAFollower() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ServeProcess.toolPath), "shiplog not built at \(ServeProcess.toolPath)")
        let dir = try TemporaryDirectory()
        let keyFile = dir.sub("key")
        try Data(testKey).write(to: URL(fileURLWithPath: keyFile))
        let ports = try await reserveLoopbackPorts(3)
        let addresses = ports.map { PeerAddress(host: "127.0.0.1", port: $0) }
        var processes: [Int: ServeProcess] = [:]
        var all: [ServeProcess] = []
        defer { for process in all { process.killIfRunning() } }
        func start(_ id: Int) throws {
            var arguments = ["--role", "automatic", "--id", "\(id)", "--log-dir", dir.sub("\(id)"), "--listen", "\(addresses[id - 1])",
                             "--key-file", keyFile, "--heartbeat-interval-ms", "50", "--election-timeout-ms", "300",
                             "--segment-bytes", "262144", "--log-level", "info", "--stdin-appends", "sync:1"]
            for peer in 1...3 where peer != id { arguments += ["--peer", "\(peer)=\(addresses[peer - 1])"] }
            let process = try ServeProcess(name: "node \(id)", arguments: arguments)
            all.append(process)
            processes[id] = process
            _ = try process.listeningAddress()
        }
        for id in 1...3 { try start(id) }

        /// The running process that reports itself primary, once every running one agrees.
        func primary(timeout: Duration = .seconds(10)) async throws -> Int {
            var found = 0
            try await waitUntil("one primary among the processes", timeout: timeout) {
                var statuses: [Int: NodeStatus] = [:]
                for id in processes.keys { statuses[id] = try? await NodeStatusClient.fetch(from: addresses[id - 1], clusterKey: testKey) }
                guard let (id, status) = statuses.first(where: { $0.value.role == "primary" }) else { return false }
                found = id
                return statuses.values.allSatisfy { $0.node == status.node || $0.primary == status.node }
            }
            return found
        }
        var acknowledged: [(first: UInt64, record: String)] = []
        /// One append through `id`'s stdin: the offsets when acknowledged.
        func append(_ record: String, through id: Int) throws -> UInt64? {
            processes[id]!.send(record)
            let line = try processes[id]!.waitForLine { $0.hasPrefix("ack ") || $0.hasPrefix("error") }
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "ack", let first = UInt64(parts[1]) else { return nil }
            acknowledged.append((first, record))
            return first
        }

        let old = try await primary()
        for i in 0..<50 { #expect(try append("record \(i)", through: old) != nil) }
        let killedAt = ContinuousClock.now
        processes[old]!.signal(SIGKILL)
        _ = processes[old]!.waitForExit(timeout: 10)
        processes[old] = nil
        var next = 50
        var newPrimary = 0
        while ContinuousClock.now - killedAt < .seconds(20) {
            let candidate = (try? await primary(timeout: .milliseconds(500))) ?? 0
            if candidate != 0, try append("record \(next)", through: candidate) != nil {
                newPrimary = candidate
                break
            }
            next += 1
        }
        let failover = ContinuousClock.now - killedAt
        print("process failover: kill -9 to first acknowledged append on node \(newPrimary) took \(failover)")
        if newPrimary == 0 {
            for (id, process) in processes.sorted(by: { $0.key < $1.key }) {
                print("node \(id) after a failover that did not happen:\n\(process.stderr.suffix(6000))")
            }
        }
        try #require(newPrimary != 0 && newPrimary != old, "no other node acknowledged within 20 s of the kill")
        #expect(failover < .seconds(15))  // a liveness bound, not a speed check (shiplog-bench's `failover` measures MTTR); generous for a loaded CI machine
        for i in 0..<20 { #expect(try append("after \(i)", through: newPrimary) != nil) }

        try start(old)
        #expect(try await primary() == newPrimary)
        let end = try await NodeStatusClient.fetch(from: addresses[newPrimary - 1], clusterKey: testKey).nextOffset
        let restarted = addresses[old - 1]
        try await waitUntil("the restarted node to catch up", timeout: .seconds(20)) {
            try await NodeStatusClient.fetch(from: restarted, clusterKey: testKey).nextOffset == end
        }
        // `shiplog switchover` hands leadership back to the restarted node, and `shiplog status` shows it.
        let switchover = try runTool(["switchover", "--to", "\(old)", "\(addresses[newPrimary - 1])", "--key-file", keyFile])
        #expect(switchover.status == 0 && switchover.output.contains("node \(old) is primary now"), "\(switchover.output) \(switchover.errors)")
        #expect(try await primary() == old)
        let status = try runTool(["status", "\(addresses[newPrimary - 1])", "--key-file", keyFile])
        #expect(status.output.contains("follower of node \(old)") && status.output.contains("detector: fixed timeout"), "\(status.output)")

        for (_, process) in processes { process.signal(SIGTERM) }
        for (id, process) in processes { #expect(process.waitForExit()?.status == 0, "node \(id) did not stop cleanly") }

        var logs: [Int: [LogRecord]] = [:]
        for id in 1...3 {
            let log = try SegmentLog.open(directory: dir.sub("\(id)"))
            logs[id] = try allRecords(log)
            try await log.close()
        }
        #expect(logs[1] == logs[2] && logs[2] == logs[3])
        let held = Dictionary(logs[newPrimary]!.map { ($0.offset, String(decoding: $0.bytes, as: UTF8.self)) }, uniquingKeysWith: { a, _ in a })
        for ack in acknowledged { #expect(held[ack.first] == ack.record, "acknowledged \(ack.record) at \(ack.first) is missing") }
    }

    /// A primary, a standby and a `--witness` process: kill -9 the primary, the standby takes
    /// over with the witness's vote and acknowledges (async) appends alone; the killed node
    /// restarts as a follower with the same log; the witness stores no record.
    @Test func pairWithAWitnessProcessFailsOver() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ServeProcess.toolPath), "shiplog not built at \(ServeProcess.toolPath)")
        let dir = try TemporaryDirectory()
        let keyFile = dir.sub("key")
        try Data(testKey).write(to: URL(fileURLWithPath: keyFile))
        let addresses = try await reserveLoopbackPorts(3).map { PeerAddress(host: "127.0.0.1", port: $0) }
        var processes: [Int: ServeProcess] = [:]
        var all: [ServeProcess] = []
        defer { for process in all { process.killIfRunning() } }
        func start(_ id: Int) throws {
            var arguments = ["--role", "automatic", "--id", "\(id)", "--log-dir", dir.sub("\(id)"), "--listen", "\(addresses[id - 1])",
                             "--key-file", keyFile, "--heartbeat-interval-ms", "50", "--election-timeout-ms", "300",
                             "--log-level", "warning", "--stdin-appends", "async", "--witness-id", "3"]
            if id == 3 { arguments.append("--witness") }
            for peer in 1...3 where peer != id { arguments += ["--peer", "\(peer)=\(addresses[peer - 1])"] }
            let process = try ServeProcess(name: "node \(id)", arguments: arguments)
            all.append(process)
            processes[id] = process
            _ = try process.listeningAddress()
        }
        for id in 1...3 { try start(id) }
        func status(_ id: Int) async -> NodeStatus? { try? await NodeStatusClient.fetch(from: addresses[id - 1], clusterKey: testKey) }
        func primary(among ids: [Int]) async throws -> Int {
            var found = 0
            try await waitUntil("one primary that the others follow", timeout: .seconds(10)) {
                var statuses: [NodeStatus] = []
                for id in ids { if let s = await status(id) { statuses.append(s) } }
                guard statuses.count == ids.count, let p = statuses.first(where: { $0.role == "primary" }) else { return false }
                found = Int(p.node)
                return statuses.allSatisfy { $0.node == p.node || $0.primary == p.node }
            }
            return found
        }
        func append(_ record: String, through id: Int) throws -> Bool {
            processes[id]!.send(record)
            return try processes[id]!.waitForLine { $0.hasPrefix("ack ") || $0.hasPrefix("error") }.hasPrefix("ack ")
        }
        let old = try await primary(among: [1, 2, 3])
        try #require(old != 3, "node 3 is the witness")
        let standby = 3 - old
        for i in 0..<20 { #expect(try append("record \(i)", through: old)) }
        let end = try #require(await status(old)).nextOffset
        try await waitUntil("the standby to hold every record") { (await status(standby))?.nextOffset == end }
        processes[old]!.signal(SIGKILL)
        _ = processes[old]!.waitForExit(timeout: 10)
        processes[old] = nil
        let killedAt = ContinuousClock.now
        #expect(try await primary(among: [standby, 3]) == standby)
        #expect(try append("record 20", through: standby))
        print("witness pair failover: kill -9 to the standby acknowledging took \(ContinuousClock.now - killedAt)")
        try start(old)
        #expect(try await primary(among: [1, 2, 3]) == standby)
        try await waitUntil("the old primary to catch up") { (await status(old))?.nextOffset == end + 1 }
        for (_, process) in processes { process.signal(SIGTERM) }
        for (id, process) in processes { #expect(process.waitForExit()?.status == 0, "node \(id) did not stop cleanly") }
        var logs: [Int: [LogRecord]] = [:]
        for id in 1...3 {
            let log = try SegmentLog.open(directory: dir.sub("\(id)"))
            logs[id] = try allRecords(log)
            try await log.close()
        }
        #expect(logs[1] == logs[2] && logs[1]?.count == 21)
        #expect(logs[3]?.isEmpty == true)
    }
}
