import CLinuxPipe
import Foundation
import ShipLogStorage

/// A shell command started with posix_spawn(3), reading a pipe this process writes.
///
/// Why not Foundation's `Process`: its child changes into the current directory before it
/// executes the program, so run from a directory its user may not enter (a clone under
/// `mktemp -d`, a service's home) every `--exec` failed with "Permission denied" naming
/// /bin/sh. posix_spawn starts the program where we are, without changing directory. The
/// child gets the default SIGPIPE action back (we ignore it, to see EPIPE as an error) and
/// an empty signal mask, as a shell would start it.
final class SpawnedProgram {
    let command: String
    let pid: pid_t
    /// The write end of the program's standard input; -1 once closed.
    private(set) var input: Int32

    enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        var succeeded: Bool { self == .exited(0) }

        var description: String {
            switch self {
            case .exited(let status): return "exited with status \(status)"
            case .signaled(let signal): return "was killed by signal \(signal) (\(String(cString: strsignal(signal))))"
            }
        }
    }

    /// Starts `/bin/sh -c command` with a pipe of `pipeBytes` as its standard input and this
    /// process's standard output and error.
    init(shellCommand command: String, pipeBytes: Int32) throws {
        self.command = command
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw LogError.io(operation: "pipe", path: command, errno: errno) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }  // only the dup2'd copy reaches the child
        // A larger pipe (Linux F_SETPIPE_SZ): fewer switches between writer and reader.
        _ = fcntl(ends[1], shiplog_F_SETPIPE_SZ, pipeBytes)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[0], STDIN_FILENO)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let arguments = ["/bin/sh", "-c", command].map { $0.withCString { strdup($0) } }
        defer { arguments.forEach { free($0) } }
        var argv = arguments + [nil]
        var child: pid_t = 0
        let result = posix_spawn(&child, "/bin/sh", &actions, &attributes, &argv, environ)
        close(ends[0])
        guard result == 0 else {
            close(ends[1])
            throw LogError.io(operation: "posix_spawn /bin/sh -c '\(command)'", path: "/bin/sh", errno: result)
        }
        pid = child
        input = ends[1]
    }

    /// Closes the program's standard input, so it sees the end of the records.
    func closeInput() {
        guard input >= 0 else { return }
        close(input)
        input = -1
    }

    /// Closes its input if still open and waits for the program to end.
    func wait() -> Termination {
        closeInput()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED and friends are macros Swift does not import; this is their definition.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }
}
