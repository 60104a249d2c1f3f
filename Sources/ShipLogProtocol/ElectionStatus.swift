/// What `shiplog status` shows of a node's election: its role and epoch, the primary it follows,
/// and the failure detector's state.
public struct ElectionStatus: Equatable, Sendable {
    public var role: Election.Role
    public var epoch: UInt64
    public var votedFor: NodeID?
    /// The primary followed (this node when primary); nil when none is known.
    public var primary: NodeID?
    public var isWitness: Bool
    /// Time since the followed primary was last heard (nil when none is followed).
    public var silentFor: Duration?
    /// The detector's phi now (fixed timeout: 0 before the timeout, infinity after).
    public var phi: Double
    public var suspected: Bool
    /// This node's place in the latest succession ranking (0 = first to campaign).
    public var rank: Int
    /// On the primary: the succession ranking its heartbeats carry.
    public var ranking: [NodeID]
    /// On the primary: the node a switchover is handing leadership to.
    public var transferTarget: NodeID?
}

extension Election {
    public func status(now: Duration) -> ElectionStatus {
        ElectionStatus(
            role: role, epoch: epoch, votedFor: durable.votedFor, primary: primary, isWitness: isWitness,
            silentFor: role == .primary ? nil : lastPrimaryContact.map { now - $0 },
            phi: role == .follower ? detector.phi(now: now) : 0,
            suspected: role == .follower && primary != nil && detector.isSuspected(now: now),
            rank: rank, ranking: role == .primary ? successionRanking() : ranking,
            transferTarget: leader?.transfer?.target)
    }
}
