import NIOCore
import NIOPosix
import ShipLogProtocol

/// Asks a running automatic-role primary to hand leadership to another node, as
/// `shiplog switchover --to NODE ADDRESS` does: connects, proves the cluster key as the
/// operator (`NodeStatusClient.operatorID`), sends `switchoverRequest` and waits for the
/// node's `statusReply` (sent once it follows the target) or its `goodbye` saying why not.
public enum NodeSwitchoverClient {
    public typealias Failure = OperatorRequestFailure

    /// Returns the primary's status after the handover (it now follows `target`).
    public static func request(_ target: NodeID, from address: PeerAddress, clusterKey: [UInt8], timeout: Duration = .seconds(10),
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NodeStatus {
        try await operatorRequest(.switchoverRequest(target: target), to: address, clusterKey: clusterKey, timeout: timeout,
                                  maxFrameBytes: 1 << 20, group: group)
    }
}
