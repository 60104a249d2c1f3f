import Foundation
import Histogram
import ShipLogStorage

extension Workloads {
    // MARK: append-async-8

    /// 8 tasks (a task group) appending one 1 KiB record at a time at `.fsync` through the
    /// async API, 8 × 1,000 appends into a fresh log as `append-fsync-8` does, beside the same
    /// appends from 8 threads through the blocking API: three rounds, threads then tasks, each
    /// after sync(2) and into a fresh log, medians reported (usage per append as in
    /// `append-os-8`, each figure's median on its own). While the tasks append, a ticker task
    /// on the same cooperative pool sleeps 1 ms in a loop and records how late each sleep ends
    /// (`ticker_lateness_p99_ms`, the median of the rounds' p99). Its baselines: the same
    /// ticker while 8 tasks call the blocking append (2,000 appends in all, once), which holds
    /// the pool's threads across each fdatasync, what the async API is for; and the ticker
    /// alone for 0.5 s in each round, the lateness the machine itself adds.
    func appendAsync8() throws {
        let writers = 8
        let perWriter = 1000
        let record = try records(bytes: 1024, count: 1)[0]
        var threadRounds: [AppendRound] = []
        var taskRounds: [AppendRound] = []
        var aloneRounds: [TickerLateness] = []
        for round in 0..<3 {
            settle()
            threadRounds.append(try appendFsyncFromThreads(writers, perWriter, record, path: logPath("append-async-8-threads-\(round)")))
            settle()
            taskRounds.append(try appendFsyncFromTasks(writers, perWriter, record, asyncAPI: true, path: logPath("append-async-8-tasks-\(round)")))
            aloneRounds.append(try runAsync { try await withTicker { try await Task.sleep(for: .milliseconds(500)) }.ticker })
        }
        settle()
        let blocking = try appendFsyncFromTasks(writers, 250, record, asyncAPI: false, path: logPath("append-async-8-blocking"))
        func median(_ samples: [Double]) -> Double { samples.sorted()[samples.count / 2] }
        func medianUsage(_ rounds: [AppendRound]) -> UsagePerAppend {
            UsagePerAppend(contextSwitches: median(rounds.map(\.usage.contextSwitches)),
                           cpuMicroseconds: median(rounds.map(\.usage.cpuMicroseconds)))
        }
        let threadsName = "append-fsync-8"
        report("append-async-8", "appends_per_s", median(taskRounds.map(\.rate)), "appends/s", threadsName, median(threadRounds.map(\.rate)))
        report("append-async-8", "appends_per_fdatasync", median(taskRounds.map(\.appendsPerSync)), "appends",
               threadsName, median(threadRounds.map(\.appendsPerSync)))
        reportUsage("append-async-8", medianUsage(taskRounds), threadsName, medianUsage(threadRounds))
        let tickerP99 = median(taskRounds.map { $0.ticker!.p99Milliseconds })
        let tickerTicks = median(taskRounds.map { Double($0.ticker!.ticks) })
        let blockingName = "append-fsync-8-blocking-from-tasks"
        report("append-async-8", "ticker_lateness_p99_ms", tickerP99, "ms", blockingName, blocking.ticker!.p99Milliseconds)
        report("append-async-8", "ticker_lateness_p99_ms", tickerP99, "ms", "ticker-alone", median(aloneRounds.map(\.p99Milliseconds)))
        report("append-async-8", "ticker_ticks", tickerTicks, "ticks", blockingName, Double(blocking.ticker!.ticks))
    }

    /// One measured round of `append-async-8`: the ticker's lateness when one ran.
    private struct AppendRound {
        var rate: Double
        var appendsPerSync: Double
        var usage: UsagePerAppend
        var ticker: TickerLateness?
    }

    /// `threads × perThread` blocking appends of `record` at `.fsync` into a fresh log.
    private func appendFsyncFromThreads(_ threads: Int, _ perThread: Int, _ record: [UInt8], path: String) throws -> AppendRound {
        let log = try SegmentLog.open(directory: path, options: options(.lz4, .fsync))
        let (seconds, usage) = measureUsage {
            onThreads(threads) { _ in
                for _ in 0..<perThread { try! log.append(record) }
            }
        }
        let appends = threads * perThread
        precondition(log.durableNextOffset == UInt64(appends))
        let syncs = log.groupCommitSyncs
        try log.close()
        try? FileManager.default.removeItem(atPath: path)
        return AppendRound(rate: Double(appends) / seconds, appendsPerSync: Double(appends) / Double(syncs),
                           usage: UsagePerAppend(usage, appends: appends))
    }

    /// `tasks × perTask` appends of `record` at `.fsync` from a task group into a fresh log,
    /// through the async API or (`asyncAPI: false`) the blocking one, with the 1 ms ticker
    /// running meanwhile (its wake-ups are in the usage too: about one switch per tick).
    private func appendFsyncFromTasks(_ tasks: Int, _ perTask: Int, _ record: [UInt8], asyncAPI: Bool, path: String) throws -> AppendRound {
        let log = try SegmentLog.open(directory: path, options: options(.lz4, .fsync))
        let (seconds, usage, ticker) = try runAsync {
            var usage = ResourceUsage()
            let (seconds, ticker) = try await withTicker {
                let start = ResourceUsage.now()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<tasks {
                        group.addTask {
                            if asyncAPI {
                                for _ in 0..<perTask { try await log.append(record, durability: .fsync) }
                            } else {
                                // What a Swift developer wrote first: the blocking form, from a task.
                                for _ in 0..<perTask { try Self.blockingAppend(log, record) }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                usage = ResourceUsage.now() - start
            }
            return (seconds, usage, ticker)
        }
        let appends = tasks * perTask
        precondition(log.durableNextOffset == UInt64(appends))
        let syncs = log.groupCommitSyncs
        try log.close()
        try? FileManager.default.removeItem(atPath: path)
        return AppendRound(rate: Double(appends) / seconds, appendsPerSync: Double(appends) / Double(syncs),
                           usage: UsagePerAppend(usage, appends: appends), ticker: ticker)
    }

    /// The blocking `append`: inside an async closure the call would pick the async overload.
    private static func blockingAppend(_ log: SegmentLog, _ record: [UInt8]) throws { try log.append(record) }
}
