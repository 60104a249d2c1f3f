import Foundation
import Testing
import ShipLogProtocol

/// format.md §13: the worked examples, round trips, and garbage that must be refused, never trap.
@Suite struct ElectionMessageCodecTests {
    static let examples: [ElectionMessage] = [
        .voteRequest(.init(epoch: 7, logEnd: LogEnd(nextOffset: 42, lastEpoch: 6), preVote: true)),
        .voteResponse(.init(epoch: 6, granted: false, preVote: true, reason: .primaryAlive, primary: NodeID(2))),
        .heartbeat(.init(epoch: 7, commit: LogEnd(nextOffset: 40, lastEpoch: 6), ranking: [NodeID(3), NodeID(2)])),
        .heartbeatResponse(.init(epoch: 7, logEnd: LogEnd(nextOffset: 42, lastEpoch: 6))),
        .timeoutNow(.init(epoch: 7)),
    ]

    /// The ```hex blocks of format.md §13, in order, as hex strings.
    static func documentedBlocks() throws -> [String] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("format.md").path
        let document = try String(contentsOfFile: path, encoding: .utf8)
        guard let section = document.range(of: "\n## 13. Election messages") else { return [] }
        var blocks: [String] = []
        var rest = document[section.upperBound...]
        while let start = rest.range(of: "```hex\n"), let end = rest.range(of: "```", range: start.upperBound..<rest.endIndex) {
            blocks.append(rest[start.upperBound..<end.lowerBound].split(separator: "\n")
                .map { $0.split(separator: "|")[0] }.joined().filter { $0.isHexDigit }.lowercased())
            rest = rest[end.upperBound...]
        }
        return blocks
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func workedExamplesInFormatDocumentMatchTheEncoder() throws {
        let blocks = try Self.documentedBlocks()
        let state = ElectionDurableState(epoch: 7, votedFor: NodeID(2))
        let encoded = Self.examples.map { Self.hex(ElectionMessageCodec.encode($0)) } + [Self.hex(ElectionStateFile.encode(state))]
        #expect(blocks == encoded)
        for message in Self.examples { #expect(try ElectionMessageCodec.decode(ElectionMessageCodec.encode(message)) == message) }
        #expect(try ElectionStateFile.decode(ElectionStateFile.encode(state)) == state)
    }

    static func randomMessage(_ random: inout ElectionRandom) -> ElectionMessage {
        func optional(_ value: UInt64) -> UInt64? { value % 3 == 0 ? nil : value }
        func logEnd() -> LogEnd { LogEnd(nextOffset: random.next(), lastEpoch: optional(random.next())) }
        switch random.next(upperBound: UInt64(5)) {
        case 0:
            return .voteRequest(.init(epoch: random.next(), logEnd: logEnd(), preVote: random.next() & 1 == 0, leadershipTransfer: random.next() & 1 == 0))
        case 1:
            let reason = ElectionMessage.VoteReason.allCases[Int(random.next(upperBound: UInt64(6)))]
            return .voteResponse(.init(epoch: random.next(), granted: reason == .granted, preVote: random.next() & 1 == 0, reason: reason, primary: optional(random.next()).map(NodeID.init)))
        case 2:
            let count = Int(random.next(upperBound: UInt64(6)))
            return .heartbeat(.init(epoch: random.next(), commit: logEnd(), ranking: (0..<count).map { NodeID(UInt64($0) * 7 + 1) }))
        case 3:
            return .heartbeatResponse(.init(epoch: random.next(), logEnd: random.next() & 1 == 0 ? nil : logEnd()))
        default:
            return .timeoutNow(.init(epoch: random.next()))
        }
    }

    @Test func everyMessageRoundTrips() throws {
        var random = ElectionRandom(seed: 11)
        for _ in 0..<2_000 {
            let message = Self.randomMessage(&random)
            #expect(try ElectionMessageCodec.decode(ElectionMessageCodec.encode(message)) == message)
        }
    }

    /// Every truncation, every single-byte change and random bytes: a value or a typed error,
    /// and whatever decodes re-encodes to the same bytes (one encoding per message).
    @Test func garbageIsRefusedNeverTrapped() {
        var random = ElectionRandom(seed: 12)
        func check(_ bytes: [UInt8]) {
            if let message = try? ElectionMessageCodec.decode(bytes) {
                #expect(ElectionMessageCodec.encode(message) == bytes)
            }
        }
        for _ in 0..<300 {
            let bytes = ElectionMessageCodec.encode(Self.randomMessage(&random))
            for length in 0..<bytes.count {
                #expect(throws: ElectionCodecError.self) { try ElectionMessageCodec.decode(Array(bytes[0..<length])) }
            }
            #expect(throws: ElectionCodecError.self) { try ElectionMessageCodec.decode(bytes + [0]) }
            for index in bytes.indices {
                var damaged = bytes
                damaged[index] ^= UInt8(truncatingIfNeeded: random.next() | 1)
                check(damaged)
            }
        }
        for _ in 0..<5_000 {
            check((0..<Int(random.next(upperBound: UInt64(64)))).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        }
    }

    @Test func malformedFieldsAreNamed() {
        func error(_ bytes: [UInt8]) -> ElectionCodecError? {
            do { _ = try ElectionMessageCodec.decode(bytes) } catch { return error }
            return nil
        }
        #expect(error([]) == .empty)
        #expect(error([9]) == .unknownKind(9))
        var request = ElectionMessageCodec.encode(Self.examples[0])
        request[1] = 0x04
        #expect(error(request) == .invalidValue(structure: "voteRequest", field: "flags", at: 1, value: 4, reason: "unknown flag bits"))
        request = ElectionMessageCodec.encode(Self.examples[0])
        request[18] = 2
        #expect(error(request) == .invalidValue(structure: "voteRequest", field: "logEnd.lastEpoch presence", at: 18, value: 2, reason: "must be 0 or 1"))
        var response = ElectionMessageCodec.encode(Self.examples[1])
        response[1] |= 0x02  // granted, but the reason says primary alive
        #expect(error(response) == .invalidValue(structure: "voteResponse", field: "reason", at: 2, value: 4, reason: "disagrees with the granted flag"))
        var heartbeat = ElectionMessageCodec.encode(Self.examples[2])
        heartbeat[35] = 3  // node 3 twice
        #expect(error(heartbeat) == .invalidValue(structure: "heartbeat", field: "ranking[1]", at: 35, value: 3, reason: "listed twice"))
        #expect(error(Array(heartbeat.prefix(30))) == .truncated(structure: "heartbeat", field: "ranking[0]", at: 27, needed: 8, available: 3))
    }

    @Test func aDamagedStateFileIsAnErrorNotAFreshStart() throws {
        let bytes = ElectionStateFile.encode(ElectionDurableState(epoch: 7, votedFor: NodeID(2)))
        for index in bytes.indices {
            var damaged = bytes
            damaged[index] ^= 0x10
            #expect(throws: ElectionCodecError.self) { try ElectionStateFile.decode(damaged) }
        }
        #expect(throws: ElectionCodecError.self) { try ElectionStateFile.decode(Array(bytes.dropLast())) }
        #expect(throws: ElectionCodecError.self) { try ElectionStateFile.decode(bytes + [0]) }
        #expect(try ElectionStateFile.decode(ElectionStateFile.encode(.initial)) == .initial)
    }
}
