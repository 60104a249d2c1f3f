import ArgumentParser
import Foundation
import ShipLogNode
import ShipLogProtocol

/// `shiplog switchover --to NODE ADDRESS`: asks the primary at ADDRESS to hand leadership to
/// NODE once NODE has caught up (Redis FAILOVER, Patroni switchover), and waits until it has.
struct Switchover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hand leadership of an automatic-role cluster from the primary at ADDRESS to node --to.",
        discussion: """
            Appends pause on the primary until the target has everything the primary has, then the \
            target takes over. Prints the old primary's status afterwards. The cluster key comes from \
            --key-file or the environment variable SHIPLOG_CLUSTER_KEY.
            """)

    @Option(help: "The node to hand leadership to.") var to: UInt64
    @Argument(help: "The current primary's HOST:PORT.") var address: String
    @Option(name: .customLong("key-file"), help: "A file holding the cluster key.") var keyFile: String?
    @Option(name: .customLong("timeout-ms"), help: "How long to wait for the handover.") var timeoutMs: Int = 10_000

    func run() throws {
        guard let primary = PeerAddress(parsing: address) else { throw ToolFailure.usage("\(address) is not HOST:PORT") }
        let key = try loadClusterKey(keyFile: keyFile)
        let (target, timeout) = (NodeID(to), Duration.milliseconds(timeoutMs))
        let status: NodeStatus
        do {
            status = try runBlocking { try await NodeSwitchoverClient.request(target, from: primary, clusterKey: key, timeout: timeout) }
        } catch {
            throw ToolFailure.failed("switchover: \(error)")
        }
        print("node \(to) is primary now")
        print(status.summary)
    }
}
