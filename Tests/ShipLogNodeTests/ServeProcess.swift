import Foundation
import ShipLogNode

/// `shiplog serve` as a child process: started, read until it prints where it listens, and
/// stopped by its pid. Every wait is bounded.
final class ServeProcess: @unchecked Sendable {
    static var toolPath: String {
        // The test bundle and the tool are built into the same directory.
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundle, bundle.deletingLastPathComponent(), bundle.deletingLastPathComponent().deletingLastPathComponent()]
        return candidates.map { $0.appendingPathComponent("shiplog").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0].appendingPathComponent("shiplog").path
    }

    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private let lock = NSCondition()
    private var lines: [String] = []
    private var partial = ""
    private var errorText = ""
    let name: String

    init(name: String, arguments: [String]) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: Self.toolPath)
        process.arguments = ["serve"] + arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.partial += String(decoding: data, as: UTF8.self)
            while let newline = self.partial.firstIndex(of: "\n") {
                self.lines.append(String(self.partial[..<newline]))
                self.partial = String(self.partial[self.partial.index(after: newline)...])
            }
            self.lock.broadcast()
            self.lock.unlock()
        }
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.errorText += String(decoding: data, as: UTF8.self)
            if self.errorText.count > 1 << 20 { self.errorText = String(self.errorText.suffix(1 << 19)) }
            self.lock.unlock()
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var stderr: String { lock.lock(); defer { lock.unlock() }; return errorText }

    /// Waits for the first output line that satisfies `match`, and consumes it.
    func waitForLine(timeout: TimeInterval = 20, _ match: (String) -> Bool) throws -> String {
        let deadline = Date(timeIntervalSinceNow: timeout)
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let index = lines.firstIndex(where: match) {
                return lines.remove(at: index)
            }
            guard process.isRunning, lock.wait(until: deadline) else {
                if let index = lines.firstIndex(where: match) { return lines.remove(at: index) }
                throw TimedOut(what: "\(name) to print a matching line (running: \(process.isRunning)); stderr: \(errorText.suffix(2000))")
            }
        }
    }

    /// The address from the "listening on HOST:PORT" line.
    func listeningAddress() throws -> PeerAddress {
        let line = try waitForLine { $0.hasPrefix("listening on ") }
        guard let address = PeerAddress(parsing: String(line.dropFirst("listening on ".count))) else {
            throw TimedOut(what: "a parsable address in \(line)")
        }
        return address
    }

    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits (bounded) for the process to exit; kills it with SIGKILL if it does not.
    func waitForExit(timeout: TimeInterval = 20) -> (status: Int32, signaled: Bool)? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }

    /// For cleanup after a failure: SIGKILL if still running.
    func killIfRunning() {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }
}
