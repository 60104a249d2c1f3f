import Foundation
import Testing
@testable import ShipLogStorage

/// The epoch checkpoint file's encoding (format.md §12).
@Suite struct EpochCheckpointFormatTests {
    static let example = EpochHistory(entries: [.init(epoch: 1, startOffset: 0), .init(epoch: 3, startOffset: 5),
                                                .init(epoch: 4, startOffset: 7)])

    /// format.md §12 shows the bytes of a three-epoch checkpoint; the encoder must produce them.
    @Test func workedExampleInFormatDocumentMatchesTheEncoder() throws {
        let hex = EpochCheckpoint.encoded(Self.example).map { String(format: "%02x", $0) }.joined()
        let formatPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("format.md").path
        let document = try String(contentsOfFile: formatPath, encoding: .utf8)
        let section = try #require(document.range(of: "## 12. Epoch checkpoint"), "format.md has no §12")
        guard let start = document.range(of: "```hex\n", range: section.upperBound..<document.endIndex),
            let end = document.range(of: "```", range: start.upperBound..<document.endIndex)
        else {
            Issue.record("format.md §12 has no ```hex block")
            return
        }
        let documented = document[start.upperBound..<end.lowerBound]
            .split(separator: "\n").map { line in line.split(separator: "|")[0] }
            .joined().filter { $0.isHexDigit }
        #expect(documented == hex)
        let empty = EpochCheckpoint.encoded(EpochHistory()).map { String(format: "%02x", $0) }.joined(separator: " ")
        #expect(document.contains("`\(empty)`"), "the empty checkpoint's bytes in §12")
    }

    @Test func roundTrips() {
        for history in [EpochHistory(), Self.example, EpochHistory(entries: [.init(epoch: .max, startOffset: .max - 1)])] {
            #expect(EpochCheckpoint.encoded(history).withUnsafeBytes { EpochCheckpoint.decode($0) } == .success(history))
        }
    }

    /// Every way bytes can fail to be a checkpoint is a value, never a trap: open rebuilds.
    @Test func damageIsReportedNotTrusted() {
        let good = EpochCheckpoint.encoded(Self.example)
        func decode(_ bytes: [UInt8]) -> Result<EpochHistory, EpochCheckpoint.DecodeFailure> {
            bytes.withUnsafeBytes { EpochCheckpoint.decode($0) }
        }
        var flipped = good
        flipped[30] ^= 0x01
        #expect(decode(flipped) == .failure(.checksumMismatch))
        #expect(decode(Array(good.dropLast())) == .failure(.wrongLength(expected: 68, actual: 67)))
        #expect(decode(Array(good.prefix(10))) == .failure(.tooShort(10)))
        var magic = good
        magic[0] = 0
        #expect(decode(magic) == .failure(.badMagic))
        var version = good
        version.withUnsafeMutableBytes { $0.setLittleEndian(UInt32(2), at: 8) }
        #expect(decode(version) == .failure(.unsupportedVersion(2)))
        var hugeCount = good
        hugeCount.withUnsafeMutableBytes { $0.setLittleEndian(UInt32.max, at: 12) }
        guard case .failure(.wrongLength) = decode(hugeCount) else {
            Issue.record("a damaged entry count was believed")
            return
        }
        // Entries out of order with a matching CRC (as a writer bug could make).
        var unordered = [UInt8](Format.epochCheckpointMagic)
        unordered += [1, 0, 0, 0, 2, 0, 0, 0]
        for (epoch, start) in [(UInt64(5), UInt64(10)), (UInt64(4), UInt64(20))] {
            withUnsafeBytes(of: epoch.littleEndian) { unordered += $0 }
            withUnsafeBytes(of: start.littleEndian) { unordered += $0 }
        }
        withUnsafeBytes(of: CRC32C.checksum(unordered).littleEndian) { unordered += $0 }
        #expect(decode(unordered) == .failure(.unordered(index: 1)))
    }

    @Test func reconcilingCutsToTheLogsOffsets() {
        let h = Self.example
        #expect(h.reconciled(firstOffset: 0, nextOffset: 7) == EpochHistory(entries: Array(h.entries.prefix(2))))
        #expect(h.reconciled(firstOffset: 6, nextOffset: 9)
                == EpochHistory(entries: [.init(epoch: 3, startOffset: 6), .init(epoch: 4, startOffset: 7)]))
        #expect(h.reconciled(firstOffset: 9, nextOffset: 9) == EpochHistory())
        #expect(h.entries(startingIn: 5..<8).map(\.epoch) == [3, 4])
        #expect(h.entries(startingIn: 1..<5).isEmpty)
    }
}
