import Foundation
import Histogram

/// The "network baselines" group of the quick suite: what issue 9's replication figures are
/// compared against, measured in the same run. Each workload reports its figures and keeps
/// them under the baseline names the replication workloads cite (`value(_:)`):
///
/// | baseline name | workload / figure |
/// |---|---|
/// | `loopback-rtt-p50`, `loopback-rtt-p99` | `loopback-rtt` / `p50_latency_us`, `p99_latency_us` (1 KiB request, 32-byte reply) |
/// | `loopback-tcp-stream` | `loopback-tcp-stream` / `MB_per_s` |
/// | `raw-fdatasync-p50-plus-rtt` | `raw-fdatasync-p50-plus-rtt` / `p50_latency_us` |
/// | `redis-set-wait-p50`, `redis-set-wait-p99` | `redis-set-wait` / `p50_latency_us`, `p99_latency_us` |
/// | `redis-set-wait-16-clients` | `redis-set-wait` / `acked_writes_per_s_16_clients` |
/// | `redis-set-wait-fsync-p50` | `redis-set-wait` / `p50_latency_fsync_us` |
final class NetworkBaselines {
    static let workloads = ["loopback-rtt", "loopback-tcp-stream", "raw-fdatasync-p50-plus-rtt", "redis-set-wait"]
    static let quickStreamBytes = 256 << 20
    static let fullStreamBytes = 1 << 30
    /// The round trip the replication figures are compared against: a 1 KiB record out, an
    /// acknowledgement back (an ack frame is 29 bytes: a 5-byte header and three u64 offsets).
    static let requestBytes = 1024
    static let replyBytes = 32

    let directory: String
    let reporter: Reporter
    /// Bytes `loopback-tcp-stream` sends: `quickStreamBytes` in the quick suite, `fullStreamBytes`
    /// when the workload is named (ShipLogBench sets it; `--stream-bytes` overrides).
    var streamBytes = NetworkBaselines.fullStreamBytes
    /// Round trips per measured series, and acknowledged writes of the one-client Redis series.
    var roundTrips = 20_000
    var redisWrites = 10_000
    /// raw pwrite + fdatasync of 1 KiB, p50 µs, and where it was measured in this run.
    private var rawFdatasync: (p50: Double, source: String)?
    private var values: [String: Double] = [:]

    init(directory: String, reporter: Reporter) {
        self.directory = directory
        self.reporter = reporter
    }

    /// A baseline measured earlier in this run, by the name in the table above; nil if its
    /// workload has not run (or Redis was skipped).
    func value(_ name: String) -> Double? { values[name] }

    /// `append-fsync` hands over its raw fdatasync baseline, so the sum uses the same run's figure.
    func recordRawFdatasyncP50(_ microseconds: Double) {
        rawFdatasync = (microseconds, "append-fsync's raw-fdatasync-1KiB-p50")
    }

    func run(_ name: String) throws {
        switch name {
        case "loopback-rtt": try loopbackRTT()
        case "loopback-tcp-stream": try loopbackStream()
        case "raw-fdatasync-p50-plus-rtt": try fdatasyncPlusRTT()
        case "redis-set-wait": try redisSetWait()
        default: throw BenchError.usage("unknown network baseline \(name)")
        }
    }

    private func report(_ workload: String, _ figure: String, _ value: Double?, _ unit: String,
                        baseline: String? = nil, note: String? = nil) {
        reporter.report(Figure(workload: workload, figure: figure, value: value, unit: unit, baseline: baseline,
                               baselineValue: baseline.flatMap { values[$0] }, note: note))
    }

    // MARK: loopback

    func loopbackRTT() throws {
        let (server, port) = try LoopbackBaselines.startEchoServer()
        defer { server.stop() }
        let ack = try LoopbackBaselines.roundTrips(port: port, requestBytes: Self.requestBytes, replyBytes: Self.replyBytes, count: roundTrips)
        let both = try LoopbackBaselines.roundTrips(port: port, requestBytes: Self.requestBytes, replyBytes: Self.requestBytes, count: roundTrips)
        values["loopback-rtt-p50"] = ack.p50Microseconds
        values["loopback-rtt-p99"] = ack.p99Microseconds
        let how = "2 processes, 127.0.0.1, TCP_NODELAY, one connection"
        let note = "request \(ack.requestBytes) B, reply \(ack.replyBytes) B, \(ack.count) round trips, \(how)"
        report("loopback-rtt", "p50_latency_us", ack.p50Microseconds, "us", note: note)
        report("loopback-rtt", "p99_latency_us", ack.p99Microseconds, "us", note: note)
        let bothNote = "request and reply \(both.requestBytes) B, \(both.count) round trips, \(how)"
        report("loopback-rtt", "p50_latency_us_1KiB_both_ways", both.p50Microseconds, "us", baseline: "loopback-rtt-p50", note: bothNote)
        report("loopback-rtt", "p99_latency_us_1KiB_both_ways", both.p99Microseconds, "us", baseline: "loopback-rtt-p99", note: bothNote)
    }

    /// Median of three streams of `streamBytes`, each on a fresh connection to one server.
    func loopbackStream() throws {
        let (server, port) = try LoopbackBaselines.startEchoServer()
        defer { server.stop() }
        let (selfBefore, serverBefore) = (ResourceUsage.now().cpuSeconds, server.cpuSeconds)
        let rates = try (0..<3).map { _ in Double(streamBytes) / (try LoopbackBaselines.stream(port: port, bytes: streamBytes)) / 1e6 }
        let median = rates.sorted()[1]
        values["loopback-tcp-stream"] = median
        if let serverBefore, let serverAfter = server.cpuSeconds {
            let cpu = (ResourceUsage.now().cpuSeconds - selfBefore + serverAfter - serverBefore) / (3 * Double(streamBytes) / Double(1 << 30))
            values["loopback-tcp-stream-cpu-s-per-GiB"] = cpu
            report("loopback-tcp-stream", "cpu_s_per_GiB", cpu, "s",
                   note: "CPU seconds (user + system) of both processes per GiB streamed, over the three streams")
        }
        let size = streamBytes % (1 << 20) == 0 ? "\(streamBytes >> 20) MiB" : "\(streamBytes) bytes"
        let quick = streamBytes == Self.quickStreamBytes ? " (quick suite: 1 GiB when the workload is named)" : ""
        report("loopback-tcp-stream", "MB_per_s", median, "MB/s",
               note: "\(size)\(quick) through one connection in 1 MiB writes, 2 processes, median of 3; runs: "
                   + rates.map { String(format: "%.0f", $0) }.joined(separator: ", "))
    }

    // MARK: raw-fdatasync-p50-plus-rtt

    /// What one synchronous replicated append at ack level `durable` cannot beat: the local
    /// fdatasync and one round trip, taken one after the other.
    func fdatasyncPlusRTT() throws {
        if values["loopback-rtt-p50"] == nil { try loopbackRTT() }
        if rawFdatasync == nil {
            Glibc.sync()
            let histogram = try Baselines.rawFdatasync(recordBytes: 1024, count: 2000, path: directory + "/net-fdatasync.dat")
            rawFdatasync = (Double(histogram.valueAtPercentile(50)), "raw pwrite+fdatasync of 1 KiB (p50 of 2000)")
        }
        let (fdatasyncP50, source) = rawFdatasync!
        let rtt = values["loopback-rtt-p50"]!
        let sum = fdatasyncP50 + rtt
        values["raw-fdatasync-p50-plus-rtt"] = sum
        report("raw-fdatasync-p50-plus-rtt", "p50_latency_us", sum, "us",
               note: "\(source): \(Int(fdatasyncP50)) us + loopback-rtt-p50: " + String(format: "%.1f us, this run", rtt))
    }

    // MARK: redis-set-wait

    func redisSetWait() throws {
        let figures = [("p50_latency_us", "us"), ("p99_latency_us", "us"), ("acked_writes_per_s_16_clients", "writes/s"),
                       ("p50_latency_fsync_us", "us")]
        guard let server = RedisPair.findServer() else {
            for (figure, unit) in figures {
                report("redis-set-wait", figure, nil, unit, note: "skipped: redis-server not installed")
            }
            return
        }
        if values["loopback-rtt-p50"] == nil { try loopbackRTT() }
        let root = directory + "/redis-" + UUID().uuidString
        let how = "SET of a 1 KiB value + WAIT 1 0 pipelined, primary and 1 replica on 127.0.0.1"

        var pair: RedisPair? = try RedisPair(server: server, root: root + "-memory", fsyncAlways: false)
        let single = try RedisBaselines.oneClient(port: pair!.primaryPort, count: redisWrites)
        let rate = try RedisBaselines.manyClients(port: pair!.primaryPort, clients: 16, perClient: 1000)
        pair!.stop()
        pair = nil
        let p50 = Double(single.valueAtPercentile(50)) / 1000
        let p99 = Double(single.valueAtPercentile(99)) / 1000
        (values["redis-set-wait-p50"], values["redis-set-wait-p99"], values["redis-set-wait-16-clients"]) = (p50, p99, rate)
        let noAOF = "\(how), no persistence (--save '', appendonly no)"
        report("redis-set-wait", "p50_latency_us", p50, "us", baseline: "loopback-rtt-p50", note: "\(single.totalCount) writes, 1 client, \(noAOF)")
        report("redis-set-wait", "p99_latency_us", p99, "us", baseline: "loopback-rtt-p99", note: "\(single.totalCount) writes, 1 client, \(noAOF)")
        report("redis-set-wait", "acked_writes_per_s_16_clients", rate, "writes/s",
               note: "16 connections, a thread each, 1000 writes each, \(noAOF)")

        if values["raw-fdatasync-p50-plus-rtt"] == nil { try fdatasyncPlusRTT() }
        Glibc.sync()
        let fsyncPair = try RedisPair(server: server, root: root + "-fsync", fsyncAlways: true)
        defer { fsyncPair.stop() }
        let synced = try RedisBaselines.oneClient(port: fsyncPair.primaryPort, count: 2000, warmUp: 100)
        let fsyncP50 = Double(synced.valueAtPercentile(50)) / 1000
        values["redis-set-wait-fsync-p50"] = fsyncP50
        report("redis-set-wait", "p50_latency_fsync_us", fsyncP50, "us", baseline: "raw-fdatasync-p50-plus-rtt",
               note: "\(synced.totalCount) writes, 1 client, \(how), appendonly yes + appendfsync always on both")
    }
}
