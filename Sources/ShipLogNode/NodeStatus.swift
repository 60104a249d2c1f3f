import Foundation
import NIOCore
import ShipLogProtocol

/// A node's state as `Node.status()` returns it and `statusReply` carries it (as JSON: the
/// protocol leaves the document to the shell).
public struct NodeStatus: Codable, Sendable, Equatable {
    public struct Follower: Codable, Sendable, Equatable {
        public var node: UInt64
        public var connected: Bool
        public var streaming: Bool
        public var inSync: Bool
        public var received: UInt64
        public var written: UInt64
        public var durable: UInt64
        public var lagRecords: UInt64
        public var lagBytes: Int64
        public var lagMilliseconds: Double
    }

    public var node: UInt64
    /// "primary" or "follower"; an automatic-role node may also be "candidate", "witness" or
    /// "failed" (it stopped taking part after a disk failure: `election.failure` says why).
    public var role: String
    /// The primary this node follows (followers only).
    public var primary: UInt64?
    public var epoch: UInt64
    public var firstOffset: UInt64
    public var nextOffset: UInt64
    public var durableNextOffset: UInt64
    /// Offsets below this are acknowledged to clients (primary), or known so from the primary (follower).
    public var commitOffset: UInt64
    /// The primary's view of each follower (primary only).
    public var followers: [Follower]
    /// Whether the follower is connected to its primary (followers only).
    public var connectedToPrimary: Bool?
    /// How long ago the follower last heard from its primary, in ms (followers only).
    public var lastHeardFromPrimaryMilliseconds: Double?
    /// The election and failure detector of an automatic-role node (nil for fixed roles).
    public var election: ElectionDetails? = nil

    func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? [UInt8](encoder.encode(self))) ?? []
    }

    public static func decode(json: [UInt8]) throws -> NodeStatus {
        try JSONDecoder().decode(NodeStatus.self, from: Data(json))
    }

    /// The multi-line text `shiplog status` prints.
    public var summary: String {
        var lines = ["node \(node): \(role)\(primary.map { " of node \($0)" } ?? ""), epoch \(epoch)",
                     "log: offsets \(firstOffset)..<\(nextOffset), durable below \(durableNextOffset), committed below \(commitOffset)"]
        if let connected = connectedToPrimary {
            let heard = lastHeardFromPrimaryMilliseconds.map { String(format: ", last heard %.1f ms ago", $0) } ?? ""
            lines.append("primary: \(connected ? "connected" : "disconnected")\(heard)")
        }
        if let election { lines += election.summaryLines }
        for f in followers {
            let state = f.connected ? (f.streaming ? "streaming" : "connected") : "disconnected"
            let lag = String(format: "%.1f", f.lagMilliseconds)
            lines.append("follower node \(f.node): \(state)\(f.inSync ? ", in sync" : ""), received \(f.received), "
                         + "written \(f.written), durable \(f.durable), lag \(f.lagRecords) records, \(f.lagBytes) bytes, \(lag) ms")
        }
        return lines.joined(separator: "\n")
    }
}

extension NodeStatus.Follower {
    init(_ status: PrimaryReplicator.FollowerStatus) {
        self.init(node: status.node.rawValue, connected: status.connection != nil, streaming: status.streaming,
                  inSync: status.inSync, received: status.progress.received, written: status.progress.written,
                  durable: status.progress.durable, lagRecords: status.lagRecords, lagBytes: status.lagBytes,
                  lagMilliseconds: status.lag.milliseconds)
    }
}

/// Answers a `statusRequest` unless the channel is not writable: then earlier replies are still
/// unsent because the peer is not reading them, and a peer that keeps asking must not grow the
/// node's outbound buffer without bound. The request is dropped; the peer asks again later.
func replyToStatusRequest(on channel: any Channel, _ status: () -> NodeStatus) {
    guard channel.isWritable else { return }
    channel.writeAndFlush(Frame.statusReply(.init(json: status().json())), promise: nil)
}
