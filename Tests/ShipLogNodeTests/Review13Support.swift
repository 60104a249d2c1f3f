import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization
import Testing

/// A file system whose writes can be slowed to a rate at a switch (a slow or contended disk),
/// for one node of a cluster: each write sleeps `bytes / bytesPerSecond` before it is made.
/// The sleep is on the thread that writes (the node's thread pool), never on its event loop.
final class Review13ThrottledFileSystem: FileSystem, @unchecked Sendable {
    let real = PosixFileSystem()
    /// 0: writes at full speed.
    let bytesPerSecond = Mutex(0)

    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        Review13ThrottledFile(real: try real.openFile(path, create: create), owner: self)
    }
    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func rename(_ source: String, to destination: String) throws { try real.rename(source, to: destination) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }

    func throttle(_ bytes: Int) {
        let rate = bytesPerSecond.withLock { $0 }
        guard rate > 0, bytes > 0 else { return }
        usleep(useconds_t(min(2_000_000, bytes * 1_000_000 / rate)))
    }
}

final class Review13ThrottledFile: StorageFile, @unchecked Sendable {
    let real: any StorageFile
    let owner: Review13ThrottledFileSystem
    init(real: any StorageFile, owner: Review13ThrottledFileSystem) {
        self.real = real
        self.owner = owner
    }
    var path: String { real.path }
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        owner.throttle(bytes.count)
        try real.write(bytes, at: position)
    }
    func write(gathering parts: [[UInt8]], at position: Int64) throws {
        owner.throttle(parts.reduce(0) { $0 + $1.count })
        try real.write(gathering: parts, at: position)
    }
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int { try real.read(into: buffer, at: position) }
    func sync() throws { try real.sync() }
    func truncate(to bytes: Int64) throws { try real.truncate(to: bytes) }
    func preallocate(to bytes: Int64) throws { try real.preallocate(to: bytes) }
    func size() throws -> Int64 { try real.size() }
    func dataRanges(from position: Int64) throws -> [Range<Int64>] { try real.dataRanges(from: position) }
}

/// Automatic-role nodes on `cluster`'s ports and directories, each on its own throttled file system.
final class Review13Nodes: @unchecked Sendable {
    /// Every node of this process writes its log on `NIOThreadPool.singleton` (as many threads
    /// as cores): two followers on slow disks keep two of its threads asleep for seconds, which
    /// on a 2-core machine starves the nodes of every other test running in parallel (their
    /// votes' fsyncs time out). So the slow-disk tests run only when asked, in a process of
    /// their own: `SHIPLOG_SLOW_DISK_TESTS=1 NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT=8 swift test --filter Review13`.
    static let slowDiskTestsEnabled = ProcessInfo.processInfo.environment["SHIPLOG_SLOW_DISK_TESTS"] != nil
    static let slowDiskTestsReason: Comment = "slow disks occupy the shared thread pool: set SHIPLOG_SLOW_DISK_TESTS=1 and run them alone"

    let cluster: AutoCluster
    let fileSystems: [NodeID: Review13ThrottledFileSystem]
    private let table = Mutex<[NodeID: Node]>([:])
    var nodes: [NodeID: Node] { table.withLock { $0 } }

    init(voters: Int = 3, replication: ReplicationConfiguration) async throws {
        // The default timings: heartbeats every 100 ms, an election timeout of 1 s.
        cluster = try await AutoCluster(voters: voters, heartbeat: .milliseconds(100), timeout: .seconds(1), replication: replication)
        fileSystems = Dictionary(uniqueKeysWithValues: cluster.ids.map { ($0, Review13ThrottledFileSystem()) })
    }

    func startAll() async throws {
        for id in cluster.ids { try await start(id) }
    }

    /// Starts every node and waits (20 s at most each) for one primary and a first sync append
    /// through it: the cluster is then elected and replicating.
    func startWithPrimary() async throws -> (primary: NodeID, node: Node) {
        try await startAll()
        var found: NodeID?
        try await waitUntil("a primary", timeout: .seconds(20)) {
            found = await self.primary()
            return found != nil
        }
        let primary = try #require(found)
        let node = try #require(nodes[primary])
        try await waitUntil("a first sync append", timeout: .seconds(20)) {
            (try? await node.append([record(0)], mode: .sync(quorum: 1))) != nil
        }
        return (primary, node)
    }

    @discardableResult
    func start(_ id: NodeID) async throws -> Node {
        var configuration = cluster.configuration(id)
        configuration.logOptions.fileSystem = fileSystems[id]!
        // Uncompressed: a debug build's LZ4 would hold the primary's appends below the disks' rate.
        configuration.logOptions.compression = .none
        let node = Node(configuration: configuration)
        try await node.start()
        table.withLock { $0[id] = node }
        return node
    }

    /// Crashes `id` (connections dropped without goodbye, no clean-shutdown marker).
    func crash(_ id: NodeID) async throws {
        let node = table.withLock { $0.removeValue(forKey: id) }
        try await node?.stopAsCrash()
    }

    /// Stops `id` cleanly, runs `meanwhile`, and starts it again on its directory.
    func restart(_ id: NodeID, meanwhile: () async throws -> Void) async throws -> Node {
        let node = table.withLock { $0.removeValue(forKey: id) }
        try await node?.stop()
        try await meanwhile()
        return try await start(id)
    }

    func stopAll() async {
        for system in fileSystems.values { system.bytesPerSecond.withLock { $0 = 0 } }
        let all = table.withLock { nodes in
            defer { nodes = [:] }
            return nodes
        }
        for (_, node) in all { try? await node.stop() }
    }

    /// The one node that says it is primary (nil until exactly one does).
    func primary() async -> NodeID? {
        var found: [NodeID] = []
        for (id, node) in nodes {
            if let status = try? await node.status(), status.role == "primary" { found.append(id) }
        }
        return found.count == 1 ? found[0] : nil
    }

    /// The highest epoch any running node reports.
    func highestEpoch() async -> UInt64 {
        var highest: UInt64 = 0
        for node in nodes.values { if let status = try? await node.status() { highest = max(highest, status.epoch) } }
        return highest
    }
}
