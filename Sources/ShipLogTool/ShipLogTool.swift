import ArgumentParser
import Foundation
import ShipLogStorage

/// `shiplog`: verify, dump, stats, repair and replay ShipLog logs. Exit codes: 0 healthy
/// (or done), 1 damaged (or refused to lose data, or a repair or replay that failed part-way),
/// 2 usage errors or an unreadable directory, 3 the program of `replay --exec` failed.
@main
struct ShipLogTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shiplog",
        abstract: "Inspect and recover ShipLog log directories.",
        discussion: """
            Exit codes: 0 healthy or done, 1 damaged (or a repair or replay that failed part-way), \
            2 usage error or unreadable directory, 3 the program of replay --exec failed.
            """,
        subcommands: [Verify.self, Dump.self, Stats.self, Repair.self, Replay.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ToolFailure {
            FileHandle.standardError.write(Data("shiplog: \(error.message)\n".utf8))
            Foundation.exit(error.code)
        } catch let error as LogError {
            FileHandle.standardError.write(Data("shiplog: \(error)\n".utf8))
            Foundation.exit(2)
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
}

/// An outcome with its exit code and the message for standard error.
struct ToolFailure: Error {
    var code: Int32
    var message: String
    /// Writing failed because the reader closed its end (EPIPE): the reader's own exit
    /// status, not this, is then what to report.
    var readerClosedInput = false
    static func damaged(_ message: String) -> ToolFailure { ToolFailure(code: 1, message: message) }
    static func usage(_ message: String) -> ToolFailure { ToolFailure(code: 2, message: message) }
    /// The program records were streamed to failed; its status is in the message, and the
    /// code is its own so that scripts can tell it from damage (1) and usage (2).
    static func programFailed(_ message: String) -> ToolFailure { ToolFailure(code: 3, message: message) }
}

/// Options every subcommand takes.
struct CommonOptions: ParsableArguments {
    @Argument(help: "The log directory.")
    var directory: String

    @Flag(help: "Machine-readable JSON output.")
    var json = false

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
