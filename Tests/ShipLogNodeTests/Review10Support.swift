import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization

/// A file system whose fsyncs can be made to fail (EIO) at a switch, for one node of a cluster.
final class Review10FaultyFileSystem: FileSystem, @unchecked Sendable {
    let real = PosixFileSystem()
    let failSyncs = Mutex(false)

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

    init(voters: Int = 3, witnesses: Set<NodeID> = []) async throws {
        cluster = try await AutoCluster(voters: voters, witnesses: witnesses)
        var systems: [NodeID: Review10FaultyFileSystem] = [:]
        for id in cluster.ids { systems[id] = Review10FaultyFileSystem() }
        fileSystems = systems
    }

    func configuration(_ id: NodeID) -> NodeConfiguration {
        var configuration = cluster.configuration(id)
        configuration.logOptions.fileSystem = fileSystems[id]!
        configuration.logOptions.durability = .fsync
        return configuration
    }

    @discardableResult
    func start(_ id: NodeID) async throws -> Node {
        let node = Node(configuration: configuration(id))
        try await node.start()
        table.withLock { $0[id] = node }
        return node
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
