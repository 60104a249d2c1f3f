import ArgumentParser
import Foundation

/// shiplog-bench: named workloads in the spirit of LevelDB's db_bench. Every figure is printed
/// beside a baseline measured in the same run: on a shared machine the ratio is the figure.
@main
struct ShipLogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shiplog-bench",
        abstract: "Benchmarks the ShipLog segment log against raw I/O, LZ4 alone, SQLite and LevelDB.",
        // Without it the usage line would end in <subcommand>: the one subcommand is internal.
        usage: "shiplog-bench [--workloads <workloads>] [--json] [<options>]",
        discussion: """
            Workloads: \(Workloads.all.joined(separator: ", ")). The quick suite (default) is \
            \(Workloads.quick.joined(separator: ",")); `big` appends 10 GiB and is run only when named.
            `network-baselines` names the group \(NetworkBaselines.workloads.joined(separator: ",")).
            Example: shiplog-bench --workloads append-128,replay --json
            """,
        subcommands: [EchoServerCommand.self, ReplicaFloorCommand.self, NIOEchoServerCommand.self, CatchUpFloorReceiverCommand.self])

    @Option(help: "Comma-separated workloads to run (default: the quick suite).")
    var workloads: String = Workloads.quick.joined(separator: ",")

    @Flag(help: "Print one JSON object per line and figure instead of a table.")
    var json = false

    @Option(help: "Directory for the logs (default: a fresh temporary directory, removed afterwards).")
    var dir: String?

    @Flag(help: "Keep the directory and every log in it afterwards; with --dir, the tool workload reuses a log kept earlier.")
    var keep = false

    @Option(help: "Take records from this file of fixed-size records instead of generating them.")
    var payload: String?

    @Option(help: "Record size in bytes for --payload (and for the append workloads' records).")
    var recordBytes: Int?

    @Option(help: "Records per append workload.")
    var records: Int = 1_000_000

    @Option(help: "Bytes loopback-tcp-stream sends (default: 256 MiB in the quick suite, 1 GiB when the workload is named).")
    var streamBytes: Int?

    @Option(help: "Kills per peer and setting in failover-peers and per setting in failover (default in the quick suite: 3 and 5; 20 when the workload is named).")
    var failoverRounds: Int?

    @Option(help: "The mean time between failures that failover's availability figures assume, in days.")
    var mtbfDays: Double = 30

    @Option(help: "Failover detection settings, heartbeat/timeout in ms, comma-separated (default: 50/300,100/1000).")
    var failoverSettings: String = "50/300,100/1000"

    /// The workloads to run, with group names expanded.
    private var workloadNames: [String] {
        workloads.split(separator: ",").flatMap { Workloads.groups[String($0)] ?? [String($0)] }
    }

    func validate() throws {
        if payload != nil && recordBytes == nil { throw ValidationError("--payload needs --record-bytes") }
        if let recordBytes, recordBytes < 2 { throw ValidationError("--record-bytes must be at least 2") }
        if let streamBytes, streamBytes < 1 { throw ValidationError("--stream-bytes must be positive") }
        if let failoverRounds, failoverRounds < 1 { throw ValidationError("--failover-rounds must be positive") }
        if !(mtbfDays > 0) { throw ValidationError("--mtbf-days must be positive") }
        if failoverSettings.split(separator: ",").contains(where: { FailoverPeers.Settings(parsing: $0) == nil }) {
            throw ValidationError("--failover-settings takes heartbeat/timeout pairs in ms with heartbeat < timeout, e.g. 50/300,100/1000")
        }
        for name in workloadNames where !Workloads.all.contains(name) {
            throw ValidationError("unknown workload '\(name)'; known: \(Workloads.all.joined(separator: ","))")
        }
    }

    func run() throws {
        let directory = dir ?? NSTemporaryDirectory() + "shiplog-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if !keep && dir == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let runner = Workloads(directory: directory, reporter: Reporter(json: json), recordCount: records,
                               payloadFile: payload, payloadRecordBytes: recordBytes, keepLogs: keep)
        let quickSuite = workloads == Workloads.quick.joined(separator: ",")
        runner.network.streamBytes = streamBytes ?? (quickSuite ? NetworkBaselines.quickStreamBytes : NetworkBaselines.fullStreamBytes)
        runner.failoverPeers.rounds = failoverRounds ?? (quickSuite ? FailoverPeers.quickRounds : FailoverPeers.fullRounds)
        runner.failoverPeers.keepDirectories = keep
        runner.failoverPeers.settings = failoverSettings.split(separator: ",").compactMap { FailoverPeers.Settings(parsing: $0) }
        runner.failover.rounds = failoverRounds ?? (quickSuite ? FailoverWorkload.quickRounds : FailoverWorkload.fullRounds)
        runner.failover.settings = runner.failoverPeers.settings
        runner.failover.mtbfDays = mtbfDays
        runner.failover.keepDirectories = keep
        for name in workloadNames { try runner.run(name) }
    }
}
