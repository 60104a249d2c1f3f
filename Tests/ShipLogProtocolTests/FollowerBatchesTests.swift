import ShipLogProtocol
import ShipLogStorage
import Testing

/// A `batches` frame on the follower: every batch's CRC is checked once, by the machine, and the
/// checked batches are what `.append` hands the shell (the log does not check them again); a
/// damaged batch closes the connection before anything is counted or written; a batch can never
/// reach past its frame.
@Suite struct FollowerBatchesTests {
    static func streamingFollower() -> FollowerReplicator {
        var f = FollowerReplicator(configuration: ReplicationConfiguration(), nodeID: NodeID(2), log: LogEnd(nextOffset: 0, lastEpoch: nil),
                                   durableNextOffset: 0, knownEpoch: 0, now: .zero)
        _ = f.connected(now: .zero)
        _ = f.received(.followReply(.init(kind: .stream, offset: 0, epoch: 1)), now: .zero)
        #expect(f.isStreaming)
        return f
    }

    static func threeBatches() -> [[UInt8]] {
        [makeBatch(first: 0, epoch: 1, records: 2), makeBatch(first: 2, epoch: 1, records: 3), makeBatch(first: 5, epoch: 1, records: 1)]
    }

    @Test func theAppendCarriesTheCheckedBatchesOfTheFrame() {
        var f = Self.streamingFollower()
        let batches = Self.threeBatches()
        let actions = f.received(.batches(.init(epoch: 1, commitOffset: 0, batches: batches)), now: .zero)
        let appends = actions.compactMap { action -> [StoredBatch]? in
            if case .append(let stored) = action { return stored } else { return nil }
        }
        #expect(appends.count == 1)
        #expect(appends.first?.map(\.bytes) == batches)
        #expect(appends.first?.map(\.header.firstOffset) == [0, 2, 5])
        #expect(f.progress.received == 6)
        // Each is what `StoredBatch(bytes:)` (the check) makes of the bytes.
        #expect(appends.first == batches.map { try! StoredBatch(bytes: $0) })
    }

    @Test func aBatchFailingItsCRCClosesTheConnectionAndNothingIsAppended() {
        for damaged in 0..<3 {
            var f = Self.streamingFollower()
            var batches = Self.threeBatches()
            batches[damaged][batches[damaged].count - 1] ^= 0x40  // a payload byte: the header still decodes
            let actions = f.received(.batches(.init(epoch: 1, commitOffset: 0, batches: batches)), now: .zero)
            #expect(actions.count == 1)
            guard case .close(.corruptBatch, let message) = actions.first else {
                Issue.record("batch \(damaged) with a bad CRC was accepted: \(actions)"); continue
            }
            #expect(message.contains("batch \(damaged)") && message.contains("CRC"))
            #expect(f.progress.received == 0)
        }
    }

    /// A frame that says it holds three batches but ends inside the third is refused, and so
    /// is a batch whose header claims bytes that only the next frame in the buffer has.
    @Test func aBatchCutShortOrReachingPastItsFrameIsMalformed() {
        let batches = Self.threeBatches()
        let frame = FrameCodec.encode(.batches(.init(epoch: 1, commitOffset: 0, batches: batches)))
        // The same frame with its last 5 bytes gone, its length field saying so.
        var cut = Array(frame.dropLast(5))
        let length = UInt32(cut.count - 4)
        for i in 0..<4 { cut[i] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(i))) }
        guard case .invalid(let error) = FrameCodec.decode(cut, maxFrameBytes: 1 << 20) else {
            Issue.record("a frame ending inside its last batch decoded"); return
        }
        #expect(error.reason == .malformedFrame && error.message.contains("batch 2"))
        // Followed by a heartbeat: the cut batch must not take its bytes.
        let next = FrameCodec.encode(.heartbeat(.init(epoch: 1, commitOffset: 0, primaryNextOffset: 6)))
        guard case .invalid(let again) = FrameCodec.decode(cut + next, maxFrameBytes: 1 << 20) else {
            Issue.record("a batch read past its frame's end"); return
        }
        #expect(again.reason == .malformedFrame)
        // Whole, the frame decodes to exactly its batches and leaves the next frame alone.
        #expect(FrameCodec.decode(frame + next, maxFrameBytes: 1 << 20)
                == .frame(.batches(.init(epoch: 1, commitOffset: 0, batches: batches)), consumed: frame.count))
    }
}
