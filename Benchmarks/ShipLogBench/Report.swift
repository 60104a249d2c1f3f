import Foundation

/// One measured figure, beside the baseline measured in the same run (nil where none applies).
struct Figure: Encodable {
    var workload: String
    var figure: String
    var value: Double
    var unit: String
    var baseline: String?
    var baselineValue: Double?
    var ratio: Double? {
        guard let baselineValue, baselineValue != 0 else { return nil }
        return value / baselineValue
    }

    enum CodingKeys: String, CodingKey {
        case workload, figure, value, unit, baseline
        case baselineValue = "baseline_value"
        case ratio
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
                print(pad("workload", 16) + pad("figure", 22) + pad("value", 14) + pad("unit", 12)
                      + pad("baseline", 26) + pad("baseline value", 16) + "ratio")
                printedHeader = true
            }
            print(pad(figure.workload, 16) + pad(figure.figure, 22) + pad(format(figure.value), 14) + pad(figure.unit, 12)
                  + pad(figure.baseline ?? "-", 26) + pad(figure.baselineValue.map(format) ?? "-", 16)
                  + (figure.ratio.map { String(format: "%.2f", $0) } ?? "-"))
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
