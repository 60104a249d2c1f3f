import Foundation
import NIOCore
import NIOPosix
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage

/// A directory removed when the test ends.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "shiplog-node-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func sub(_ name: String) -> String { path + "/" + name }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes (then throws, naming `what`).
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    if try await condition() { return }
    throw TimedOut(what: what)
}

let testKey = Array("a cluster key for the node tests".utf8)

/// A primary and followers in this process, on 127.0.0.1 with ports the system picks.
final class LocalCluster {
    let directory: TemporaryDirectory
    let primary: Node
    var followers: [Node]
    let replication: ReplicationConfiguration
    var primaryAddress: PeerAddress

    static let primaryID = NodeID(1)

    /// Starts `count` followers (nodes 2, 3, ...); the primary expects `expecting` (default:
    /// those) and the cluster is ready once `waitFor` (default: all expected) are in sync.
    init(followers count: Int, replication base: ReplicationConfiguration = ReplicationConfiguration(),
         key: [UInt8] = testKey, expecting: [NodeID]? = nil, waitFor: [NodeID]? = nil) async throws {
        directory = try TemporaryDirectory()
        var replication = base
        let started = (0..<count).map { NodeID(UInt64($0 + 2)) }
        replication.followers = expecting ?? started
        replication.heartbeatInterval = .milliseconds(50)
        self.replication = replication
        var configuration = NodeConfiguration(id: Self.primaryID, logDirectory: directory.sub("1"), clusterKey: key, role: .primary)
        configuration.replication = replication
        configuration.logOptions.segmentBytes = 256 << 10
        primary = Node(configuration: configuration)
        try await primary.start()
        primaryAddress = PeerAddress(host: "127.0.0.1", port: primary.listeningPort!)
        followers = []
        for id in started {
            let follower = makeFollower(id)
            try await follower.start()
            followers.append(follower)
        }
        try await waitForStreaming(waitFor ?? replication.followers)
    }

    /// Waits until every follower the primary expects is streaming and in sync (so sync appends can succeed).
    func waitForStreaming(_ nodes: [NodeID]? = nil, timeout: Duration = .seconds(10)) async throws {
        let expected = Set((nodes ?? replication.followers).map(\.rawValue))
        try await waitUntil("the primary to stream to \(expected.sorted())", timeout: timeout) {
            let streaming = try await primary.status().followers.filter { $0.connected && $0.streaming && $0.inSync }.map(\.node)
            return expected.isSubset(of: Set(streaming))
        }
    }

    func makeFollower(_ id: NodeID, key: [UInt8] = testKey) -> Node {
        var configuration = NodeConfiguration(id: id, logDirectory: directory.sub("\(id.rawValue)"), clusterKey: key,
                                              role: .follower(of: Self.primaryID))
        configuration.peers = [Self.primaryID: primaryAddress]
        configuration.replication = replication
        configuration.logOptions.segmentBytes = 256 << 10
        return Node(configuration: configuration)
    }

    func stop() async throws {
        for follower in followers { try await follower.stop() }
        try await primary.stop()
    }

    /// Waits until every follower's log ends where the primary's does.
    func waitForFollowers(timeout: Duration = .seconds(20)) async throws {
        let end = try primary.log.nextOffset
        for follower in followers {
            try await waitUntil("\(follower.configuration.id) to reach offset \(end)", timeout: timeout) {
                try follower.log.nextOffset >= end
            }
        }
    }
}

/// Every record of `log`, for record-by-record comparison.
func allRecords(_ log: SegmentLog) throws -> [LogRecord] {
    try log.records(in: log.firstOffset..<log.nextOffset)
}

func record(_ i: Int, size: Int = 100) -> [UInt8] {
    var bytes = Array("record \(i) ".utf8)
    while bytes.count < size { bytes.append(UInt8(truncatingIfNeeded: i &+ bytes.count)) }
    return bytes
}

/// Connects to `address` without a key, writes `bytes`, and reports whether the node closed the
/// connection within `timeout`.
func nodeCloses(_ address: PeerAddress, after bytes: [UInt8], timeout: Duration = .seconds(5)) async throws -> Bool {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: address.host, port: address.port).get()
    // The node may close the connection on the first bad bytes, before the rest are written:
    // the write then fails, and the close below is what the caller asked about.
    if !bytes.isEmpty { try? await channel.writeAndFlush(ByteBuffer(bytes: bytes)) }
    let closed = channel.closeFuture
    return try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask { try await closed.get(); return true }
        group.addTask { try await Task.sleep(for: timeout); return false }
        let first = try await group.next()!
        group.cancelAll()
        channel.close(promise: nil)
        return first
    }
}
