import Testing
@testable import ShipLogProtocol

/// The `election` frame (type 24, format.md §11.1) carries one ElectionMessageCodec message.
@Suite struct ElectionFrameTests {
    @Test func everyElectionMessageRoundTripsThroughAFrame() throws {
        let messages: [ElectionMessage] = [
            .voteRequest(.init(epoch: 7, logEnd: LogEnd(nextOffset: 42, lastEpoch: 6), preVote: true)),
            .voteResponse(.init(epoch: 6, granted: false, preVote: true, reason: .primaryAlive, primary: NodeID(2))),
            .heartbeat(.init(epoch: 7, commit: LogEnd(nextOffset: 40, lastEpoch: 6), ranking: [NodeID(3), NodeID(2)])),
            .heartbeatResponse(.init(epoch: 7, logEnd: nil)),
            .timeoutNow(.init(epoch: 7)),
        ]
        for message in messages {
            let encoded = FrameCodec.encode(.election(ElectionMessageCodec.encode(message)))
            #expect(encoded[4] == 24)
            guard case .frame(.election(let payload), let consumed) = FrameCodec.decode(encoded, maxFrameBytes: maxFrame) else {
                Issue.record("\(message) did not decode as an election frame")
                continue
            }
            #expect(consumed == encoded.count)
            #expect(try ElectionMessageCodec.decode(payload) == message)
        }
    }

    /// The worked example: a timeout-now in epoch 7 is 10 bytes after the length.
    @Test func timeoutNowFrameBytes() {
        let frame = FrameCodec.encode(.election(ElectionMessageCodec.encode(.timeoutNow(.init(epoch: 7)))))
        #expect(hex(frame) == "0a 00 00 00 18 05 07 00 00 00 00 00 00 00")
    }

    @Test func emptyOrOversizedElectionPayloadIsMalformed() {
        let empty: [UInt8] = [1, 0, 0, 0, 24]
        guard case .invalid(let error) = FrameCodec.decode(empty, maxFrameBytes: maxFrame) else {
            Issue.record("an empty election frame decoded")
            return
        }
        #expect(error.reason == .malformedFrame)
        let big = FrameCodec.encode(.election(Array(repeating: 3, count: ElectionMessageCodec.messageBytesMax + 1)))
        guard case .invalid(let tooBig) = FrameCodec.decode(big, maxFrameBytes: maxFrame) else {
            Issue.record("an oversized election frame decoded")
            return
        }
        #expect(tooBig.reason == .malformedFrame)
    }
}
