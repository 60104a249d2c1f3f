import PropertyBased
import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// `encodeBatchesHead` is the second way to write a `batches` frame (a head, then stored batches
/// copied verbatim by the shell): it must give exactly `encode`'s bytes, which decode to the frame.
@Suite struct FrameCodecBatchesHeadTests {
    /// The head for `batches`, then the batches, the way the primary's shell builds a frame.
    static func headThenBatches(_ b: Frame.Batches) -> [UInt8] {
        var head = [UInt8](repeating: 0xEE, count: FrameCodec.batchesHeadBytes)
        head.withUnsafeMutableBytes {
            FrameCodec.encodeBatchesHead(epoch: b.epoch, commitOffset: b.commitOffset, batchCount: b.batches.count,
                                         batchBytes: b.batches.reduce(0) { $0 + $1.count }, into: $0)
        }
        return head + b.batches.flatMap { $0 }
    }

    static func batches(_ n: [UInt64]) -> Frame.Batches {
        let epoch = n[0] % 5 + 1
        var offset = n[1] % 1000
        var batches: [[UInt8]] = []
        for i in 0..<Int(n[2] % 5) {
            let b = makeBatch(first: offset, epoch: min(epoch, UInt64(i) + 1), records: Int(n[3] % 3) + 1)
            offset = header(b).nextOffset
            batches.append(b)
        }
        return Frame.Batches(epoch: epoch, commitOffset: n[4], batches: batches)
    }

    @Test func headThenBatchesIsWhatEncodeWrites() async {
        await propertyCheck(count: 200, input: Gen.uint64().array(of: 5...5)) { n in
            let b = Self.batches(n)
            let built = Self.headThenBatches(b)
            #expect(built == FrameCodec.encode(.batches(b)))
            #expect(FrameCodec.decode(built, maxFrameBytes: maxFrame) == .frame(.batches(b), consumed: built.count))
            // Every proper prefix asks for more bytes, never decodes or fails.
            for cut in 0..<built.count {
                #expect(FrameCodec.decode(Array(built[..<cut]), maxFrameBytes: maxFrame) == .needMoreBytes)
            }
        }
    }

    /// format.md §11.7's `batches` example, built from the head.
    @Test func workedExampleFromTheHead() {
        let batch = makeBatch(first: 5, epoch: 3, records: 2)
        let b = Frame.Batches(epoch: 3, commitOffset: 5, batches: [batch])
        let built = Self.headThenBatches(b)
        let length = UInt32(1 + 20 + batch.count)
        #expect(Array(built[..<FrameCodec.batchesHeadBytes]) ==
                withUnsafeBytes(of: length.littleEndian, Array.init) + [18, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    /// A head whose count or length disagrees with the batches behind it is refused, never trusted.
    @Test func aHeadThatLiesIsRefused() async {
        await propertyCheck(count: 100, input: Gen.uint64().array(of: 5...5), Gen.int(in: 0...3)) { n, lie in
            var b = Self.batches(n)
            if b.batches.isEmpty { b.batches = [makeBatch(first: 0, epoch: 1, records: 1)] }
            let bytes = b.batches.reduce(0) { $0 + $1.count }
            var head = [UInt8](repeating: 0, count: FrameCodec.batchesHeadBytes)
            let (count, length) = switch lie {
            case 0: (b.batches.count + 1, bytes)      // one batch more than there is
            case 1: (b.batches.count - 1, bytes)      // one fewer: trailing bytes
            case 2: (b.batches.count, bytes - 1)      // the last batch cut short
            default: (Int(UInt32.max), bytes)          // a count no frame can hold
            }
            head.withUnsafeMutableBytes {
                FrameCodec.encodeBatchesHead(epoch: b.epoch, commitOffset: b.commitOffset, batchCount: count,
                                             batchBytes: length, into: $0)
            }
            var framed = head + b.batches.flatMap { $0 }
            if lie == 2 { framed.removeLast() }
            guard case .invalid(let error) = FrameCodec.decode(framed, maxFrameBytes: maxFrame) else {
                Issue.record("a head with lie \(lie) was accepted")
                return
            }
            #expect(error.reason == .malformedFrame, "\(error)")
        }
    }
}
