import Foundation

/// A progress bar with throughput and ETA on standard error, shown only when standard error
/// is a terminal, `--quiet` is off, and the work has taken more than a second.
final class Progress {
    private let totalBytes: Int64
    private let label: String
    private var doneBytes: Int64 = 0
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    /// nil when no bar should be drawn.
    static func make(label: String, totalBytes: Int64, quiet: Bool) -> Progress? {
        guard !quiet, isatty(2) == 1, totalBytes > 0 else { return nil }
        return Progress(label: label, totalBytes: totalBytes)
    }

    private init(label: String, totalBytes: Int64) {
        self.label = label
        self.totalBytes = totalBytes
    }

    func advance(by bytes: Int64) {
        doneBytes += bytes
        let now = Date()
        let elapsed = now.timeIntervalSince(start)
        guard elapsed > 1, now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let fraction = min(1, Double(doneBytes) / Double(totalBytes))
        let rate = Double(doneBytes) / elapsed
        let eta = rate > 0 ? Double(totalBytes - doneBytes) / rate : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ [%@] %3.0f%% %.1f MB/s ETA %.0fs ", label, bar,
                                                   fraction * 100, rate / 1e6, eta).utf8))
        drawn = true
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
