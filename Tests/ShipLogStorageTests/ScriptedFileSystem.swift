import Foundation
import Synchronization
@testable import ShipLogStorage

/// A file system that traces every call and lets a test script what happens at chosen calls:
/// fail it with an errno, hold it until the test releases it, or "crash" there (the call and
/// every later one fail without touching the disk, which is left as kill -9 would leave it;
/// the test then reopens with the real file system). This makes interleavings and crash
/// points deterministic instead of timing-dependent.
final class ScriptedFileSystem: FileSystem, @unchecked Sendable {
    enum Operation: String, Sendable {
        case open, write, read, sync, truncate, preallocate, list, createDirectory, remove, rename, syncDirectory
        /// Calls that change what is on disk: the places a crash can fall between.
        var changesDisk: Bool {
            switch self {
            case .write, .sync, .truncate, .preallocate, .createDirectory, .remove, .rename, .syncDirectory: true
            case .open, .read, .list: false
            }
        }
    }

    struct Call: Sendable, CustomStringConvertible {
        let operation: Operation
        let path: String
        var description: String { "\(operation.rawValue) \((path as NSString).lastPathComponent)" }
    }

    enum Action: Sendable {
        case fail(errno: Int32)
        case hold(Gate)
        case crash
    }

    struct Rule {
        let matches: @Sendable (Call) -> Bool
        let action: Action
        /// Matching calls to let through before acting.
        var skip: Int
        /// How many more times to act; nil for always.
        var times: Int?
    }

    private struct Shared {
        var trace: [Call] = []
        var rules: [Rule] = []
        var crashed = false
        var diskChanges = 0
        var crashAtDiskChange: Int?
        var failAtDiskChange: (change: Int, errno: Int32)?
        var failedDiskChange = false
    }

    let real = PosixFileSystem()
    private let shared = Mutex(Shared())

    var trace: [Call] { shared.withLock { $0.trace } }
    var crashed: Bool { shared.withLock { $0.crashed } }
    /// Calls that changed the disk so far: a crash can be placed before any of them.
    var diskChanges: Int { shared.withLock { $0.diskChanges } }

    func add(_ operation: Operation, pathSuffix: String = "", skip: Int = 0, times: Int? = 1, _ action: Action) {
        let rule = Rule(matches: { $0.operation == operation && $0.path.hasSuffix(pathSuffix) }, action: action, skip: skip, times: times)
        shared.withLock { $0.rules.append(rule) }
    }

    /// Crashes just before the `n`-th disk-changing call from now (1-based).
    func crash(beforeDiskChange n: Int) {
        shared.withLock { $0.crashAtDiskChange = $0.diskChanges + n }
    }

    /// Fails the `n`-th disk-changing call from now (1-based) with `errno`, once.
    func fail(diskChange n: Int, errno code: Int32) {
        shared.withLock {
            $0.failAtDiskChange = ($0.diskChanges + n, code)
            $0.failedDiskChange = false
        }
    }

    /// Whether the failure asked for by `fail(diskChange:errno:)` has happened.
    var failedDiskChange: Bool { shared.withLock { $0.failedDiskChange } }

    func clearRules() {
        shared.withLock {
            $0.rules.removeAll()
            $0.crashAtDiskChange = nil
            $0.failAtDiskChange = nil
        }
    }

    /// Records the call and carries out the rule that applies, if any; throws when the call
    /// must not happen.
    private func intercept(_ operation: Operation, _ path: String) throws {
        let call = Call(operation: operation, path: path)
        let action: Action? = shared.withLock { shared in
            shared.trace.append(call)
            if shared.crashed { return .crash }
            if operation.changesDisk {
                shared.diskChanges += 1
                if let at = shared.crashAtDiskChange, shared.diskChanges >= at {
                    shared.crashed = true
                    return .crash
                }
                if let failure = shared.failAtDiskChange, shared.diskChanges == failure.change {
                    shared.failedDiskChange = true
                    return .fail(errno: failure.errno)
                }
            }
            for i in shared.rules.indices where shared.rules[i].matches(call) {
                if shared.rules[i].skip > 0 {
                    shared.rules[i].skip -= 1
                    continue
                }
                if let times = shared.rules[i].times {
                    if times == 0 { continue }
                    shared.rules[i].times = times - 1
                }
                if case .crash = shared.rules[i].action { shared.crashed = true }
                return shared.rules[i].action
            }
            return nil
        }
        switch action {
        case nil: return
        case .fail(let code)?: throw LogError.io(operation: "\(operation.rawValue) (injected)", path: path, errno: code)
        case .crash?: throw LogError.io(operation: "\(operation.rawValue) (crashed)", path: path, errno: EIO)
        case .hold(let gate)?: gate.arriveAndWait()
        }
    }

    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        try intercept(create ? .write : .open, path)
        return ScriptedFile(real: try real.openFile(path, create: create), owner: self)
    }
    func openFileForReading(_ path: String) throws -> any StorageFile {
        try intercept(.open, path)
        return ScriptedFile(real: try real.openFileForReading(path), owner: self)
    }
    func contentsOfDirectory(_ path: String) throws -> [String] {
        try intercept(.list, path)
        return try real.contentsOfDirectory(path)
    }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws {
        try intercept(.createDirectory, path)
        try real.createDirectory(path)
    }
    func removeFile(_ path: String) throws {
        try intercept(.remove, path)
        try real.removeFile(path)
    }
    func rename(_ source: String, to destination: String) throws {
        try intercept(.rename, destination)
        try real.rename(source, to: destination)
    }
    func syncDirectory(_ path: String) throws {
        try intercept(.syncDirectory, path)
        try real.syncDirectory(path)
    }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }

    final class ScriptedFile: StorageFile, @unchecked Sendable {
        let real: any StorageFile
        let owner: ScriptedFileSystem
        init(real: any StorageFile, owner: ScriptedFileSystem) {
            self.real = real
            self.owner = owner
        }
        var path: String { real.path }
        func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
            try owner.intercept(.write, path)
            try real.write(bytes, at: position)
        }
        func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int {
            try owner.intercept(.read, path)
            return try real.read(into: buffer, at: position)
        }
        func sync() throws {
            try owner.intercept(.sync, path)
            try real.sync()
        }
        func truncate(to bytes: Int64) throws {
            try owner.intercept(.truncate, path)
            try real.truncate(to: bytes)
        }
        func preallocate(to bytes: Int64) throws {
            try owner.intercept(.preallocate, path)
            try real.preallocate(to: bytes)
        }
        func size() throws -> Int64 { try real.size() }
        func dataRanges(from position: Int64) throws -> [Range<Int64>] { try real.dataRanges(from: position) }
    }
}

/// Where a held call waits: the test learns that a call arrived, then lets it go on.
final class Gate: @unchecked Sendable {
    private let arrived = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)

    /// Whether the last held call ran inside a Swift task, that is on a thread of the
    /// cooperative pool, which it then blocks.
    private(set) var arrivedInTask = false

    func arriveAndWait() {
        arrivedInTask = withUnsafeCurrentTask { $0 != nil }
        arrived.signal()
        released.wait()
    }

    /// Waits (at most `seconds`) for a call to arrive; false if none did.
    func waitForArrival(seconds: Double = 10) -> Bool {
        arrived.wait(timeout: .now() + seconds) == .success
    }

    func release() { released.signal() }
}

/// Polls `condition` until it holds or `seconds` pass; for waiting on a state another thread
/// reaches (a request queued), never for the outcome a test asserts.
@discardableResult
func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(1_000)
    }
    return condition()
}

/// Runs `body` on a new thread; `join` waits (at most `seconds`) and returns its result, or
/// nil if it is still running (a hang).
final class Worker<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            result = Result { try body() }
            done.signal()
        }
        thread.start()
    }

    func join(seconds: Double = 20) -> Result<T, any Error>? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()
        return result
    }

    var isFinished: Bool {
        guard done.wait(timeout: .now()) == .success else { return false }
        done.signal()
        return true
    }
}

/// Opens a log in `dir` on a new scripted file system, for tests that hold, fail or crash
/// its calls.
func openScriptedLog(_ dir: TemporaryDirectory, _ options: LogOptions = smallOptions()) throws -> (SegmentLog, ScriptedFileSystem) {
    let fs = ScriptedFileSystem()
    var options = options
    options.fileSystem = fs
    return (try SegmentLog.open(directory: dir.logPath, options: options), fs)
}
