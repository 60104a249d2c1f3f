import ArgumentParser
import Foundation
import ShipLogNode

/// `shiplog status ADDRESS`: a running node's role, epoch, offsets and each follower's lag.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a running node's role, epoch, offsets and its followers' lag.",
        discussion: "The cluster key comes from --key-file or the environment variable SHIPLOG_CLUSTER_KEY.")

    @Argument(help: "The node's HOST:PORT.") var address: String
    @Flag(help: "Print the status document as JSON.") var json = false
    @Option(name: .customLong("key-file"), help: "A file holding the cluster key.") var keyFile: String?
    @Option(name: .customLong("timeout-ms"), help: "How long to wait for the reply.") var timeoutMs: Int = 5000

    func run() throws {
        guard let peer = PeerAddress(parsing: address) else { throw ToolFailure.usage("\(address) is not HOST:PORT") }
        let key = try loadClusterKey(keyFile: keyFile)
        let timeout = Duration.milliseconds(timeoutMs)
        let status: NodeStatus
        do {
            status = try runBlocking { try await NodeStatusClient.fetch(from: peer, clusterKey: key, timeout: timeout) }
        } catch {
            throw ToolFailure.failed("status: \(error)")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
        } else {
            print(status.summary)
        }
    }
}
