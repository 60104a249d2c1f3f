import NIOCore
import NIOEmbedded
import NIOTestUtils
@testable import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// The NIO decoder and encoder only delegate to FrameCodec: frames survive any split of the
/// byte stream (NIO's verifier feeds them one byte at a time, all at once, and in between),
/// and a bad frame is refused with the codec's reason.
struct FrameHandlerTests {
    static func storedBatch(_ records: [[UInt8]], first: UInt64, epoch: UInt64) -> [UInt8] {
        var batch = StoredBatch(encoding: records, codec: .none)
        batch.seal(firstOffset: first, leaderEpoch: epoch, timestampMs: 1_700_000_000_000)
        return batch.bytes
    }

    static let frames: [Frame] = [
        .hello(.init(protocolVersion: 1, nodeID: NodeID(7), nonce: Array(repeating: 9, count: 32))),
        .statusRequest,
        .heartbeat(.init(epoch: 3, commitOffset: 10, primaryNextOffset: 12)),
        .batches(.init(epoch: 3, commitOffset: 5, batches: [
            storedBatch([[1, 2, 3], Array("ship".utf8)], first: 5, epoch: 3),
            storedBatch([Array(repeating: 0x41, count: 300)], first: 7, epoch: 3),
        ])),
        .ack(.init(progress: FollowerProgress(received: 8, written: 7, durable: 5))),
        .goodbye(.init(reason: .shutdown, message: "bye")),
    ]

    @Test func framesSurviveEverySplitOfTheStream() throws {
        let pairs = Self.frames.map { (ByteBuffer(bytes: FrameCodec.encode($0)), [$0]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder(maxFrameBytes: 1 << 20) }
    }

    @Test func theEncoderWritesWhatFrameCodecEncodes() throws {
        let channel = EmbeddedChannel(handler: MessageToByteHandler(FrameEncoder()))
        for frame in Self.frames {
            try channel.writeOutbound(frame)
            let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
            #expect(Array(written.readableBytesView) == FrameCodec.encode(frame))
        }
        #expect(try channel.finish().isClean)
    }

    @Test func aLengthAboveTheMaximumIsRefusedFromTheHeaderAlone() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        #expect {
            try channel.writeInbound(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 1]))
        } throws: { error in
            (error as? FrameDecodingError)?.error.reason == .frameTooLarge
        }
        _ = try? channel.finish()
    }

    @Test func anUnknownFrameTypeIsRefused() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        #expect {
            try channel.writeInbound(ByteBuffer(bytes: [1, 0, 0, 0, 0xEE]))
        } throws: { error in
            (error as? FrameDecodingError)?.error.reason == .malformedFrame
        }
        _ = try? channel.finish()
    }
}
