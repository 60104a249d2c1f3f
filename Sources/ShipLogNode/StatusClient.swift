import NIOCore
import NIOPosix
import ShipLogProtocol

/// Asks a running node for its status, as `shiplog status` does: connects, proves the cluster
/// key (as the operator's node id, `NodeStatusClient.operatorID`), sends `statusRequest` and
/// decodes the `statusReply`.
public enum NodeStatusClient {
    /// The node id an operator's tool uses; no configured node should use it.
    public static let operatorID = NodeID(UInt64.max)

    public typealias Failure = OperatorRequestFailure

    public static func fetch(from address: PeerAddress, clusterKey: [UInt8], timeout: Duration = .seconds(5),
                             maxFrameBytes: Int = ReplicationConfiguration().maxFrameBytes,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NodeStatus {
        try await operatorRequest(.statusRequest, to: address, clusterKey: clusterKey, timeout: timeout,
                                  maxFrameBytes: maxFrameBytes, group: group)
    }
}
