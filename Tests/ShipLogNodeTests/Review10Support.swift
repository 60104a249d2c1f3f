import Foundation
import Logging
import Metrics
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization
import Testing

/// A file system whose fsyncs can be made to fail (EIO) at a switch, for one node of a cluster.
final class Review10FaultyFileSystem: FileSystem, @unchecked Sendable {
    let real = PosixFileSystem()
    let failSyncs = Mutex(false)
    /// File fsyncs that went through (for group-commit checks).
    let syncs = Mutex(0)

    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        Review10FaultyFile(real: try real.openFile(path, create: create), owner: self)
    }
    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func rename(_ source: String, to destination: String) throws { try real.rename(source, to: destination) }
    func syncDirectory(_ path: String) throws {
        if failSyncs.withLock({ $0 }) { throw LogError.io(operation: "fsync", path: path, errno: EIO) }
        try real.syncDirectory(path)
    }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }
}

final class Review10FaultyFile: StorageFile, @unchecked Sendable {
    let real: any StorageFile
    let owner: Review10FaultyFileSystem
    init(real: any StorageFile, owner: Review10FaultyFileSystem) {
        self.real = real
        self.owner = owner
    }
    var path: String { real.path }
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws { try real.write(bytes, at: position) }
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int { try real.read(into: buffer, at: position) }
    func sync() throws {
        if owner.failSyncs.withLock({ $0 }) { throw LogError.io(operation: "fsync", path: path, errno: EIO) }
        try real.sync()
        owner.syncs.withLock { $0 += 1 }
    }
    func truncate(to bytes: Int64) throws { try real.truncate(to: bytes) }
    func preallocate(to bytes: Int64) throws { try real.preallocate(to: bytes) }
    func size() throws -> Int64 { try real.size() }
    func dataRanges(from position: Int64) throws -> [Range<Int64>] { try real.dataRanges(from: position) }
}

/// Automatic-role nodes started by the test itself (so each can get its own file system),
/// on the ports and directories of `cluster`.
final class Review10Nodes: @unchecked Sendable {
    let cluster: AutoCluster
    let fileSystems: [NodeID: Review10FaultyFileSystem]
    private let table = Mutex<[NodeID: Node]>([:])
    var nodes: [NodeID: Node] { table.withLock { $0 } }

    init(voters: Int = 3, witnesses: Set<NodeID> = [], heartbeat: Duration = .milliseconds(50),
         timeout: Duration = .milliseconds(300)) async throws {
        cluster = try await AutoCluster(voters: voters, witnesses: witnesses, heartbeat: heartbeat, timeout: timeout)
        var systems: [NodeID: Review10FaultyFileSystem] = [:]
        for id in cluster.ids { systems[id] = Review10FaultyFileSystem() }
        fileSystems = systems
    }

    func configuration(_ id: NodeID) -> NodeConfiguration {
        var configuration = cluster.configuration(id)
        configuration.logOptions.fileSystem = fileSystems[id]!
        configuration.logOptions.durability = .fsync
        configuration.clusterMetricsFactory = metrics
        return configuration
    }

    /// Every node's log lines and election counters, for tests that check what the operator is told.
    let lines = Review10LogLines()
    let metrics = Review10Metrics()

    /// Starts every node, waits for a primary and for a first sync append through it (so the
    /// followers are streaming), and returns the primary. 30 s each: in a full parallel run
    /// beside the crash and recovery suites' disk traffic, 10 s for the first sync append was
    /// once too short; alone it takes under a second.
    func startWithStreamingPrimary() async throws -> NodeID {
        try await startAll()
        let ids = cluster.ids
        var primary: NodeID?
        try await waitUntil("a primary", timeout: .seconds(30)) {
            primary = await self.primary(among: ids)
            return primary != nil
        }
        let old = try #require(primary)
        try await waitUntil("a first sync append", timeout: .seconds(30)) {
            (try? await self.nodes[old]!.append([record(0)], mode: .sync(quorum: 1))) != nil
        }
        return old
    }

    @discardableResult
    func start(_ id: NodeID) async throws -> Node {
        let node = Node(configuration: configuration(id), logger: Logger(label: "review10") { _ in Review10LogHandler(lines: lines) })
        try await node.start()
        table.withLock { $0[id] = node }
        return node
    }

    /// Crashes `id` (no goodbye, no clean-shutdown marker).
    func crash(_ id: NodeID) async throws {
        let node = table.withLock { $0.removeValue(forKey: id) }
        try await node?.stopAsCrash()
    }

    func startAll() async throws { for id in cluster.ids { try await start(id) } }

    func stopAll() async {
        let all = table.withLock { nodes in
            defer { nodes = [:] }
            return nodes
        }
        for (_, node) in all { try? await node.stop() }
    }

    /// The one node that says it is primary, among `among` (nil until exactly one does).
    func primary(among ids: [NodeID]) async -> NodeID? {
        var found: [NodeID] = []
        for id in ids {
            if let node = nodes[id], let status = try? await node.status(), status.role == "primary" { found.append(id) }
        }
        return found.count == 1 ? found[0] : nil
    }
}

final class Review10LogLines: Sendable {
    let all = Mutex<[String]>([])
}

/// Keeps every line at notice or above, with its metadata, in `lines`.
struct Review10LogHandler: LogHandler {
    let lines: Review10LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .notice
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let text = "\(event.level) \(merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) \(event.message)"
        lines.all.withLock { $0.append(text) }
    }
}

/// Counters kept in memory, by label and `node` dimension, so a test can read what a node
/// counted without bootstrapping the process's `MetricsSystem`.
final class Review10Metrics: MetricsFactory, Sendable {
    let counts = Mutex<[String: Int64]>([:])

    func value(_ label: String, node: NodeID) -> Int64 { counts.withLock { $0["\(label) \(node.rawValue)"] ?? 0 } }

    final class Handler: CounterHandler, RecorderHandler, TimerHandler, Sendable {
        let key: String
        let owner: Review10Metrics
        init(key: String, owner: Review10Metrics) {
            self.key = key
            self.owner = owner
        }
        func increment(by amount: Int64) { owner.counts.withLock { $0[key, default: 0] += amount } }
        func reset() { owner.counts.withLock { $0[key] = 0 } }
        func record(_ value: Int64) {}
        func record(_ value: Double) {}
        func recordNanoseconds(_ duration: Int64) {}
    }

    private func handler(_ label: String, _ dimensions: [(String, String)]) -> Handler {
        Handler(key: "\(label) \(dimensions.first { $0.0 == "node" }?.1 ?? "")", owner: self)
    }
    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { handler(label, dimensions) }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { handler(label, dimensions) }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { handler(label, dimensions) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
