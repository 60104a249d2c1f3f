import ArgumentParser
import Foundation
import ShipLogStorage

/// `shiplog`: verify, dump, stats, repair and replay ShipLog logs. Exit codes: 0 healthy
/// (or done), 1 damaged (or refused to lose data, or a repair or replay that failed part-way),
/// 2 the tool could not do what was asked (usage errors, a directory that is not a readable
/// log, a failed system call), 3 the program of `replay --exec` failed.
@main
struct ShipLogTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shiplog",
        abstract: "Inspect and recover ShipLog log directories.",
        discussion: """
            Exit codes: 0 healthy or done; 1 damaged (the records before the damage are delivered first), \
            or a repair or replay that failed part-way; 2 the tool could not do what was asked: usage errors, \
            offsets not in the log, a directory that is not a readable log, a format version it does not know, \
            a failed system call; 3 the program of replay --exec failed.
            Offset ranges are written first...last, both included, as --from and --to take them.
            """,
        subcommands: [Verify.self, Dump.self, Stats.self, Repair.self, Replay.self, Serve.self, Status.self, Switchover.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ToolFailure {
            FileHandle.standardError.write(Data("shiplog: \(error.message)\n".utf8))
            Foundation.exit(error.code)
        } catch let error as LogError {
            FileHandle.standardError.write(Data("shiplog: \(error)\n".utf8))
            Foundation.exit(exitStatus(for: error))
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                print(message)
                Foundation.exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }

    /// Damage the library found (bytes that fail validation) is damage to the tool too;
    /// anything else kept it from doing its job.
    static func exitStatus(for error: LogError) -> Int32 {
        if case .corruption = error { return 1 }
        return 2
    }
}

/// An outcome with its exit code and the message for standard error.
struct ToolFailure: Error {
    var code: Int32
    var message: String
    /// Writing failed because the reader closed its end (EPIPE): the reader's own exit
    /// status, not this, is then what to report.
    var readerClosedInput = false
    /// The log is damaged: exit 1.
    static func damaged(_ message: String) -> ToolFailure { ToolFailure(code: 1, message: message) }
    /// The request cannot be carried out as asked: exit 2.
    static func usage(_ message: String) -> ToolFailure { ToolFailure(code: 2, message: message) }
    /// The program records were streamed to failed; its status is in the message, and the
    /// code is its own so that scripts can tell it from damage (1) and usage (2).
    static func programFailed(_ message: String) -> ToolFailure { ToolFailure(code: 3, message: message) }
    /// Something other than the log failed (a write, a mapping): exit 2, not damage.
    static func failed(_ message: String) -> ToolFailure { ToolFailure(code: 2, message: message) }
}

/// The log directory and the progress bar: what every subcommand takes.
struct LogLocation: ParsableArguments {
    @Argument(help: "The log directory.")
    var directory: String

    @Flag(help: "No progress bar.")
    var quiet = false

    func inspector() throws -> LogInspector {
        do {
            return try LogInspector(directory: directory)
        } catch let error as LogError {
            throw ToolFailure.usage("\(error)")
        }
    }
}

/// Options of the subcommands that can answer in JSON (all but `dump`, whose records are
/// JSON lines already).
struct CommonOptions: ParsableArguments {
    @OptionGroup var location: LogLocation

    @Flag(help: "Machine-readable JSON output.")
    var json = false

    var directory: String { location.directory }
    var quiet: Bool { location.quiet }
    func inspector() throws -> LogInspector { try location.inspector() }
}

/// A note on standard error, where it does not mix with the records on standard output.
func say(_ message: String) {
    FileHandle.standardError.write(Data("shiplog: \(message)\n".utf8))
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self))
}

func totalSegmentBytes(_ inspector: LogInspector) -> Int64 {
    inspector.segmentBaseOffsets.reduce(0) {
        $0 + ((try? FileManager.default.attributesOfItem(atPath: inspector.segmentPath($1))[.size] as? Int64) ?? 0)
    }
}
