import ShipLogStorage
import Testing
@testable import ShipLogProtocol

@Suite struct FollowDecisionTests {
    /// Primary: epoch 1 at 0..<10, epoch 3 at 10..<20, epoch 5 at 20..<30; first offset 0.
    let view = PrimaryReplicator.LogView(firstOffset: 0, nextOffset: 30, epochs: EpochHistory(entries: [
        .init(epoch: 1, startOffset: 0), .init(epoch: 3, startOffset: 10), .init(epoch: 5, startOffset: 20)]))

    func decide(_ n: UInt64, _ e: UInt64?, _ v: PrimaryReplicator.LogView? = nil) -> String {
        let d = PrimaryReplicator.decideFollow(LogEnd(nextOffset: n, lastEpoch: e), log: v ?? view)
        return "\(d.kind) \(d.offset)"
    }

    @Test func decisions() {
        #expect(decide(0, nil) == "stream 0")
        #expect(decide(5, nil) == "reset 0")
        #expect(decide(7, 1) == "stream 7")
        #expect(decide(10, 1) == "stream 10")      // epoch 1 covers offset 9
        #expect(decide(12, 1) == "truncate 10")    // the follower has more of epoch 1 than the primary
        #expect(decide(15, 3) == "stream 15")
        #expect(decide(30, 5) == "stream 30")
        #expect(decide(35, 5) == "truncate 30")    // ahead of the primary in the same epoch
        #expect(decide(15, 2) == "truncate 10")    // epoch 2 is not the primary's: cut to where epoch 1 ends
        #expect(decide(8, 2) == "truncate 7")     // epoch 1 runs past 8: the last batch (of epoch 2) goes, then compare again
        #expect(decide(25, 4) == "truncate 20")
        #expect(decide(12, 4) == "truncate 11")    // epoch 3 runs past 12: cut the last batch (of 4), keep the rest of 3
        #expect(decide(1, 2) == "reset 0")         // nothing would be left to compare
        #expect(decide(22, 0) == "reset 0")        // nothing at or below epoch 0
        let retained = PrimaryReplicator.LogView(firstOffset: 15, nextOffset: 30, epochs: EpochHistory(entries: [
            .init(epoch: 3, startOffset: 15), .init(epoch: 5, startOffset: 20)]))
        #expect(decide(12, 3, retained) == "reset 15")
        #expect(decide(15, 3, retained) == "reset 15")
        #expect(decide(16, 3, retained) == "stream 16")
        #expect(decide(15, nil, retained) == "stream 15")
        #expect(decide(0, nil, retained) == "reset 15")
    }
}
