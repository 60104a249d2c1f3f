import ShipLogProtocol
import ShipLogStorage
import Testing

/// review11: a `batches` frame whose batch count is higher than the batches it holds (their
/// headers fit in the payload, so the count passes the first check) is refused by the whole
/// decode. The assembler must refuse it by the frame's last byte too: it took every byte of
/// the frame and then waited for more, refusing it only when the next frame's bytes came (a
/// peer that sends nothing after it left the connection hanging on a broken frame).
@Suite struct Review11AssemblerTests {
    @Test func aBatchCountAboveTheBatchesIsRefusedByTheFramesEnd() {
        var bytes = BatchesFrameAssemblerTests.frame(BatchesFrameAssemblerTests.good)
        bytes[21] = 4  // batch count (little endian at payload byte 16): 4, for 3 batches
        #expect(BatchesFrameAssemblerTests.whole(bytes) == .invalid(.malformedFrame))
        for piece in [1, 5, 48, 64, 1000, bytes.count] {
            #expect(BatchesFrameAssemblerTests.assemble(bytes, piece: piece) == .invalid(.malformedFrame),
                    "pieces of \(piece), nothing after the frame")
        }
    }
}
