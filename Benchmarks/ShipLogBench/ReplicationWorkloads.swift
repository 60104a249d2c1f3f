import Foundation
import Histogram
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization

/// Issue 9's replication workloads: `replicate-async`, `replicate-sync` and `catch-up`, each on
/// a `ReplicationCluster` (an embedded primary `Node`, a `shiplog serve` follower process) of
/// its own, beside the network baselines of the same run (measured first if they have not run).
final class ReplicationWorkloads {
    static let workloads = ["replication-floor", "nio-echo-rtt", "replicate-async", "replicate-sync", "catch-up"]
    static let recordBytes = 1024
    static let writers = 16

    let directory: String
    let reporter: Reporter
    let network: NetworkBaselines
    /// Timed sync appends from one writer (after `warmUp` untimed ones).
    var latencyAppends = 10_000
    var fsyncAppends = 2_000
    var warmUp = 1_000
    /// Appends per writer in the 16-writer series.
    var perWriter = 1_000
    var values: [String: Double] = [:]
    let records: [[UInt8]]

    init(directory: String, reporter: Reporter, network: NetworkBaselines) {
        self.directory = directory
        self.reporter = reporter
        self.network = network
        records = Payload.generate(count: 1024, recordBytes: Self.recordBytes, seed: 9)
        // For profiling one sync append (perf over a longer series): the figures' names stay.
        if let appends = ProcessInfo.processInfo.environment["SHIPLOG_BENCH_SYNC_APPENDS"].flatMap(Int.init), appends > 0 {
            latencyAppends = appends
        }
        // The same for the 16-writer series (appends per writer).
        if let appends = ProcessInfo.processInfo.environment["SHIPLOG_BENCH_SYNC_WRITER_APPENDS"].flatMap(Int.init), appends > 0 {
            perWriter = appends
        }
    }

    func run(_ name: String) throws {
        switch name {
        case "replication-floor": try floor()
        case "nio-echo-rtt": try nioEcho()
        case "replicate-async": try replicateAsync()
        case "replicate-sync": try replicateSync()
        case "catch-up": try catchUp()
        default: throw BenchError.usage("unknown replication workload \(name)")
        }
    }

    /// A baseline by name: this group's own (`replicate-async-16-writers`) or the network group's,
    /// which is measured now if its workload has not run in this run.
    private func baseline(_ name: String) throws -> Double? {
        if let value = values[name] { return value }
        if let value = network.value(name) { return value }
        let workload: String = switch name {
        case "loopback-rtt-p50", "loopback-rtt-p99": "loopback-rtt"
        case "loopback-tcp-stream": "loopback-tcp-stream"
        case "raw-fdatasync-p50-plus-rtt": "raw-fdatasync-p50-plus-rtt"
        default: "redis-set-wait"
        }
        if name == "replicate-async-16-writers" {
            try replicateAsync()
            return values[name]
        }
        if name.hasPrefix("replication-floor") {
            try floor()
            return values[name]
        }
        if name.hasPrefix("nio-replication-floor") {
            try nioEcho()
            return values[name]
        }
        try network.run(workload)
        return network.value(name)
    }

    func report(_ workload: String, _ figure: String, _ value: Double, _ unit: String,
                        baseline: String? = nil, note: String? = nil) throws {
        let baselineValue = try baseline.flatMap { try self.baseline($0) }
        reporter.report(Figure(workload: workload, figure: figure, value: value, unit: unit, baseline: baseline,
                               baselineValue: baselineValue, note: note))
    }

    func clusterRoot(_ name: String) -> String { directory + "/\(name)-" + UUID().uuidString }

    // MARK: replicate-async

    func replicateAsync() throws {
        let cluster = try ReplicationCluster(root: clusterRoot("replicate-async"), ackLevel: .written, durability: .os)
        defer { cluster.stop() }
        let sampler = LagSampler(cluster: cluster)
        let rate = try writers(cluster.primary, mode: .async, sampler: sampler)
        // Wait for the follower to hold everything, so the next workload starts from a quiet pair.
        try cluster.waitUntil(timeout: .seconds(60), "the follower to catch up") { $0.lagRecords == 0 }
        values["replicate-async-16-writers"] = rate
        let how = "\(Self.writers) tasks × \(perWriter) appends of one \(Self.recordBytes) B record, mode async, "
            + "embedded primary + `shiplog serve` follower on 127.0.0.1, durability os"
        try report("replicate-async", "appends_per_s_16_writers", rate, "appends/s", note: how)
        let lag = sampler.histogram
        try report("replicate-async", "lag_ms_p99", Double(lag.valueAtPercentile(99)) / 1000, "ms",
                   note: "the primary's status every 1 ms while writing: \(lag.totalCount) samples, p50 "
                       + String(format: "%.2f ms, max %.2f ms", Double(lag.valueAtPercentile(50)) / 1000, Double(lag.max) / 1000))
    }

    // MARK: replicate-sync

    func replicateSync() throws {
        var latencies: Histogram<UInt64>
        var rate: Double
        do {
            let cluster = try ReplicationCluster(root: clusterRoot("replicate-sync"), ackLevel: .written, durability: .os)
            defer { cluster.stop() }
            let (latencyCPU, timed) = try cpuPerAppend(cluster) { try timedAppends(cluster.primary, count: latencyAppends, warmUp: warmUp) }
            latencies = timed
            let (writersCPU, writersRate) = try cpuPerAppend(cluster) { try writers(cluster.primary, mode: .sync(quorum: 1), sampler: nil) }
            rate = writersRate
            try reportCPUPerAppend(latencyCPU, appends: latencyAppends + warmUp, figure: "cpu_us_per_append",
                                   note: "the p50 series (1 task, warm-up included)")
            try reportCPUPerAppend(writersCPU, appends: Self.writers * (perWriter + Self.writerWarmUpAppends),
                                   figure: "cpu_us_per_append_16_writers", note: "the 16-writer series (warm-up included)")
            let onLoopRate = try writers(cluster.primary, mode: .sync(quorum: 1), sampler: nil, onNodeExecutor: true)
            try report("replicate-sync", "appends_per_s_16_writers_loop_executor", onLoopRate, "appends/s",
                       baseline: "redis-set-wait-16-clients",
                       note: "breakdown: the same 16 writers as tasks preferring node.appendExecutor (they run on the primary's "
                           + "event loop: no hop to it and back per append)")
            // Where the time goes: the same appends without waiting for the follower.
            let local = try timedAppends(cluster.primary, count: latencyAppends, warmUp: warmUp, mode: .async)
            try report("replicate-sync", "p50_latency_async_us", Double(local.valueAtPercentile(50)) / 1000, "us",
                       note: "breakdown: the same appends from 1 task in mode async (the local write and the hand-off to the event loop)")
            // The same appends from a task that prefers the node's event loop as its executor.
            let onLoop = try timedAppends(cluster.primary, count: latencyAppends, warmUp: warmUp, onNodeExecutor: true)
            let onLoopNote = "breakdown: the same sync appends from 1 task under withTaskExecutorPreference(node.appendExecutor) "
                + "(the task runs on the primary's event loop: no hop to it and back)"
            try report("replicate-sync", "p50_latency_loop_executor_us", Double(onLoop.valueAtPercentile(50)) / 1000, "us",
                       baseline: "loopback-rtt-p50", note: onLoopNote)
            try report("replicate-sync", "p99_latency_loop_executor_us", Double(onLoop.valueAtPercentile(99)) / 1000, "us",
                       baseline: "loopback-rtt-p99", note: onLoopNote)
            try report("replicate-sync", "p50_latency_loop_executor_us", Double(onLoop.valueAtPercentile(50)) / 1000, "us",
                       baseline: "nio-replication-floor-with-log-loop-executor-p50", note: onLoopNote)
        }
        do {
            let cluster = try ReplicationCluster(root: clusterRoot("replicate-sync-received"), ackLevel: .received, durability: .os)
            defer { cluster.stop() }
            let received = try timedAppends(cluster.primary, count: latencyAppends, warmUp: warmUp)
            try report("replicate-sync", "p50_latency_received_us", Double(received.valueAtPercentile(50)) / 1000, "us",
                       note: "breakdown: the same at ack level received (the follower acknowledges before writing)")
        }
        let how = "embedded primary + `shiplog serve` follower on 127.0.0.1, sync(quorum: 1), ack level written, durability os"
        let p50 = Double(latencies.valueAtPercentile(50)) / 1000
        let p99 = Double(latencies.valueAtPercentile(99)) / 1000
        let one = "\(latencies.totalCount) appends of one \(Self.recordBytes) B record from 1 task, \(how)"
        try report("replicate-sync", "p50_latency_us", p50, "us", baseline: "loopback-rtt-p50", note: one)
        try report("replicate-sync", "p50_latency_us", p50, "us", baseline: "redis-set-wait-p50", note: one)
        try report("replicate-sync", "p99_latency_us", p99, "us", baseline: "loopback-rtt-p99", note: one)
        try report("replicate-sync", "p99_latency_us", p99, "us", baseline: "redis-set-wait-p99", note: one)
        try report("replicate-sync", "p50_latency_us", p50, "us", baseline: "replication-floor-p50", note: one)
        try report("replicate-sync", "p50_latency_us", p50, "us", baseline: "nio-replication-floor-p50", note: one)
        try report("replicate-sync", "p50_latency_us", p50, "us", baseline: "nio-replication-floor-with-log-p50", note: one)
        let many = "\(Self.writers) tasks × \(perWriter) appends of one \(Self.recordBytes) B record, \(how)"
        try report("replicate-sync", "appends_per_s_16_writers", rate, "appends/s", baseline: "replicate-async-16-writers", note: many)
        try report("replicate-sync", "appends_per_s_16_writers", rate, "appends/s", baseline: "redis-set-wait-16-clients", note: many)
        try report("replicate-sync", "appends_per_s_16_writers", rate, "appends/s", baseline: "nio-replication-floor-16-writers", note: many)
        try report("replicate-sync", "appends_per_s_16_writers", rate, "appends/s", baseline: "nio-replication-floor-16-writers-with-log",
                   note: many)
        // The floor with the log against the targets' baselines: how far the targets are from
        // what SwiftNIO and this log allow together on this machine.
        if let floor = try baseline("nio-replication-floor-16-writers-with-log") {
            let floorNote = "the 16-writer floor with the log (nio-echo-rtt appends_per_s_16_writers_with_log), against the target's baseline"
            try report("replicate-sync", "floor_with_log_appends_per_s_16_writers", floor, "appends/s",
                       baseline: "replicate-async-16-writers", note: floorNote)
            // Against the Redis figure the target uses: redis-set-wait may have run twice (as
            // nio-echo-rtt's baseline, then as a listed workload), and nio-echo-rtt's own ratio
            // is against the first.
            try report("replicate-sync", "floor_with_log_appends_per_s_16_writers", floor, "appends/s",
                       baseline: "redis-set-wait-16-clients", note: floorNote)
        }
        if let floor = try baseline("nio-replication-floor-with-log-p50") {
            try report("replicate-sync", "floor_with_log_p50_latency_us", floor, "us", baseline: "loopback-rtt-p50",
                       note: "the p50 floor with the log (nio-echo-rtt p50_latency_with_log_us), against the target's baseline")
        }

        Glibc.sync()
        let synced: Histogram<UInt64>
        do {
            let cluster = try ReplicationCluster(root: clusterRoot("replicate-sync-fsync"), ackLevel: .durable, durability: .fsync)
            defer { cluster.stop() }
            synced = try timedAppends(cluster.primary, count: fsyncAppends, warmUp: 100)
        }
        let fsyncNote = "\(synced.totalCount) appends from 1 task, sync(quorum: 1), ack level durable, durability fsync on both"
        let fsyncP50 = Double(synced.valueAtPercentile(50)) / 1000
        try report("replicate-sync", "p50_latency_fsync_us", fsyncP50, "us", baseline: "raw-fdatasync-p50-plus-rtt", note: fsyncNote)
        try report("replicate-sync", "p50_latency_fsync_us", fsyncP50, "us", baseline: "redis-set-wait-fsync-p50", note: fsyncNote)
        try report("replicate-sync", "p50_latency_fsync_us", fsyncP50, "us", baseline: "replication-floor-fsync-p50", note: fsyncNote)
    }

    /// Latencies in ns of `count` sync(quorum: 1) appends of one record from one task.
    private func timedAppends(_ node: Node, count: Int, warmUp: Int, mode: ReplicationMode = .sync(quorum: 1),
                              onNodeExecutor: Bool = false) throws -> Histogram<UInt64> {
        let records = self.records
        if onNodeExecutor {
            let executor = try node.appendExecutor
            return try blocking {
                try await withTaskExecutorPreference(executor) {
                    try await Self.timedAppends(node, records: records, count: count, warmUp: warmUp, mode: mode)
                }
            }
        }
        return try blocking { try await Self.timedAppends(node, records: records, count: count, warmUp: warmUp, mode: mode) }
    }

    private static func timedAppends(_ node: Node, records: [[UInt8]], count: Int, warmUp: Int,
                                     mode: ReplicationMode) async throws -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        let deadline = monotonicNanoseconds() + 60_000_000_000
        for i in 0..<(warmUp + count) {
            let start = monotonicNanoseconds()
            try await node.append([records[i % records.count]], mode: mode)
            let end = monotonicNanoseconds()
            if i >= warmUp {
                histogram.record(end - start)
                if end > deadline { break }  // bounded on a very slow machine
            }
        }
        return histogram
    }

    /// Untimed appends per writer before the timed ones.
    static let writerWarmUpAppends = 50

    /// Appends/s of `writers` tasks each appending `perWriter` single records with `mode`
    /// (after `writerWarmUpAppends` untimed appends each), sampling the follower's lag meanwhile if asked.
    /// With `onNodeExecutor` the tasks prefer the node's event loop as their executor.
    private func writers(_ node: Node, mode: ReplicationMode, sampler: LagSampler?, onNodeExecutor: Bool = false) throws -> Double {
        let records = self.records
        let writers = Self.writers
        let perWriter = self.perWriter
        let executor: (any TaskExecutor)? = onNodeExecutor ? try node.appendExecutor : nil
        let run: @Sendable (Int) async throws -> Void = { count in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask(executorPreference: executor) {
                        for i in 0..<count { try await node.append([records[(writer * 61 + i) % records.count]], mode: mode) }
                    }
                }
                try await group.waitForAll()
            }
        }
        try blocking { try await run(Self.writerWarmUpAppends) }
        sampler?.start()
        let seconds = try measure { try blocking { try await run(perWriter) } }
        sampler?.stop()
        return Double(writers * perWriter) / seconds
    }

    // MARK: catch-up

    /// A follower as many stored bytes behind as `loopback-tcp-stream` sends in this run (1 GiB
    /// when named, 256 MiB in the quick suite): MB/s from its connecting until it has written all.
    func catchUp() throws {
        let target = network.streamBytes
        let primaryDirectory = clusterRoot("catch-up-primary")
        defer { try? FileManager.default.removeItem(atPath: primaryDirectory) }
        // Filled before the primary starts: 1 KiB records in batches of 64, as append-1k (LZ4).
        let log = try SegmentLog.open(directory: primaryDirectory, options: LogOptions())
        var next = 0
        while log.totalBytes < Int64(target) {
            let batch = (0..<64).map { records[(next + $0) % records.count] }
            next += 64
            _ = try log.append(batch, epoch: 1)
        }
        let storedBytes = log.totalBytes
        try log.close()

        // Then the floors, on the same files (cached as catch-up finds them). On a VM a page the
        // host took back costs a fault the first time it is touched again, ten times the copy
        // (Benchmarks/README.md, "Seventh pass"), so each measured step below starts right
        // after as many bytes were written and freed, and gets recycled pages, as a
        // long-running host's page cache does: the write floor twice (the second is the
        // floor), the sealed write floor, the receiver floor, then catch-up. Every file is
        // unlinked when written.
        let floorRoot = clusterRoot("catch-up-floor")
        try FileManager.default.createDirectory(atPath: floorRoot, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: floorRoot) }
        let writeFloorRates = try (0..<2).map { _ in
            Double(storedBytes) / (try CatchUpWriteFloor.write(bytes: storedBytes, copying: primaryDirectory,
                                                               into: floorRoot + "/write-floor")) / 1e6
        }
        let sealedWriteFloorRate = Double(storedBytes) / (try CatchUpWriteFloor.write(
            bytes: storedBytes, copying: primaryDirectory, into: floorRoot + "/sealed-write-floor",
            sealEveryBytes: Int64(LogOptions().segmentBytes))) / 1e6
        let (receiver, port) = try CatchUpFloor.startReceiver(directory: floorRoot)
        let floorSeconds: Double
        let gibibytes = Double(storedBytes) / Double(1 << 30)
        do {
            defer { receiver.stop() }
            let (selfBefore, receiverBefore) = (ResourceUsage.now().cpuSeconds, receiver.cpuSeconds)
            floorSeconds = try CatchUpFloor.send(logDirectory: primaryDirectory, bytes: storedBytes, port: port)
            if let receiverBefore, let receiverAfter = receiver.cpuSeconds {
                values["catch-up-floor-cpu-s-per-GiB"] = (ResourceUsage.now().cpuSeconds - selfBefore + receiverAfter - receiverBefore) / gibibytes
            }
        }
        try? FileManager.default.removeItem(atPath: floorRoot)
        let floorRate = Double(storedBytes) / floorSeconds / 1e6
        values["catch-up-floor"] = floorRate

        let cluster = try ReplicationCluster(root: clusterRoot("catch-up"), ackLevel: .written, durability: .os,
                                             primaryDirectory: primaryDirectory, waitInSync: false)
        defer { cluster.stop() }
        let clock = ContinuousClock()
        try cluster.waitUntil(timeout: .seconds(30), "the follower to connect") { $0.connected }
        let start = clock.now
        let (primaryBefore, followerBefore) = (ResourceUsage.now().cpuSeconds, cluster.follower.cpuSeconds)
        // Each poll is a task's hop onto the primary's loop and back; every 1 ms they took a
        // tenth of a CPU from the two catch-up runs on. So polls are rare while the follower is
        // far behind and every 1 ms near the end: a quarter of the time left at the rate so far.
        let firstWritten = try cluster.followerStatus().follower?.written ?? 0
        let nextPoll = { (follower: NodeStatus.Follower?) -> Duration in
            guard let follower, follower.written > firstWritten else { return .milliseconds(1) }
            let elapsed = clock.now - start
            let left = elapsed * (Double(follower.lagRecords) / Double(follower.written - firstWritten))
            return min(.milliseconds(20), left / 4)
        }
        try cluster.waitUntil(timeout: .seconds(300), "the follower to catch up", nextPoll: nextPoll) { $0.lagRecords == 0 && $0.written > 0 }
        let seconds = (clock.now - start) / .seconds(1)
        let (primaryCPU, followerCPU) = (ResourceUsage.now().cpuSeconds - primaryBefore,
                                         cluster.follower.cpuSeconds.flatMap { after in followerBefore.map { after - $0 } })
        let rate = Double(storedBytes) / seconds / 1e6
        let size = target % (1 << 20) == 0 ? "\(target >> 20) MiB" : "\(target) bytes"
        let quick = target == NetworkBaselines.quickStreamBytes ? " (quick suite: 1 GiB when the workload is named)" : ""
        try report("catch-up", "MB_per_s", rate, "MB/s", baseline: "loopback-tcp-stream",
                   note: "\(storedBytes) stored bytes (\(size)\(quick), 1 KiB records in batches of 64, LZ4), "
                       + "from the follower's connecting until it has written all, `shiplog serve` follower, durability os")
        try report("catch-up", "floor_MB_per_s", floorRate, "MB/s", baseline: "loopback-tcp-stream",
                   note: "the same \(storedBytes) bytes of the primary's segment files, pread and sent by one blocking thread, "
                       + "recv'd and pwritten by another process (CatchUpFloor): no framing, no CRC, no event loop")
        try report("catch-up", "MB_per_s_vs_floor", rate, "MB/s", baseline: "catch-up-floor",
                   note: "catch-up's MB_per_s against the floor of the same run")
        try report("catch-up", "write_floor_MB_per_s", writeFloorRates[1], "MB/s", baseline: "loopback-tcp-stream",
                   note: "the follower's file write alone: the same number of bytes pwritten in 1 MiB writes into a new file "
                       + "by one thread, nothing else (CatchUpWriteFloor), the second of two in a row (recycled pages); runs: "
                       + writeFloorRates.map { String(format: "%.0f", $0) }.joined(separator: ", "))
        try report("catch-up", "sealed_write_floor_MB_per_s", sealedWriteFloorRate, "MB/s", baseline: "loopback-tcp-stream",
                   note: "the write floor with each \(LogOptions().segmentBytes >> 20) MiB made durable by fdatasync, as a roll seals "
                       + "a segment, and write-back started every \(LogOptions().writebackBytes >> 20) MiB as the log does: "
                       + "the disk's part, which every sealed segment of the follower's log waits for")
        try reportCatchUpCPU(primary: primaryCPU / gibibytes, follower: followerCPU.map { $0 / gibibytes })
    }
}

/// Samples the follower's lag (ms, as the primary's status reports it) every 1 ms on a thread of
/// its own while the writers run; the histogram holds microseconds.
final class LagSampler: @unchecked Sendable {
    private let cluster: ReplicationCluster
    private let running = Atomic<Bool>(false)
    private let samples = Mutex(Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three))
    private let finished = DispatchSemaphore(value: 0)

    init(cluster: ReplicationCluster) { self.cluster = cluster }

    func start() {
        running.store(true, ordering: .sequentiallyConsistent)
        let thread = Thread { [self] in
            while running.load(ordering: .sequentiallyConsistent) {
                if let follower = try? cluster.followerStatus().follower {
                    samples.withLock { $0.record(UInt64(max(0, follower.lagMilliseconds * 1000))) }
                }
                usleep(1000)
            }
            finished.signal()
        }
        thread.start()
    }

    func stop() {
        running.store(false, ordering: .sequentiallyConsistent)
        finished.wait()
    }

    var histogram: Histogram<UInt64> { samples.withLock { $0 } }
}
