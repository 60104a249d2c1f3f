import Foundation
import Histogram

/// One measured figure, beside the baseline measured in the same run (nil where none applies).
struct Figure: Encodable {
    var workload: String
    var figure: String
    /// nil when the figure could not be measured in this run (`note` says why).
    var value: Double?
    var unit: String
    var baseline: String?
    var baselineValue: Double?
    /// How the figure was measured where the name does not say it, or why it was skipped
    /// (`"skipped: redis-server not installed"`). Only in the JSON when present.
    var note: String? = nil
    var ratio: Double? {
        guard let value, let baselineValue, baselineValue != 0 else { return nil }
        return value / baselineValue
    }

    enum CodingKeys: String, CodingKey {
        case workload, figure, value, unit, baseline
        case baselineValue = "baseline_value"
        case ratio, note
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(workload, forKey: .workload)
        try c.encode(figure, forKey: .figure)
        try c.encode(value, forKey: .value)
        try c.encode(unit, forKey: .unit)
        try c.encode(baseline, forKey: .baseline)
        try c.encode(baselineValue, forKey: .baselineValue)
        try c.encode(ratio, forKey: .ratio)
        try c.encodeIfPresent(note, forKey: .note)
    }
}

/// Prints figures as they are measured: a table row, or one JSON object per line.
final class Reporter {
    let json: Bool
    private var printedHeader = false

    init(json: Bool) { self.json = json }

    func report(_ figure: Figure) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try! encoder.encode(figure), as: UTF8.self))
        } else {
            if !printedHeader {
                print(pad("workload", 16) + pad("figure", 28) + pad("value", 14) + pad("unit", 12)
                      + pad("baseline", 26) + pad("baseline value", 16) + "ratio")
                printedHeader = true
            }
            print(pad(figure.workload, 16) + pad(figure.figure, 28) + pad(figure.value.map(format) ?? "-", 14) + pad(figure.unit, 12)
                  + pad(figure.baseline ?? "-", 26) + pad(figure.baselineValue.map(format) ?? "-", 16)
                  + (figure.ratio.map { String(format: "%.2f", $0) } ?? "-") + (figure.note.map { "  (\($0))" } ?? ""))
        }
        fflush(nil)
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private func format(_ value: Double) -> String {
        if value >= 1e6 { return String(format: "%.3g", value) }
        if value >= 100 { return String(format: "%.0f", value) }
        return String(format: "%.3g", value)
    }
}

/// Seconds taken by `body`.
func measure(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// What the whole process (every thread) has used so far, from getrusage(RUSAGE_SELF).
struct ResourceUsage {
    var voluntarySwitches = 0
    var involuntarySwitches = 0
    /// User plus system CPU time.
    var cpuSeconds = 0.0

    static func now() -> ResourceUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return ResourceUsage(voluntarySwitches: usage.ru_nvcsw, involuntarySwitches: usage.ru_nivcsw,
                             cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }

    static func - (end: ResourceUsage, start: ResourceUsage) -> ResourceUsage {
        ResourceUsage(voluntarySwitches: end.voluntarySwitches - start.voluntarySwitches,
                      involuntarySwitches: end.involuntarySwitches - start.involuntarySwitches,
                      cpuSeconds: end.cpuSeconds - start.cpuSeconds)
    }

    var contextSwitches: Int { voluntarySwitches + involuntarySwitches }
}

/// The same section's usage per append: what `context_switches_per_append` and
/// `cpu_us_per_append` report.
struct UsagePerAppend {
    var contextSwitches: Double
    var cpuMicroseconds: Double

    init(_ usage: ResourceUsage, appends: Int) {
        contextSwitches = Double(usage.contextSwitches) / Double(appends)
        cpuMicroseconds = usage.cpuSeconds * 1e6 / Double(appends)
    }

    init(contextSwitches: Double, cpuMicroseconds: Double) {
        self.contextSwitches = contextSwitches
        self.cpuMicroseconds = cpuMicroseconds
    }
}

/// Seconds taken by `body`, and what the process used meanwhile (all its threads: the
/// section's own and any others running, such as an engine's background thread).
func measureUsage(_ body: () throws -> Void) rethrows -> (seconds: Double, usage: ResourceUsage) {
    let start = ResourceUsage.now()
    let seconds = try measure(body)
    return (seconds, ResourceUsage.now() - start)
}

func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

/// Runs `body` on `count` OS threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread.detachNewThread {
            body(index)
            group.leave()
        }
    }
    group.wait()
}

/// Seconds taken by an async `body`.
func measure(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Where `runAsync` leaves the task's result for the thread that waits for it.
private final class AsyncOutcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// Runs `body` in a detached task on the cooperative pool and blocks the calling thread until
/// it finishes. The caller must be a thread of its own (the command's main thread is), never
/// one of the pool's: blocking a pool thread on tasks that need the pool can deadlock.
func runAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let outcome = AsyncOutcome<T>()
    Task.detached {
        do { outcome.result = .success(try await body()) } catch { outcome.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try outcome.result!.get()
}

/// How late a 1 ms sleep loop's wake-ups were: each tick's elapsed time minus 1 ms.
struct TickerLateness: Sendable {
    var ticks: Int
    var p99Milliseconds: Double
}

/// Runs `body` while a ticker task on the same cooperative pool sleeps 1 ms in a loop
/// (`Task.sleep(for: .milliseconds(1))`) and records how late each sleep ends. The ticker is
/// in its loop before `body` starts; a sleep cut short when it is cancelled is not counted.
/// Returns `body`'s seconds and the ticker's lateness.
func withTicker(_ body: () async throws -> Void) async throws -> (seconds: Double, ticker: TickerLateness) {
    let (started, ticking) = AsyncStream<Void>.makeStream()
    let ticker = Task { () -> Histogram<UInt64> in
        var lateness = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        let clock = ContinuousClock()
        ticking.finish()
        while true {
            let start = clock.now
            do { try await Task.sleep(for: .milliseconds(1)) } catch { break }
            let late = (clock.now - start) - .milliseconds(1)
            let microseconds = late.components.seconds * 1_000_000 + late.components.attoseconds / 1_000_000_000_000
            lateness.record(UInt64(max(0, min(microseconds, 60_000_000))))
        }
        return lateness
    }
    for await _ in started {}
    let seconds: Double
    do {
        seconds = try await measure(body)
    } catch {
        ticker.cancel()
        throw error
    }
    ticker.cancel()
    let lateness = await ticker.value
    return (seconds, TickerLateness(ticks: Int(lateness.totalCount),
                                    p99Milliseconds: Double(lateness.valueAtPercentile(99)) / 1000))
}
