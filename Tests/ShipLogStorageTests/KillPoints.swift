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
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs `shiplog arguments`, killed on call `n` of `call`.
    static func shiplog(_ arguments: [String], killAt call: String, n: Int) throws -> Run {
        try run(stracePath, ["-f", "-o", "/dev/null", "-e", "trace=\(call)", "-e", "inject=\(call):signal=KILL:when=\(n)",
                             ToolTests.toolPath] + arguments)
    }

    /// Runs `shiplog arguments` with call `n` of `call` failing with `errno` instead.
    static func shiplog(_ arguments: [String], fail call: String, n: Int, errno: String) throws -> Run {
        try run(stracePath, ["-f", "-o", "/dev/null", "-e", "trace=\(call)", "-e", "inject=\(call):error=\(errno):when=\(n)",
                             ToolTests.toolPath] + arguments)
    }

    /// Runs every kill point of every destructive call, in order: `body(call, n, run)` gets
    /// each run and says nothing back; the loop for a call ends at the first run that was not
    /// killed. Bounded, so that a tool that never finishes cannot hang the suite.
    static func forEachKill(_ arguments: [String], calls: [String] = destructiveCalls, maxPerCall: Int = 200,
                            prepare: () throws -> Void, _ body: (String, Int, Run) throws -> Void) throws -> Int {
        var kills = 0
        for call in calls {
            for n in 1...maxPerCall {
                try prepare()
                let run = try shiplog(arguments, killAt: call, n: n)
                try body(call, n, run)
                guard run.killed else { break }
                kills += 1
                precondition(n < maxPerCall, "\(call) was still being called after \(maxPerCall) kills")
            }
        }
        return kills
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // strace ends itself with the signal that ended the program.
        let killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        return Run(killed: killed, status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                   errors: String(decoding: errors, as: UTF8.self))
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
