import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// What the operator sees of a failover (issue 10): the promotion logged with its cause and the
/// times to detect and to promote, and metrics counting elections, failovers and step-downs.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct Review10OperatorTests {
    /// The value of the sample `name{node="id"}` in a Prometheus text page (nil: absent).
    func sample(_ page: String, _ name: String, node: Int) -> Double? {
        for line in page.split(separator: "\n") where line.hasPrefix(name + "{") && line.contains("node=\"\(node)\"") {
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { return value }
        }
        return nil
    }

    @Test func aFailoverIsLoggedWithItsTimesAndCounted() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ServeProcess.toolPath), "shiplog not built at \(ServeProcess.toolPath)")
        let dir = try TemporaryDirectory()
        let keyFile = dir.sub("key")
        try Data(testKey).write(to: URL(fileURLWithPath: keyFile))
        let ports = try await reserveLoopbackPorts(6)
        let addresses = ports.prefix(3).map { PeerAddress(host: "127.0.0.1", port: $0) }
        let metricsPorts = Array(ports.suffix(3))
        var processes: [Int: ServeProcess] = [:]
        var all: [ServeProcess] = []
        defer { for process in all { process.killIfRunning() } }
        func start(_ id: Int) throws {
            var arguments = ["--role", "automatic", "--id", "\(id)", "--log-dir", dir.sub("\(id)"), "--listen", "\(addresses[id - 1])",
                             "--key-file", keyFile, "--heartbeat-interval-ms", "50", "--election-timeout-ms", "300",
                             "--segment-bytes", "262144", "--log-level", "info", "--metrics-port", "\(metricsPorts[id - 1])"]
            for peer in 1...3 where peer != id { arguments += ["--peer", "\(peer)=\(addresses[peer - 1])"] }
            let process = try ServeProcess(name: "node \(id)", arguments: arguments)
            all.append(process)
            processes[id] = process
            _ = try process.listeningAddress()
        }
        for id in 1...3 { try start(id) }
        func primary() async throws -> Int {
            var found = 0
            try await waitUntil("one primary among the processes", timeout: .seconds(10)) {
                var statuses: [Int: NodeStatus] = [:]
                for id in processes.keys { statuses[id] = try? await NodeStatusClient.fetch(from: addresses[id - 1], clusterKey: testKey) }
                guard let (id, status) = statuses.first(where: { $0.value.role == "primary" }) else { return false }
                found = id
                return statuses.values.allSatisfy { $0.node == status.node || $0.primary == status.node }
            }
            return found
        }
        let old = try await primary()
        processes[old]!.signal(SIGKILL)
        _ = processes[old]!.waitForExit(timeout: 10)
        processes[old] = nil
        let next = try await primary()
        #expect(next != old)

        let page = try await httpGet(port: metricsPorts[next - 1], path: "/metrics")
        #expect((sample(page, "shiplog_failovers_total", node: next) ?? 0) >= 1, "\(page)")
        #expect((sample(page, "shiplog_elections_total", node: next) ?? 0) >= 1, "\(page)")
        #expect((sample(page, "shiplog_promotions_total", node: next) ?? 0) >= 1, "\(page)")
        // The promotion is logged with its cause and both times.
        let promoted = processes[next]!.stderr.split(separator: "\n").filter { $0.contains("promoted to primary") }
        #expect(promoted.contains { $0.contains("detection") && $0.contains("promotion") && !$0.contains("detection=none") },
                "\(processes[next]!.stderr)")

        // A switchover steps the primary down: counted there.
        let target = (1...3).first { $0 != old && $0 != next }!
        let status = try await NodeSwitchoverClient.request(NodeID(UInt64(target)), from: addresses[next - 1], clusterKey: testKey)
        #expect(status.primary == UInt64(target))
        let after = try await httpGet(port: metricsPorts[next - 1], path: "/metrics")
        #expect((sample(after, "shiplog_step_downs_total", node: next) ?? 0) >= 1, "\(after)")

        for (_, process) in processes { process.signal(SIGTERM) }
        for (id, process) in processes { #expect(process.waitForExit()?.status == 0, "node \(id) did not stop cleanly") }
    }
}
