import Foundation

/// Runs the `shiplog` binary under strace(1) and kills it with SIGKILL on the Nth call of one
/// system call (`strace -f -e inject=SYSCALL:signal=KILL:when=N`): the call is not made, so
/// the files are exactly as the N−1 calls before it left them. Looping N from 1 until a run
/// completes visits every point at which that call changes the disk.
enum KillPoints {
    static let stracePath = "/usr/bin/strace"

    /// The calls that change files, each counted on its own (strace counts per call and per
    /// thread). `write` covers the tool's output; opening files is left out because it is
    /// made thousands of times at start-up and changes nothing until a write.
    static let destructiveCalls = ["unlink", "rmdir", "mkdir", "rename", "ftruncate", "fallocate", "pwrite64", "fsync", "fdatasync"]

    /// nil when strace can trace and kill here; else why not, for the skip message.
    static let unavailable: String? = {
        guard FileManager.default.isExecutableFile(atPath: stracePath) else { return "\(stracePath) is not installed" }
        guard let run = try? run(stracePath, ["-f", "-o", "/dev/null", "-e", "inject=exit_group:signal=KILL:when=1", "/bin/true"]) else {
            return "\(stracePath) could not be started"
        }
        // Killed on its way out: strace can trace (ptrace is allowed) and inject.
        return run.killed ? nil : "strace cannot trace here (ptrace refused?): \(run.errors)"
    }()

    struct Run {
        var killed: Bool
        var injected = false
        var status: Int32
        var output: String
        var errors: String
    }

    /// What happens at the chosen call: SIGKILL, or the call fails with an errno (by name).
    enum Injection {
        case kill
        case fail(String)

        func strace(_ call: String, _ n: Int) -> String {
            switch self {
            case .kill: return "inject=\(call):signal=KILL:when=\(n)"
            case .fail(let errno): return "inject=\(call):error=\(errno):when=\(n)"
            }
        }
    }

    struct Point: CustomStringConvertible {
        var injection: Injection
        var call: String
        var n: Int
        var description: String {
            switch injection {
            case .kill: return "killed at \(call) #\(n)"
            case .fail(let errno): return "\(call) #\(n) failing with \(errno)"
            }
        }
    }

    /// Runs `shiplog arguments` with `injection` at call `n` of `call`; `injected` says
    /// whether the run got that far (strace marks the call it changed "(INJECTED)").
    static func shiplog(_ arguments: [String], _ injection: Injection, at call: String, n: Int) throws -> Run {
        let trace = NSTemporaryDirectory() + "shiplog-strace-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: trace) }
        var result = try run(stracePath, ["-f", "-o", trace, "-e", "trace=\(call)", "-e", injection.strace(call, n),
                                          ToolTests.toolPath] + arguments)
        result.injected = result.killed || String(decoding: fileBytes(trace), as: UTF8.self).contains("(INJECTED)")
        return result
    }

    /// Injects at every call of every listed kind in turn: `body(point, run)` checks each run.
    /// The loop for a call ends at the first run that did not reach call n, which completed
    /// as if uninjected. Bounded, so that a tool that never finishes cannot hang the suite.
    /// Returns the number of points injected.
    @discardableResult
    static func forEachPoint(_ arguments: [String], _ injection: Injection, calls: [String] = destructiveCalls,
                             maxPerCall: Int = 200, prepare: () throws -> Void,
                             _ body: (Point, Run) throws -> Void) throws -> Int {
        var points = 0
        for call in calls {
            for n in 1...maxPerCall {
                try prepare()
                let run = try shiplog(arguments, injection, at: call, n: n)
                try body(Point(injection: injection, call: call, n: n), run)
                guard run.injected else { break }
                points += 1
                precondition(n < maxPerCall, "\(call) was still being called after \(maxPerCall) injections")
            }
        }
        return points
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> Run {
        let finished = try runProgram(executable, arguments)
        // strace ends itself with the signal that ended the program.
        let killed = finished.killedBySignal && finished.status == SIGKILL
        return Run(killed: killed, injected: killed, status: finished.status, output: finished.output, errors: finished.errors)
    }
}

/// The regular files of a directory and their bytes, and its subfolders by name: what a
/// kill may have changed.
struct DirectorySnapshot: Equatable {
    var files: [String: [UInt8]] = [:]
    var folders: Set<String> = []

    init(_ path: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &isFolder)
            if isFolder.boolValue { folders.insert(name) } else { files[name] = fileBytes(path + "/" + name) }
        }
    }

    /// Segment file names, in offset order.
    var segments: [String] { files.keys.filter { $0.hasSuffix(".log") }.sorted() }
}

/// Copies a directory tree (small test logs), replacing `destination`.
func copyDirectory(_ source: String, to destination: String) throws {
    try? FileManager.default.removeItem(atPath: destination)
    try FileManager.default.copyItem(atPath: source, toPath: destination)
}
