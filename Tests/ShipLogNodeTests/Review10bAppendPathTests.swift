import Foundation
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Synchronization
import Testing

/// A file system that counts file fsyncs (for group-commit checks).
final class Review10bCountingFileSystem: FileSystem, @unchecked Sendable {
    let real = PosixFileSystem()
    let syncs = Mutex(0)
    func openFile(_ path: String, create: Bool) throws -> any StorageFile {
        Review10bCountingFile(real: try real.openFile(path, create: create), owner: self)
    }
    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }
    func isDirectory(_ path: String) -> Bool? { real.isDirectory(path) }
    func fileSize(_ path: String) -> Int64? { real.fileSize(path) }
    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func removeFile(_ path: String) throws { try real.removeFile(path) }
    func rename(_ source: String, to destination: String) throws { try real.rename(source, to: destination) }
    func syncDirectory(_ path: String) throws { try real.syncDirectory(path) }
    func lockFile(_ path: String) throws -> any FileLock { try real.lockFile(path) }
}

final class Review10bCountingFile: StorageFile, @unchecked Sendable {
    let real: any StorageFile
    let owner: Review10bCountingFileSystem
    init(real: any StorageFile, owner: Review10bCountingFileSystem) {
        self.real = real
        self.owner = owner
    }
    var path: String { real.path }
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws { try real.write(bytes, at: position) }
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws -> Int { try real.read(into: buffer, at: position) }
    func sync() throws {
        owner.syncs.withLock { $0 += 1 }
        try real.sync()
    }
    func truncate(to bytes: Int64) throws { try real.truncate(to: bytes) }
    func preallocate(to bytes: Int64) throws { try real.preallocate(to: bytes) }
    func size() throws -> Int64 { try real.size() }
    func dataRanges(from position: Int64) throws -> [Range<Int64>] { try real.dataRanges(from: position) }
}

/// The loose end "the cluster append path does one pool round trip per append": with
/// `durability: .fsync`, concurrent appends on an automatic-role primary each pay their own
/// fdatasync, one after another on the log's line of operations (the fixed-role path shares one
/// among appends that arrive together). Confirmed, not fixed: recorded as a known issue.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Review10bAppendPathTests {
    @Test func concurrentFsyncAppendsOnAClusterPrimaryShareFdatasyncs() async throws {
        let cluster = try await AutoCluster(heartbeat: .milliseconds(100), timeout: .seconds(2))
        let counters = Dictionary(uniqueKeysWithValues: cluster.ids.map { ($0, Review10bCountingFileSystem()) })
        var nodes: [Node] = []
        defer { let all = nodes; Task { for node in all { try? await node.stop() } } }
        for id in cluster.ids {
            var configuration = cluster.configuration(id)
            configuration.logOptions.fileSystem = counters[id]!
            configuration.logOptions.durability = .fsync
            let node = Node(configuration: configuration)
            try await node.start()
            nodes.append(node)
        }
        var primary: Node?
        try await waitUntil("a primary", timeout: .seconds(10)) {
            for node in nodes where try await node.status().role == "primary" { primary = node }
            return primary != nil
        }
        let node = try #require(primary)
        _ = try await node.append([record(0)], mode: .sync(quorum: 1))
        let counter = counters[NodeID(UInt64(try await node.status().node))]!
        let count = 64
        let before = counter.syncs.withLock { $0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count { group.addTask { _ = try await node.append([record(i + 1)], mode: .async) } }
            try await group.waitForAll()
        }
        let syncs = counter.syncs.withLock { $0 } - before
        withKnownIssue("one fdatasync per append on the cluster path (ClusterDriver.writeAppend)") {
            #expect(syncs < count / 2, "\(count) concurrent appends took \(syncs) fdatasyncs")
        }
        for node in nodes { try await node.stop() }
    }
}
