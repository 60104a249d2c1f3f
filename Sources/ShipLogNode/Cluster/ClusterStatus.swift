import Foundation
import ShipLogProtocol

extension NodeStatus {
    /// What `shiplog status` shows of an automatic-role node's election (issue 10): its part in
    /// the election, its vote, and the failure detector's state.
    public struct ElectionDetails: Codable, Sendable, Equatable {
        /// The election's own role: "follower", "preCandidate", "candidate" or "primary".
        public var electionRole: String
        /// Whom this node voted for in its current epoch.
        public var votedFor: UInt64?
        /// The detector: "fixed timeout 0.3 seconds" or "phi accrual, threshold 8.0".
        public var detector: String
        /// The detector's phi now (nil when infinite: a fixed timeout that has passed).
        public var phi: Double?
        /// Whether the detector suspects the followed primary.
        public var suspected: Bool
        /// This node's place in the succession ranking (0 campaigns first).
        public var rank: Int
        /// The succession ranking (the primary's own, or the last its heartbeats carried).
        public var ranking: [UInt64]
        /// On the primary: the node a switchover hands leadership to.
        public var transferTarget: UInt64?
        /// The voters this node has an authenticated connection to.
        public var connectedPeers: [UInt64]
        /// Why the node stopped taking part, if it failed.
        public var failure: String?

        public init(electionRole: String, votedFor: UInt64?, detector: String, phi: Double?, suspected: Bool, rank: Int,
                    ranking: [UInt64], transferTarget: UInt64?, connectedPeers: [UInt64], failure: String?) {
            self.electionRole = electionRole
            self.votedFor = votedFor
            self.detector = detector
            self.phi = phi
            self.suspected = suspected
            self.rank = rank
            self.ranking = ranking
            self.transferTarget = transferTarget
            self.connectedPeers = connectedPeers
            self.failure = failure
        }

        var summaryLines: [String] {
            let phiText = phi.map { String(format: "%.2f", $0) } ?? "infinite"
            var lines = [
                "election: \(electionRole), voted for \(votedFor.map { "node \($0)" } ?? "nobody"), rank \(rank)"
                    + (ranking.isEmpty ? "" : ", ranking \(ranking.map(String.init).joined(separator: " > "))"),
                "detector: \(detector), phi \(phiText), \(suspected ? "suspects the primary" : "primary not suspected")",
                "connected to: \(connectedPeers.isEmpty ? "no voter" : connectedPeers.map { "node \($0)" }.joined(separator: ", "))",
            ]
            if let transferTarget { lines.append("switchover: handing leadership to node \(transferTarget)") }
            if let failure { lines.append("FAILED: \(failure)") }
            return lines
        }
    }
}
