import ShipLogProtocol
import ShipLogStorage
import Testing

/// `BatchesFrameAssembler` takes a `batches` frame as it arrives, in pieces of any size, and
/// decides exactly as `FrameCodec.decode` does over the whole frame: the same batches, or a
/// refusal with the same close reason; it never takes a byte of the frame after it.
@Suite struct BatchesFrameAssemblerTests {
    enum Outcome: Equatable { case frame(Frame.Batches, consumed: Int), invalid(CloseReason), incomplete }

    /// The frame fed in pieces of `piece` bytes (the first piece at least the head), followed by
    /// `after` (the next frame's bytes), which must be left alone.
    static func assemble(_ bytes: [UInt8], piece: Int, after: [UInt8] = []) -> Outcome {
        let stream = bytes + after
        let first = max(FrameCodec.batchesHeadBytes, min(piece, bytes.count - 1))
        let start: (assembler: BatchesFrameAssembler, consumed: Int)?
        do {
            start = try stream[..<first].withUnsafeBytes { try FrameCodec.startBatches($0, maxFrameBytes: 1 << 20) }
        } catch {
            return .invalid((error as? FrameError)?.reason ?? .shutdown)
        }
        guard var (assembler, at) = start else { return .incomplete }
        var available = first
        for _ in 0..<100_000 {
            if assembler.isComplete { return .frame(assembler.frame, consumed: at) }
            guard at < stream.count else { return .incomplete }
            available = min(stream.count, max(available, at) + piece)
            do {
                let taken = try stream[at..<available].withUnsafeBytes { try assembler.take($0) }
                at += taken
                if !assembler.isComplete { #expect(at == available) }  // all of a piece is taken unless the frame ends in it
            } catch {
                return .invalid((error as? FrameError)?.reason ?? .shutdown)
            }
        }
        return .incomplete
    }

    static func whole(_ bytes: [UInt8]) -> Outcome {
        switch FrameCodec.decode(bytes, maxFrameBytes: 1 << 20) {
        case .frame(.batches(let b), let consumed): .frame(b, consumed: consumed)
        case .invalid(let error): .invalid(error.reason)
        default: .incomplete
        }
    }

    static func frame(epoch: UInt64 = 3, _ batches: [[UInt8]]) -> [UInt8] {
        FrameCodec.encode(.batches(.init(epoch: epoch, commitOffset: 1, batches: batches)))
    }

    static let good = [makeBatch(first: 10, epoch: 2, records: 3), makeBatch(first: 13, epoch: 2, records: 40),
                       makeBatch(first: 53, epoch: 3, records: 1)]

    @Test func inAnyPiecesTheSameFrameAsTheWholeDecode() {
        let bytes = Self.frame(Self.good)
        let next = FrameCodec.encode(.heartbeat(.init(epoch: 3, commitOffset: 1, primaryNextOffset: 54)))
        for piece in [1, 2, 7, 47, 48, 49, 100, 333, bytes.count] {
            #expect(Self.assemble(bytes, piece: piece, after: next) == Self.whole(bytes), "pieces of \(piece)")
            #expect(Self.assemble(bytes, piece: piece, after: next) == .frame(.init(epoch: 3, commitOffset: 1, batches: Self.good),
                                                                               consumed: bytes.count))
        }
    }

    /// Every damaged frame is refused with the reason the whole decode gives.
    @Test func damagedFramesAreRefusedForTheSameReasons() {
        func withLength(_ bytes: [UInt8]) -> [UInt8] {
            var bytes = bytes
            let length = UInt32(bytes.count - 4)
            for i in 0..<4 { bytes[i] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(i))) }
            return bytes
        }
        let bytes = Self.frame(Self.good)
        var cases: [(String, [UInt8], CloseReason)] = [
            ("last batch cut short", withLength(Array(bytes.dropLast(5))), .malformedFrame),
            ("trailing bytes", withLength(bytes + [1, 2, 3]), .malformedFrame),
            ("out of order", Self.frame([Self.good[0], Self.good[2]]), .outOfOrder),
            ("epoch above the frame's", Self.frame(epoch: 2, Self.good), .staleEpoch),
            ("epoch going back", Self.frame([makeBatch(first: 0, epoch: 3, records: 1), makeBatch(first: 1, epoch: 2, records: 1)]), .staleEpoch),
        ]
        var tooMany = bytes
        tooMany[21] = 200  // batch count 200: cannot fit
        cases.append(("batch count", tooMany, .malformedFrame))
        var badHeader = bytes
        badHeader[FrameCodec.batchesHeadBytes + Self.good[0].count] ^= 0xFF  // the second batch's first header byte
        cases.append(("bad header", badHeader, .malformedFrame))
        var headerCut = withLength(Array(bytes.prefix(FrameCodec.batchesHeadBytes + Self.good[0].count + 20)))
        headerCut[21] = 2
        cases.append(("second header cut", headerCut, .malformedFrame))
        for (name, frame, reason) in cases {
            #expect(Self.whole(frame) == .invalid(reason), "\(name): whole")
            for piece in [1, 5, 48, 64, 1000] {
                #expect(Self.assemble(frame, piece: piece) == .invalid(reason), "\(name): pieces of \(piece)")
            }
        }
    }

    /// A frame over the limit is left to `decode`, which refuses it from its length; a frame all there is too.
    @Test func framesOverTheLimitOrWholeAreNotStarted() throws {
        let bytes = Self.frame(Self.good)
        #expect(try bytes[..<100].withUnsafeBytes { try FrameCodec.startBatches($0, maxFrameBytes: bytes.count - 1) } == nil)
        #expect(try bytes.withUnsafeBytes { try FrameCodec.startBatches($0, maxFrameBytes: 1 << 20) } == nil)
        let heartbeat = FrameCodec.encode(.heartbeat(.init(epoch: 3, commitOffset: 1, primaryNextOffset: 54)))
        #expect(try (heartbeat + bytes).withUnsafeBytes { try FrameCodec.startBatches($0, maxFrameBytes: 1 << 20) } == nil)
    }
}
