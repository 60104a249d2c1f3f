import Foundation

/// A process the benchmark starts (an echo server, redis-server, later `shiplog serve`) and
/// stops by its pid: SIGTERM, then SIGKILL if it has not exited within a bounded wait, then
/// waitpid, so no child outlives its workload. Started with posix_spawn; its standard input is a
/// pipe the benchmark holds open, so a child that watches it (the echo server does) exits by
/// itself if the benchmark dies without stopping it.
///
/// Used from one thread at a time.
final class ChildProcess {
    /// Where the child's standard output and standard error go.
    enum Output {
        /// A pipe the benchmark reads with `readLine(timeout:)` (standard error is inherited).
        case pipe
        /// Standard output a pipe as in `.pipe`, standard error appended to this file (a
        /// server's log that its restarts extend, read back afterwards).
        case pipeWithErrors(appendingTo: String)
        /// Both into this file, created or truncated (for a server's log, read back on failure).
        case file(String)
        /// Both into /dev/null.
        case discard
    }

    let pid: pid_t
    /// For messages: the program's name and what it is for.
    let name: String
    private var stdinWriter: Int32
    private var stdoutReader: Int32
    private var pending: [UInt8] = []
    /// The wait status once the child has been reaped.
    private(set) var waitStatus: Int32?

    /// User plus system CPU seconds the child has used so far (/proc/PID/stat), nil once it is
    /// gone or where there is no /proc: for CPU-per-byte figures beside a throughput.
    var cpuSeconds: Double? {
        guard waitStatus == nil, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After the command's ")" come state, ppid, ...: utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Starts `executable` with `arguments` (not through a shell) and the benchmark's environment.
    init(executable: String, arguments: [String], output: Output, name: String) throws {
        self.name = name
        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        guard closeOnExecPipe(&stdinPipe) == 0 else { throw NetworkError.system(call: "pipe", errno: errno, context: "starting \(name)") }
        if output.isPipe, closeOnExecPipe(&stdoutPipe) != 0 {
            let code = errno
            close(stdinPipe[0]); close(stdinPipe[1])
            throw NetworkError.system(call: "pipe", errno: code, context: "starting \(name)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the child's copy only.
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        switch output {
        case .pipe:
            posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        case .pipeWithErrors(let path):
            posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
            posix_spawn_file_actions_addopen(&actions, 2, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .discard:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // The child starts with default signal actions and nothing blocked, whatever the
        // benchmark's runtime set up (an ignored SIGPIPE or SIGTERM would survive exec).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, signal) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(stdinPipe[0])
        if output.isPipe { close(stdoutPipe[1]) }
        guard result == 0 else {
            close(stdinPipe[1])
            if output.isPipe { close(stdoutPipe[0]) }
            throw NetworkError.system(call: "posix_spawn", errno: result, context: "starting \(name) (\(executable))")
        }
        self.pid = pid
        stdinWriter = stdinPipe[1]
        if output.isPipe { stdoutReader = stdoutPipe[0] } else { stdoutReader = -1 }
    }

    /// The write end of the child's standard input and the read end of its standard output
    /// (-1 without a pipe, or once stopped), for a caller that `dup`s them to use from threads
    /// of its own (`FailoverWriter`); the child keeps owning and closing these.
    var inputDescriptor: Int32 { stdinWriter }
    var outputDescriptor: Int32 { stdoutReader }

    deinit { stop() }

    /// Whether the child has exited (reaping it if so).
    var hasExited: Bool {
        if waitStatus != nil { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { waitStatus = status }
        return waitStatus != nil
    }

    /// The next line of the child's standard output (`.pipe` only), without its newline.
    /// Throws if none is complete within `timeout` or the child closes its output first.
    func readLine(timeout: Duration) throws -> String {
        precondition(stdoutReader >= 0, "readLine needs Output.pipe")
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let left = deadline - clock.now
            guard left > .zero else { throw NetworkError.timeout("no line from \(name) within \(timeout)") }
            var poller = pollfd(fd: stdoutReader, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready >= 0 else { throw NetworkError.system(call: "poll", errno: errno, context: "reading \(name)'s output") }
            if ready == 0 { continue }
            let n = chunk.withUnsafeMutableBytes { read(stdoutReader, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw NetworkError.child("\(name) (pid \(pid)) closed its output before a whole line; exited: \(hasExited)") }
            pending += chunk[..<n]
        }
    }

    /// Stops the child by its pid: SIGTERM, up to `grace` for it to exit, then SIGKILL, and
    /// reaps it. Safe to call twice. Returns the wait status.
    @discardableResult
    func stop(grace: Duration = .seconds(5)) -> Int32 {
        defer {
            if stdinWriter >= 0 { close(stdinWriter); stdinWriter = -1 }
            if stdoutReader >= 0 { close(stdoutReader); stdoutReader = -1 }
        }
        if let waitStatus { return waitStatus }
        if hasExited { return waitStatus! }
        kill(pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while clock.now < deadline {
            if hasExited { return waitStatus! }
            usleep(5_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        waitStatus = status
        return status
    }
}

extension ChildProcess.Output {
    var isPipe: Bool {
        switch self {
        case .pipe, .pipeWithErrors: true
        case .file, .discard: false
        }
    }
}

/// pipe(2) with FD_CLOEXEC on both ends (Swift's Glibc module leaves out pipe2). The benchmark
/// spawns children from one thread at a time, so no other spawn can inherit the ends in between.
func closeOnExecPipe(_ fds: inout [Int32]) -> Int32 {
    guard pipe(&fds) == 0 else { return -1 }
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return 0
}

/// This executable's own path, to start it again as a helper process (the echo server).
func currentExecutablePath() throws -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { throw NetworkError.system(call: "readlink", errno: errno, context: "finding /proc/self/exe") }
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
