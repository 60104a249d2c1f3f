import Foundation
import Histogram
import ShipLogStorage

/// The named workloads. Each reports its figures beside baselines measured in the same run.
final class Workloads {
    let directory: String
    let reporter: Reporter
    let recordCount: Int
    let payloadFile: String?
    let payloadRecordBytes: Int?
    let batchRecords = 64
    /// With `--keep`, the large logs (tool, open, big) stay on disk for inspection too.
    let keepLogs: Bool
    var appendFsyncRate: Double?
    var appendedLogs: [String: [[[UInt8]]]] = [:]
    /// The network baselines group (issue 9), and the baselines it measured for later workloads.
    let network: NetworkBaselines
    /// The replication workloads (issue 9), after the network baselines they are compared with.
    let replication: ReplicationWorkloads
    /// Issue 10's failover peers (Redis Sentinel, etcd), the `failover` workload's baselines.
    let failoverPeers: FailoverPeers
    /// Issue 10's `failover` workload, compared with `failoverPeers`' figures of the same run.
    let failover: FailoverWorkload

    init(directory: String, reporter: Reporter, recordCount: Int, payloadFile: String?, payloadRecordBytes: Int?, keepLogs: Bool) {
        self.directory = directory
        self.keepLogs = keepLogs
        self.reporter = reporter
        self.recordCount = recordCount
        self.payloadFile = payloadFile
        self.payloadRecordBytes = payloadRecordBytes
        network = NetworkBaselines(directory: directory, reporter: reporter)
        replication = ReplicationWorkloads(directory: directory, reporter: reporter, network: network)
        failoverPeers = FailoverPeers(directory: directory, reporter: reporter)
        failover = FailoverWorkload(directory: directory, reporter: reporter, peers: failoverPeers)
    }

    static let quick = ["append-128", "append-1k", "append-fsync", "append-fsync-8", "append-os-8", "append-async-8", "replay", "open", "tool"]
        + NetworkBaselines.workloads + ReplicationWorkloads.workloads + FailoverPeers.workloads + FailoverWorkload.workloads
    static let all = quick + ["big"]
    /// Names that stand for several workloads in `--workloads`.
    static let groups = ["network-baselines": NetworkBaselines.workloads, "replication": ReplicationWorkloads.workloads]

    func run(_ name: String) throws {
        switch name {
        case "append-128": try append(name: name, recordBytes: payloadRecordBytes ?? 128)
        case "append-1k": try append(name: name, recordBytes: payloadRecordBytes ?? 1024)
        case "append-fsync": try appendFsync()
        case "append-fsync-8": try appendFsync8()
        case "append-os-8": try appendOs8()
        case "append-async-8": try appendAsync8()
        case "replay": try replay()
        case "open": try openTimes(name: "open", logBytes: 1 << 30)
        case "big": try big()
        case "tool": try tool()
        case _ where NetworkBaselines.workloads.contains(name): try network.run(name)
        case _ where ReplicationWorkloads.workloads.contains(name): try replication.run(name)
        case _ where FailoverPeers.workloads.contains(name): try failoverPeers.run(name)
        case _ where FailoverWorkload.workloads.contains(name): try failover.run(name)
        default: throw BenchError.usage("unknown workload \(name); known: \(Self.all.joined(separator: ","))")
        }
    }

    func records(bytes: Int, count: Int) throws -> [[UInt8]] {
        if let payloadFile { return try Payload.load(file: payloadFile, recordBytes: bytes, count: count) }
        return Payload.generate(count: count, recordBytes: bytes)
    }

    func batches(_ records: [[UInt8]]) -> [[[UInt8]]] {
        stride(from: 0, to: records.count, by: batchRecords).map { Array(records[$0..<min($0 + batchRecords, records.count)]) }
    }

    func options(_ compression: CompressionCodec, _ durability: Durability) -> LogOptions {
        var options = LogOptions()
        options.compression = compression
        options.durability = durability
        return options
    }

    func logPath(_ name: String) -> String { directory + "/" + name }

    func removeLog(_ path: String) {
        if !keepLogs { try? FileManager.default.removeItem(atPath: path) }
    }

    func report(_ workload: String, _ figure: String, _ value: Double, _ unit: String,
                        _ baseline: String? = nil, _ baselineValue: Double? = nil) {
        reporter.report(Figure(workload: workload, figure: figure, value: value, unit: unit,
                               baseline: baseline, baselineValue: baselineValue))
    }

    // MARK: append-128, append-1k

    func append(name: String, recordBytes: Int) throws {
        let records = try records(bytes: recordBytes, count: recordCount)
        let batches = batches(records)
        let n = Double(records.count)
        let inputBytes = Double(records.reduce(0) { $0 + $1.count })

        let lz4Log = try SegmentLog.open(directory: logPath(name + "-lz4"), options: options(.lz4, .os))
        let lz4Seconds = try measure { for batch in batches { try lz4Log.append(batch) } }
        let storedBytes = Double(lz4Log.totalBytes)
        try lz4Log.close()
        let lz4OnlySeconds = Baselines.lz4CompressOnly(batches)
        report(name, "records_per_s_lz4", n / lz4Seconds, "records/s", "lz4-compress-only", n / lz4OnlySeconds)
        report(name, "compression_ratio", inputBytes / storedBytes, "x")

        let rawLog = try SegmentLog.open(directory: logPath(name + "-raw"), options: options(.none, .os))
        let rawSeconds = try measure { for batch in batches { try rawLog.append(batch) } }
        try rawLog.close()
        let writeSeconds = try Baselines.plainWrite(records, path: logPath(name + "-plain.dat"))
        let batchWriteSeconds = try Baselines.writePerBatch(batches, path: logPath(name + "-plain-batch.dat"))
        report(name, "records_per_s_raw", n / rawSeconds, "records/s", "plain-write-1MiB", n / writeSeconds)
        report(name, "records_per_s_raw", n / rawSeconds, "records/s", "plain-write-per-batch", n / batchWriteSeconds)
        report(name, "MB_per_s_raw", inputBytes / rawSeconds / 1e6, "MB/s", "plain-write-1MiB", inputBytes / writeSeconds / 1e6)

        // Durability.buffered buffers in the process and writes 1 MiB at a time, like the baseline.
        let bufferedLog = try SegmentLog.open(directory: logPath(name + "-none"), options: options(.none, .buffered))
        let bufferedSeconds = try measure { for batch in batches { try bufferedLog.append(batch) } }
        try bufferedLog.close()
        try? FileManager.default.removeItem(atPath: logPath(name + "-none"))
        report(name, "records_per_s_raw_none", n / bufferedSeconds, "records/s", "plain-write-1MiB", n / writeSeconds)

        let sqliteSeconds = try Baselines.sqlite(batches, path: logPath(name + "-sqlite.db"), synchronous: "NORMAL")
        report(name, "records_per_s_lz4", n / lz4Seconds, "records/s", "sqlite-wal-normal", n / sqliteSeconds)
        appendedLogs[name] = batches
        try? FileManager.default.removeItem(atPath: logPath(name + "-raw"))
    }

    // MARK: append-fsync, append-fsync-8

    /// Writes back every dirty page on the machine, so that an fsync workload does not pay
    /// for the gigabytes an earlier workload left in the page cache (and its baseline,
    /// measured after it, does not get a quieter disk).
    func settle() { Glibc.sync() }

    func appendFsync() throws {
        settle()
        let appends = 2000
        let record = try records(bytes: 1024, count: 1)[0]
        let log = try SegmentLog.open(directory: logPath("append-fsync"), options: options(.lz4, .fsync))
        var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        let total = try measure {
            for _ in 0..<appends {
                let seconds = try measure { try log.append(record) }
                histogram.record(UInt64(seconds * 1e6))
            }
        }
        try log.close()
        try? FileManager.default.removeItem(atPath: logPath("append-fsync"))
        settle()
        let raw = try Baselines.rawFdatasync(recordBytes: 1024, count: appends, path: logPath("fdatasync.dat"))
        report("append-fsync", "p50_latency", Double(histogram.valueAtPercentile(50)), "us", "raw-fdatasync-1KiB-p50", Double(raw.valueAtPercentile(50)))
        network.recordRawFdatasyncP50(Double(raw.valueAtPercentile(50)))
        report("append-fsync", "p99_latency", Double(histogram.valueAtPercentile(99)), "us", "raw-fdatasync-1KiB-p99", Double(raw.valueAtPercentile(99)))
        appendFsyncRate = Double(appends) / total
        settle()
        let sqliteSeconds = try Baselines.sqlite((0..<appends).map { _ in [record] }, path: logPath("fsync-sqlite.db"), synchronous: "FULL")
        report("append-fsync", "appends_per_s", appendFsyncRate!, "appends/s", "sqlite-wal-full-commits", Double(appends) / sqliteSeconds)
    }

    /// Besides appends/s: where the time goes per append, for ShipLog and for each baseline
    /// measured in the same run, from getrusage(RUSAGE_SELF) around each timed section
    /// (`context_switches_per_append`, voluntary plus involuntary; `cpu_us_per_append`, user
    /// plus system), and the fdatasync calls of ShipLog's group commit and of the minimal loop.
    func appendFsync8() throws {
        if appendFsyncRate == nil { try appendFsync() }
        let threads = 8
        let perThread = 1000
        let appends = threads * perThread
        let record = try records(bytes: 1024, count: 1)[0]
        settle()
        let log = try SegmentLog.open(directory: logPath("append-fsync-8"), options: options(.lz4, .fsync))
        let (seconds, usage) = measureUsage {
            onThreads(threads) { _ in
                for _ in 0..<perThread { try! log.append(record) }
            }
        }
        precondition(log.durableNextOffset == UInt64(appends))
        let syncs = log.groupCommitSyncs
        try log.close()
        try? FileManager.default.removeItem(atPath: logPath("append-fsync-8"))
        let rate = Double(appends) / seconds
        let perAppend = UsagePerAppend(usage, appends: appends)
        report("append-fsync-8", "appends_per_s", rate, "appends/s", "append-fsync-1-writer", appendFsyncRate)
        settle()
        let raw = try RawGroupCommit(path: logPath("raw-group-commit.dat")).run(threads: threads, appendsPerThread: perThread)
        unlink(logPath("raw-group-commit.dat"))
        let rawName = "raw-group-commit-8-thread"
        report("append-fsync-8", "appends_per_s", rate, "appends/s", rawName, raw.appendsPerSecond)
        report("append-fsync-8", "appends_per_fdatasync", Double(appends) / Double(syncs), "appends", rawName, raw.appendsPerSync)
        report("append-fsync-8", "fdatasync_calls", Double(syncs), "calls", rawName, Double(raw.syncs))
        reportUsage("append-fsync-8", perAppend, rawName, UsagePerAppend(raw.usage, appends: raw.appends))
        settle()
        let leveldb = try Baselines.levelDBSyncedPuts(threads: threads, putsPerThread: perThread, valueBytes: 1024, path: logPath("leveldb"))
        let levelDBName = "leveldb-8-thread-synced"
        report("append-fsync-8", "appends_per_s", rate, "appends/s", levelDBName, leveldb.putsPerSecond)
        reportUsage("append-fsync-8", perAppend, levelDBName, UsagePerAppend(leveldb.usage, appends: appends))
    }

    /// `context_switches_per_append` and `cpu_us_per_append` beside a baseline's.
    func reportUsage(_ workload: String, _ usage: UsagePerAppend, _ baseline: String, _ baselineUsage: UsagePerAppend) {
        report(workload, "context_switches_per_append", usage.contextSwitches, "switches", baseline, baselineUsage.contextSwitches)
        report(workload, "cpu_us_per_append", usage.cpuMicroseconds, "us", baseline, baselineUsage.cpuMicroseconds)
    }

    // MARK: append-os-8

    /// 8 threads appending 128-byte records one per batch at `Durability.os` (LZ4), beside the
    /// same number of appends from 1 thread. One-record batches make every append a trip
    /// through the log's mutex and a write(2), so this is where writers contend. The 1-thread
    /// and 8-thread measurements alternate three times each, each into a fresh log, and the
    /// medians are reported: single runs on a shared machine vary by a third. Context switches
    /// and CPU time per append (getrusage around each timed section) are medians of the same
    /// rounds, each figure's median taken on its own.
    func appendOs8() throws {
        let threads = 8
        let appends = 100_000
        let pool = try records(bytes: 128, count: 1024)
        var oneThread: [(rate: Double, usage: UsagePerAppend)] = []
        var eightThreads: [(rate: Double, usage: UsagePerAppend)] = []
        var floorOne: [(rate: Double, usage: UsagePerAppend)] = []
        var floorEight: [(rate: Double, usage: UsagePerAppend)] = []
        for _ in 0..<3 {
            oneThread.append(try appendOsRate(threads: 1, appends: appends, pool: pool))
            eightThreads.append(try appendOsRate(threads: threads, appends: appends, pool: pool))
            floorOne.append(try AppendOsFloor.run(threads: 1, appends: appends, pool: pool, path: logPath("append-os-floor-1")))
            floorEight.append(try AppendOsFloor.run(threads: threads, appends: appends, pool: pool, path: logPath("append-os-floor-8")))
        }
        func median(_ samples: [Double]) -> Double { samples.sorted()[samples.count / 2] }
        func medianUsage(_ rounds: [(rate: Double, usage: UsagePerAppend)]) -> UsagePerAppend {
            UsagePerAppend(contextSwitches: median(rounds.map(\.usage.contextSwitches)),
                           cpuMicroseconds: median(rounds.map(\.usage.cpuMicroseconds)))
        }
        let baseline = "append-os-1-thread"
        report("append-os-8", "appends_per_s", median(eightThreads.map(\.rate)), "appends/s", baseline, median(oneThread.map(\.rate)))
        reportUsage("append-os-8", medianUsage(eightThreads), baseline, medianUsage(oneThread))
        // The floor (AppendOsFloor.swift): the same appends by a minimal C loop, same rounds.
        let floor = "append-os-minimal-c-8", floorBaseline = "append-os-minimal-c-1"
        report("append-os-8", "appends_per_s", median(eightThreads.map(\.rate)), "appends/s", floor, median(floorEight.map(\.rate)))
        report(floor, "appends_per_s", median(floorEight.map(\.rate)), "appends/s", floorBaseline, median(floorOne.map(\.rate)))
        reportUsage(floor, medianUsage(floorEight), floorBaseline, medianUsage(floorOne))
        // The same loop with Swift's kind of mutex, once (it is slow): what a hand-off costs.
        let pi = try AppendOsFloor.run(threads: threads, appends: appends, pool: pool, path: logPath("append-os-floor-pi"),
                                       priorityInheritance: true)
        report("append-os-minimal-c-pi-mutex-8", "appends_per_s", pi.rate, "appends/s", floorBaseline, median(floorOne.map(\.rate)))
        reportUsage("append-os-minimal-c-pi-mutex-8", pi.usage, floorBaseline, medianUsage(floorOne))
    }

    /// `appends` single-record appends at `.os` into a fresh log, split over `threads` threads:
    /// appends per second, and the process's usage per append meanwhile.
    private func appendOsRate(threads: Int, appends: Int, pool: [[UInt8]]) throws -> (rate: Double, usage: UsagePerAppend) {
        let path = logPath("append-os-\(threads)")
        let log = try SegmentLog.open(directory: path, options: options(.lz4, .os))
        let perThread = appends / threads
        let (seconds, usage) = measureUsage {
            onThreads(threads) { thread in
                for i in 0..<perThread { try! log.append(pool[(thread + i * threads) % pool.count]) }
            }
        }
        precondition(log.nextOffset == UInt64(threads * perThread))
        try log.close()
        try? FileManager.default.removeItem(atPath: path)
        return (Double(threads * perThread) / seconds, UsagePerAppend(usage, appends: threads * perThread))
    }

    // MARK: replay

    func replay() throws {
        for name in ["append-128", "append-1k"] {
            if appendedLogs[name] == nil { try run(name) }
            let batches = appendedLogs[name]!
            let log = try SegmentLog.open(directory: logPath(name + "-lz4"), options: options(.lz4, .os))
            let (seconds, records, payloadBytes) = try libraryReplay(log)
            try log.close()
            let expected = batches.reduce(0) { $0 + $1.count }
            guard records == expected else { throw BenchError.engine("replay read \(records) records, expected \(expected)") }
            let decompressSeconds = Baselines.lz4DecompressOnly(batches)
            let workload = "replay-" + name.dropFirst("append-".count)
            report(workload, "records_per_s", Double(records) / seconds, "records/s", "lz4-decompress-only", Double(records) / decompressSeconds)
            report(workload, "GB_per_s", Double(payloadBytes) / seconds / 1e9, "GB/s", "lz4-decompress-only", Double(payloadBytes) / decompressSeconds / 1e9)
        }
    }

    /// Reads and verifies a whole log through the library: (seconds, records, payload bytes).
    private func libraryReplay(_ log: SegmentLog) throws -> (Double, Int, Int) {
        var records = 0
        var payloadBytes = 0
        let seconds = try measure {
            var cursor = log.batches(from: 0)
            var scratch: [UInt8] = []
            while let batch = try cursor.next() {
                try batch.forEachRecord(scratch: &scratch) { _, bytes in
                    records += 1
                    payloadBytes += bytes.count
                }
            }
        }
        return (seconds, records, payloadBytes)
    }

    /// Runs a program to completion; returns its wall time in seconds and its exit status.
    private func timeProcess(_ executable: String, _ arguments: [String]) throws -> (Double, Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let seconds = try measure {
            try process.run()
            process.waitUntilExit()
        }
        return (seconds, process.terminationStatus)
    }

    // MARK: tool

    /// The `shiplog` tool's scans on a 1 GiB log (LZ4, 128-byte records) beside the library's
    /// own replay of the same log: `verify`, `replay --exec 'cat >/dev/null'` as frames and as
    /// JSON lines, and `dump` into /dev/null. Each is run three times, interleaved with the library's replay, and the
    /// medians are reported: single runs on a shared machine vary by a third.
    func tool() throws {
        let path = logPath("tool-log")
        if !(keepLogs && FileManager.default.fileExists(atPath: path + "/SHIPLOG")) {
            let pool = batches(try records(bytes: payloadRecordBytes ?? 128, count: 64 * 1024))
            let log = try SegmentLog.open(directory: path, options: options(.lz4, .buffered))
            var i = 0
            while log.totalBytes < 1 << 30 {
                try log.append(pool[i % pool.count])
                i += 1
            }
            try log.close()
        }
        settle()
        let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("shiplog").path
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            throw BenchError.engine("\(tool) not built: run `swift build -c release --product shiplog`")
        }
        let commands = [("verify_GB_per_s", ["verify", path, "--quiet"]),
                        ("replay_exec_frames_GB_per_s", ["replay", path, "--quiet", "--frames", "--exec", "cat >/dev/null"]),
                        ("replay_exec_json_GB_per_s", ["replay", path, "--quiet", "--exec", "cat >/dev/null"]),
                        ("dump_json_to_dev_null_GB_per_s", ["dump", path, "--quiet"])]
        var librarySeconds: [Double] = []
        var toolSeconds = [[Double]](repeating: [], count: commands.count)
        var storedBytes = 0.0
        var records = 0
        var payloadBytes = 0
        for _ in 0..<3 {
            let reopened = try SegmentLog.open(directory: path, options: options(.lz4, .os))
            storedBytes = Double(reopened.totalBytes)
            let (seconds, count, bytes) = try libraryReplay(reopened)
            try reopened.close()
            librarySeconds.append(seconds)
            (records, payloadBytes) = (count, bytes)
            for (index, (_, arguments)) in commands.enumerated() {
                let (seconds, status) = try timeProcess(tool, arguments)
                guard status == 0 else { throw BenchError.engine("shiplog \(arguments.joined(separator: " ")) exited \(status)") }
                toolSeconds[index].append(seconds)
            }
        }
        func median(_ samples: [Double]) -> Double { samples.sorted()[samples.count / 2] }
        let libraryRate = storedBytes / median(librarySeconds) / 1e9
        report("tool", "library_replay_GB_per_s", libraryRate, "GB/s")
        for (index, (figure, _)) in commands.enumerated() {
            report("tool", figure, storedBytes / median(toolSeconds[index]) / 1e9, "GB/s", "library-replay-1GiB", libraryRate)
        }
        report("tool", "log_records", Double(records), "records")
        // Moving the frames' bytes through a plain pipe (write(2) and read(2)) to cat.
        let frameBytes = payloadBytes + 4 * records
        let (pipeSeconds, _) = try timeProcess("/bin/sh", ["-c", "head -c \(frameBytes) /dev/zero | cat >/dev/null"])
        report("tool", "pipe_to_cat_GB_per_s", storedBytes / pipeSeconds / 1e9, "GB/s", "library-replay-1GiB", libraryRate)
        removeLog(path)
    }

    // MARK: open, big

    /// Appends `logBytes` of 1 KiB records (stored raw, so the log is that size on disk).
    private func fill(_ path: String, logBytes: Int) throws -> Double {
        let pool = try records(bytes: 1024, count: 4096)
        let poolBatches = batches(pool)
        let log = try SegmentLog.open(directory: path, options: options(.none, .os))
        let appendsNeeded = logBytes / (batchRecords * (1024 + 4) + 48)
        let seconds = try measure {
            for i in 0..<appendsNeeded { try log.append(poolBatches[i % poolBatches.count]) }
        }
        try log.close()
        return Double(appendsNeeded * batchRecords * 1024) / seconds
    }

    private func openSeconds(_ path: String, clean: Bool) throws -> Double {
        var samples: [Double] = []
        for _ in 0..<5 {
            var log: SegmentLog?
            samples.append(try measure { log = try SegmentLog.open(directory: path, options: options(.none, .os)) })
            if clean { try log!.close() }
            log = nil  // without close: no clean-shutdown marker, as after SIGKILL
        }
        return samples.sorted()[samples.count / 2]
    }

    func openTimes(name: String, logBytes: Int) throws {
        let path = logPath(name + "-log")
        _ = try fill(path, logBytes: logBytes)
        let label = "\(logBytes >> 30)GiB"
        report(name, "open_ms_clean_" + label, try openSeconds(path, clean: true) * 1000, "ms")
        report(name, "open_ms_unclean_" + label, try openSeconds(path, clean: false) * 1000, "ms")
        removeLog(path)
    }

    func big() throws {
        let path = logPath("big-log")
        let bytesPerSecond = try fill(path, logBytes: 10 << 30)
        report("big", "append_MB_per_s", bytesPerSecond / 1e6, "MB/s")
        report("big", "peak_resident_MB", Double(peakResidentBytes()) / 1e6, "MB")
        report("big", "open_ms_clean_10GiB", try openSeconds(path, clean: true) * 1000, "ms")
        report("big", "open_ms_unclean_10GiB", try openSeconds(path, clean: false) * 1000, "ms")
        removeLog(path)
    }
}
