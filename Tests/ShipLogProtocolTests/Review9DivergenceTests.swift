import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// Review of issue 9 (review9): where a diverged follower is cut back to.
@Suite struct Review9DivergenceTests {
    /// Primary: epoch 1 at 0..<10, epoch 3 at 10..<20. Follower: epoch 1 at 0..<8, then epoch 2
    /// (which the primary never saw) at 8..<12. They share 0..<8. Round one cuts the follower
    /// to 10 (its 8 and 9 are still epoch 2); round two, seeing last epoch 2 at 10, finds no cut
    /// that moves it back other than the primary's first offset, and resets the whole log: a
    /// full resync of everything where dropping two records (truncate to 8) was enough.
    @Test func aFollowerWithAnUnknownEpochIsCutToWhereThatEpochStartsNotReset() {
        var primary = ModelLog()
        for first in stride(from: 0, to: 10, by: 2) { try! primary.append(makeBatch(first: UInt64(first), epoch: 1, records: 2)) }
        for first in stride(from: 10, to: 20, by: 2) { try! primary.append(makeBatch(first: UInt64(first), epoch: 3, records: 2)) }
        var follower = ModelLog()
        for first in stride(from: 0, to: 8, by: 2) { try! follower.append(makeBatch(first: UInt64(first), epoch: 1, records: 2)) }
        for first in stride(from: 8, to: 12, by: 2) { try! follower.append(makeBatch(first: UInt64(first), epoch: 2, records: 2, tag: 9)) }

        var replies: [String] = []
        for _ in 0..<10 {
            let (kind, offset) = PrimaryReplicator.decideFollow(follower.end, log: primary.view)
            replies.append("\(kind) \(offset)")
            switch kind {
            case .stream: break
            case .truncate: follower.truncate(toNextOffset: offset); continue
            case .reset: follower.reset(startingAt: offset); continue
            }
            break
        }
        #expect(follower.contents(from: 0) == primary.contents(from: 0).prefix(follower.batches.count).map { $0 },
                "the follower ends as a prefix")
        #expect(follower.nextOffset == 8, "the shared prefix 0..<8 is kept; replies were \(replies)")
    }
}
