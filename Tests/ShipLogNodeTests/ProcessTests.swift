import Foundation
import ShipLogNode
import ShipLogStorage
import Testing

/// A primary and two followers as `shiplog serve` processes on loopback: appends through the
/// primary's hidden stdin client, a follower killed with SIGKILL mid-stream and restarted
/// catches up record by record, and SIGTERM stops every node cleanly with exit status 0.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ProcessTests {
    /// Runs `shiplog ARGS` to its end (at most `timeout`), returning its status and output.
    func runTool(_ arguments: [String], timeout: TimeInterval = 30) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServeProcess.toolPath)
        process.arguments = arguments
        // The key only ever comes from --key-file here, whatever the test's own environment holds.
        process.environment = ProcessInfo.processInfo.environment.filter { $0.key != "SHIPLOG_CLUSTER_KEY" }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process.terminationStatus,
                String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test func followersAsProcessesCatchUpAfterKillNine() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ServeProcess.toolPath), "shiplog not built at \(ServeProcess.toolPath)")
        let dir = try TemporaryDirectory()
        let keyFile = dir.sub("key")
        try Data(testKey).write(to: URL(fileURLWithPath: keyFile))
        var processes: [ServeProcess] = []
        defer { for process in processes { process.killIfRunning() } }
        let common = ["--key-file", keyFile, "--heartbeat-interval-ms", "50", "--segment-bytes", "262144", "--log-level", "warning"]
        let primary = try ServeProcess(name: "primary", arguments: [
            "--id", "1", "--log-dir", dir.sub("1"), "--listen", "127.0.0.1:0", "--follower", "2", "--follower", "3",
            "--stdin-appends", "sync:1", "--metrics-port", "0"] + common)
        processes.append(primary)
        let primaryAddress = try primary.listeningAddress()
        func startFollower(_ id: Int) throws -> (ServeProcess, PeerAddress) {
            let follower = try ServeProcess(name: "follower \(id)", arguments: [
                "--id", "\(id)", "--role", "follower", "--primary", "1", "--peer", "1=\(primaryAddress)",
                "--log-dir", dir.sub("\(id)"), "--listen", "127.0.0.1:0"] + common)
            processes.append(follower)
            return (follower, try follower.listeningAddress())
        }
        var (follower2, address2) = try startFollower(2)
        // Follower 3 takes its settings from a --config file instead of flags.
        let configFile = dir.sub("node3.json")
        let settings = #"{"id": 3, "role": "follower", "primary": 1, "peers": {"1": "\#(primaryAddress)"}, "#
            + #""logDirectory": "\#(dir.sub("3"))", "listen": "127.0.0.1:0", "keyFile": "\#(keyFile)", "#
            + #""heartbeatIntervalMs": 50, "segmentBytes": 262144}"#
        try Data(settings.utf8).write(to: URL(fileURLWithPath: configFile))
        let follower3 = try ServeProcess(name: "follower 3", arguments: ["--config", configFile, "--log-level", "warning"])
        processes.append(follower3)
        let address3 = try follower3.listeningAddress()

        /// Appends one record per index, then reads the acknowledgements in order.
        func appendAndWait(_ range: Range<Int>, whenAcknowledged: (_ index: Int, _ end: UInt64) async throws -> Void = { _, _ in }) async throws {
            for i in range { primary.send("record \(i) " + String(repeating: "x", count: i % 300)) }
            for k in range.indices {
                let line = try primary.waitForLine { $0.hasPrefix("ack ") || $0.hasPrefix("error") }
                let parts = line.split(separator: " ")
                #expect(parts.count == 3 && parts[0] == "ack", "append \(k): \(line)")
                try await whenAcknowledged(k - range.lowerBound, parts.count == 3 ? UInt64(parts[2]) ?? 0 : 0)
            }
        }
        // sync:1 at ack level written: once acknowledged, at least one follower's own log has it.
        try await appendAndWait(0..<100) { index, end in
            guard index % 10 == 0 else { return }
            var holding = 0
            for address in [address2, address3] {
                if try await NodeStatusClient.fetch(from: address, clusterKey: testKey).nextOffset >= end { holding += 1 }
            }
            #expect(holding >= 1, "offsets below \(end) acknowledged, but no follower's log holds them")
        }
        // SIGKILL follower 2 while appends stream; follower 3 keeps acknowledging.
        try await appendAndWait(100..<400) { index, _ in
            if index == 50 { follower2.signal(SIGKILL) }
        }
        #expect(follower2.waitForExit(timeout: 10)?.signaled == true)
        (follower2, address2) = try startFollower(2)
        try await appendAndWait(400..<450)

        for address in [address2, address3] {
            try await waitUntil("the follower at \(address) to catch up", timeout: .seconds(30)) {
                try await NodeStatusClient.fetch(from: address, clusterKey: testKey).nextOffset == 450
            }
        }
        let status = try runTool(["status", "\(primaryAddress)", "--json", "--key-file", keyFile])
        #expect(status.status == 0, "\(status.errors)")
        let document = try NodeStatus.decode(json: Array(status.output.utf8))
        #expect(document.role == "primary" && document.nextOffset == 450 && document.followers.count == 2)
        let text = try runTool(["status", "\(address2)", "--key-file", keyFile])
        #expect(text.status == 0 && text.output.contains("node 2: follower of node 1"), "\(text.output) \(text.errors)")
        let refused = try runTool(["status", "\(primaryAddress)"])  // no key anywhere: a usage error
        #expect(refused.status == 2 && refused.errors.contains("SHIPLOG_CLUSTER_KEY"), "\(refused.errors)")

        let metricsLine = try primary.waitForLine { $0.hasPrefix("metrics on ") }
        let metricsPort = try #require(PeerAddress(parsing: String(metricsLine.dropFirst("metrics on ".count)))?.port)
        let metrics = try await httpGet(port: metricsPort, path: "/metrics")
        #expect(metrics.hasPrefix("HTTP/1.1 200"), "\(metrics.prefix(200))")
        for name in ["shiplog_replication_acknowledgements_total", "shiplog_replication_bytes_shipped_total",
                     "shiplog_follower_lag_records", "shiplog_follower_lag_milliseconds"] {
            #expect(metrics.contains(name), "\(name) missing from the metrics")
        }

        for process in [primary, follower2, follower3] { process.signal(SIGTERM) }
        for process in [primary, follower2, follower3] {
            let exit = process.waitForExit(timeout: 20)
            #expect(exit?.status == 0 && exit?.signaled == false, "\(process.name) after SIGTERM: \(String(describing: exit)); \(process.stderr.suffix(2000))")
        }

        let expected = try Self.records(dir.sub("1"))
        #expect(expected.count == 450)
        for id in [2, 3] {
            #expect(try Self.records(dir.sub("\(id)")) == expected, "follower \(id)'s records differ from the primary's")
            let verify = try runTool(["verify", dir.sub("\(id)"), "--quiet"])
            #expect(verify.status == 0, "verify of follower \(id): \(verify.output) \(verify.errors)")
        }
    }

    static func records(_ directory: String) throws -> [LogRecord] {
        let log = try SegmentLog.open(directory: directory)
        defer { try? log.close() }
        return try allRecords(log)
    }
}
