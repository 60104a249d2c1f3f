import Foundation
import PropertyBased
import ShipLogStorage
import Testing
@testable import ShipLogProtocol

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined(separator: " ") }

func bytes(hex: String) -> [UInt8] {
    hex.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { token in
        guard let byte = UInt8(token, radix: 16) else { Issue.record("not a hex byte: \(token)"); return nil }
        return byte
    }
}

let maxFrame = ReplicationConfiguration().maxFrameBytes

/// Every frame case with fields drawn from the generator's numbers.
func sampleFrames(_ n: [UInt64], _ blob: [UInt8]) -> [Frame] {
    let nonce = (0..<32).map { UInt8(truncatingIfNeeded: n[0] &+ UInt64($0)) }
    let epoch = n[1] % 5 + 1
    let first = n[2] % 1000
    var batches: [[UInt8]] = []
    var offset = first
    for i in 0..<Int(n[3] % 4) {
        let b = makeBatch(first: offset, epoch: min(epoch, UInt64(i) + 1), records: Int(n[4] % 3) + 1)
        offset = header(b).nextOffset
        batches.append(b)
    }
    let message = String(decoding: blob, as: UTF8.self)
    return [
        .hello(.init(protocolVersion: UInt16(truncatingIfNeeded: n[5]), nodeID: NodeID(n[6]), nonce: nonce)),
        .challenge(.init(nodeID: NodeID(n[7]), nonce: nonce, mac: nonce.reversed())),
        .proof(.init(mac: nonce)),
        .follow(.init(logEnd: LogEnd(nextOffset: n[8], lastEpoch: n[9] % 2 == 0 ? nil : n[10]), knownEpoch: n[11])),
        .followReply(.init(kind: [.stream, .truncate, .reset][Int(n[12] % 3)], offset: n[13], epoch: n[14])),
        .batches(.init(epoch: epoch, commitOffset: n[15], batches: batches)),
        .ack(.init(progress: FollowerProgress(received: max(n[16], n[17]), written: min(n[16], n[17]), durable: min(n[16], n[17]) / 2))),
        .heartbeat(.init(epoch: n[18], commitOffset: n[19], primaryNextOffset: n[0])),
        .election(ElectionMessageCodec.encode(.heartbeat(.init(
            epoch: n[1], commit: LogEnd(nextOffset: n[2], lastEpoch: n[3] % 2 == 0 ? nil : n[4]),
            ranking: [NodeID(n[5] % 7), NodeID(n[5] % 7 + 1)])))),
        .statusRequest,
        .statusReply(.init(json: blob)),
        .switchoverRequest(target: NodeID(n[2])),
        .goodbye(.init(reason: CloseReason(rawValue: UInt16(n[1] % 12) + 1)!, message: message)),
    ]
}

@Suite struct FrameCodecTests {
    @Test func everyFrameRoundTrips() async {
        await propertyCheck(count: 100, input: Gen.uint64().array(of: 20...20), Gen.uint8().array(of: 0...40)) { n, blob in
            for frame in sampleFrames(n, blob) {
                let encoded = FrameCodec.encode(frame)
                #expect(FrameCodec.decode(encoded, maxFrameBytes: maxFrame) == .frame(frame, consumed: encoded.count))
                // Two frames back to back: the first is decoded alone.
                var two = encoded
                FrameCodec.encode(.statusRequest, into: &two)
                #expect(FrameCodec.decode(two, maxFrameBytes: maxFrame) == .frame(frame, consumed: encoded.count))
                // Every proper prefix asks for more bytes.
                for cut in [0, 1, 3, 4, 5, encoded.count / 2, encoded.count - 1] where cut < encoded.count {
                    #expect(FrameCodec.decode(Array(encoded[..<cut]), maxFrameBytes: maxFrame) == .needMoreBytes)
                }
            }
        }
    }

    /// format.md §11.7, byte for byte.
    @Test func workedExampleMatchesFormatDocument() {
        let hello = Frame.hello(.init(protocolVersion: 1, nodeID: NodeID(2), nonce: Array(0..<32)))
        #expect(hex(FrameCodec.encode(hello)) == """
            2c 00 00 00 01 01 00 02 00 00 00 00 00 00 00 20 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f \
            10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
            """)
        let batch = bytes(hex: """
            53 4c 42 31 f9 44 89 0f 01 00 00 00 02 00 00 00
            05 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00
            00 68 e5 cf 8b 01 00 00 0e 00 00 00 0e 00 00 00
            02 00 00 00 68 69 04 00 00 00 73 68 69 70
            """)
        #expect((try? StoredBatch(bytes: batch)) != nil)
        let frame = Frame.batches(.init(epoch: 3, commitOffset: 5, batches: [batch]))
        let head = "53 00 00 00 12 03 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 01 00 00 00 "
        #expect(hex(FrameCodec.encode(frame)) == head + hex(batch))
        // And the document's own hex blocks, byte for byte.
        let blocks = documentedHexBlocks(section: "### 11.7")
        #expect(blocks.count == 3)
        #expect(blocks.first == FrameCodec.encode(hello))
        let follow = Frame.follow(.init(logEnd: LogEnd(nextOffset: 12, lastEpoch: 2, lastEpochStart: 8), knownEpoch: 3))
        #expect(blocks.dropFirst().first == FrameCodec.encode(follow))
        #expect(FrameCodec.decode(FrameCodec.encode(follow), maxFrameBytes: maxFrame) == .frame(follow, consumed: 38))
        #expect(blocks.last == FrameCodec.encode(frame))
        #expect(FrameCodec.decode(blocks.last ?? [], maxFrameBytes: maxFrame) == .frame(frame, consumed: 87))
    }

    /// The ```hex blocks after `section` in format.md, with the `| comment` parts removed.
    func documentedHexBlocks(section: String) -> [[UInt8]] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("format.md").path
        guard let document = try? String(contentsOfFile: path, encoding: .utf8),
              let sectionStart = document.range(of: section) else { Issue.record("format.md has no \(section)"); return [] }
        var blocks: [[UInt8]] = []
        // Only this section: up to the next top-level heading.
        let sectionEnd = document.range(of: "\n## ", range: sectionStart.upperBound..<document.endIndex)?.lowerBound ?? document.endIndex
        var rest = document[sectionStart.upperBound..<sectionEnd]
        while let start = rest.range(of: "```hex\n"), let end = rest.range(of: "```", range: start.upperBound..<rest.endIndex) {
            let text = rest[start.upperBound..<end.lowerBound].split(separator: "\n")
                .map { $0.split(separator: "|", omittingEmptySubsequences: false)[0] }.joined(separator: " ")
            blocks.append(bytes(hex: text))
            rest = rest[end.upperBound...]
        }
        return blocks
    }

    @Test func oversizedLengthIsRejectedFromTheLengthAlone() {
        #expect(FrameCodec.decode([0xff, 0xff, 0xff, 0xff], maxFrameBytes: maxFrame)
            == .invalid(FrameError(reason: .frameTooLarge, message: "frame length 4294967295 + 4 exceeds the maximum \(maxFrame)")))
        let small = FrameCodec.encode(.heartbeat(.init(epoch: 1, commitOffset: 2, primaryNextOffset: 3)))
        guard case .invalid(let e) = FrameCodec.decode(small, maxFrameBytes: small.count - 1) else { Issue.record("accepted"); return }
        #expect(e.reason == .frameTooLarge)
        #expect(FrameCodec.decode(small, maxFrameBytes: small.count) != .needMoreBytes)
    }

    @Test func malformedPayloadsAreInvalid() {
        func reason(_ bytes: [UInt8]) -> CloseReason? {
            if case .invalid(let e) = FrameCodec.decode(bytes, maxFrameBytes: maxFrame) { return e.reason }
            return nil
        }
        func frame(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] {
            let n = UInt32(payload.count + 1)
            return [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + [type] + payload
        }
        #expect(reason([0, 0, 0, 0]) == .malformedFrame)  // no type byte
        #expect(reason(frame(99, [])) == .malformedFrame)  // unknown type
        // Hello with a 31-byte nonce.
        #expect(reason(frame(1, [1, 0] + [UInt8](repeating: 0, count: 8) + [31] + [UInt8](repeating: 7, count: 31))) == .malformedFrame)
        // Trailing bytes after a heartbeat.
        #expect(reason(frame(20, [UInt8](repeating: 0, count: 25))) == .malformedFrame)
        // A batch count claiming a billion batches in 20 bytes: invalid, nothing allocated.
        #expect(reason(frame(18, [UInt8](repeating: 0, count: 16) + [0, 0xca, 0x9a, 0x3b] + [UInt8](repeating: 0, count: 20))) == .malformedFrame)
        // Follow reply kind 9; ack with durable above written; goodbye with bad UTF-8 and unknown reason.
        #expect(reason(frame(17, [9] + [UInt8](repeating: 0, count: 16))) == .malformedFrame)
        #expect(reason(frame(19, [5] + [UInt8](repeating: 0, count: 7) + [4] + [UInt8](repeating: 0, count: 7) + [6] + [UInt8](repeating: 0, count: 7))) == .malformedFrame)
        #expect(reason(frame(34, [1, 0, 0xff, 0xfe])) == .malformedFrame)
        #expect(reason(frame(34, [99, 0])) == .malformedFrame)
        // Batches not contiguous, and a batch newer than its frame's epoch.
        let a = makeBatch(first: 0, epoch: 1, records: 2), b = makeBatch(first: 5, epoch: 1, records: 1)
        #expect(reason(FrameCodec.encode(.batches(.init(epoch: 1, commitOffset: 0, batches: [a, b])))) == .outOfOrder)
        #expect(reason(FrameCodec.encode(.batches(.init(epoch: 0, commitOffset: 0, batches: [a])))) == .staleEpoch)
        // A batch whose header claims more bytes than the frame holds.
        var cut = FrameCodec.encode(.batches(.init(epoch: 1, commitOffset: 0, batches: [a])))
        cut.removeLast(3)
        let n = UInt32(cut.count - 4)
        cut.replaceSubrange(0..<4, with: [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), 0, 0])
        #expect(reason(cut) == .malformedFrame)
    }

    /// Arbitrary bytes, and valid frames with bytes flipped, never trap.
    @Test func garbageNeverTraps() async {
        await propertyCheck(count: 500, input: Gen.uint8().array(of: 0...120)) { garbage in
            _ = FrameCodec.decode(garbage, maxFrameBytes: 4096)
        }
        await propertyCheck(count: 200, input: Gen.uint64().array(of: 20...20), Gen.int(in: 0...10_000), Gen.uint8()) { n, position, value in
            for frame in sampleFrames(n, [1, 2, 3]) {
                var encoded = FrameCodec.encode(frame)
                encoded[position % encoded.count] ^= value | 1
                switch FrameCodec.decode(encoded, maxFrameBytes: maxFrame) {
                case .frame(_, let consumed): #expect(consumed <= encoded.count)
                case .needMoreBytes, .invalid: break
                }
            }
        }
    }
}
