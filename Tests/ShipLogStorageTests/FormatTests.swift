import Foundation
import Testing
@testable import ShipLogStorage

@Suite struct FormatTests {
    @Test func batchHeaderRoundTrips() {
        var header = BatchHeader(codec: .lz4, recordCount: 3, firstOffset: 42, leaderEpoch: 7, timestampMs: 1_700_000_000_000,
                                 uncompressedBytes: 100, storedBytes: 60)
        header.crc = 0xDEAD_BEEF
        var bytes = [UInt8](repeating: 0, count: Format.batchHeaderBytes)
        bytes.withUnsafeMutableBytes { header.encode(into: $0) }
        let decoded = bytes.withUnsafeBytes { BatchHeader.decode($0) }
        #expect(decoded == .success(header))
    }

    @Test func zeroFilledSpaceNeverParsesAsABatch() {
        let zeroes = [UInt8](repeating: 0, count: Format.batchHeaderBytes)
        #expect(zeroes.withUnsafeBytes { BatchHeader.decode($0) } == .failure(.zeroes))
    }

    @Test func unknownBatchVersionIsRejected() {
        var batch = StoredBatch(encoding: [[1, 2, 3]], codec: .none)
        batch.seal(firstOffset: 0, leaderEpoch: 0, timestampMs: 0)
        var bytes = batch.bytes
        bytes[8] = 9
        #expect(bytes.withUnsafeBytes { BatchHeader.decode($0) } == .failure(.unsupportedVersion(9)))
    }

    @Test func corruptLengthIsBoundedBeforeAnyAllocation() {
        var batch = StoredBatch(encoding: [[1, 2, 3]], codec: .none)
        batch.seal(firstOffset: 0, leaderEpoch: 0, timestampMs: 0)
        var bytes = batch.bytes
        bytes.withUnsafeMutableBytes { $0.setLittleEndian(UInt32.max, at: 44) }
        guard case .failure(.invalidField) = bytes.withUnsafeBytes({ BatchHeader.decode($0) }) else {
            Issue.record("an oversized stored length was accepted")
            return
        }
    }

    /// A batch whose checksum is right but whose record count claims more records than its
    /// section holds (as a writer bug could make) is damage: no record of it is delivered.
    @Test func aRecordCountBeyondTheSectionIsDamage() throws {
        var batch = StoredBatch(encoding: [[1, 2, 3], [4]], codec: .none)
        batch.seal(firstOffset: 10, leaderEpoch: 0, timestampMs: 0)
        var bytes = batch.bytes
        bytes.withUnsafeMutableBytes { raw in
            raw.setLittleEndian(UInt32(3), at: 12)
            let crc = BatchHeader.checksum(header: UnsafeRawBufferPointer(raw),
                                           payload: UnsafeRawBufferPointer(rebasing: raw[Format.batchHeaderBytes...]))
            raw.setLittleEndian(crc, at: 4)
        }
        let damaged = try StoredBatch(bytes: bytes)
        var delivered = 0
        var scratch: [UInt8] = []
        #expect(throws: LogError.self) { try damaged.forEachRecord(scratch: &scratch) { _, _ in delivered += 1 } }
        #expect(delivered == 0)
        #expect(throws: LogError.self) { try damaged.decode() }
    }

    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test(arguments: [CompressionCodec.none, .lz4])
    func everyCodecPathRoundTrips(codec: CompressionCodec) throws {
        let compressible = (0..<50).map { makeRecord($0) }
        var random = SystemRandomNumberGenerator()
        let incompressible = (0..<5).map { _ in (0..<300).map { _ in UInt8.random(in: 0...255, using: &random) } }
        for records in [compressible, incompressible, [[]], [[], [7]]] {
            var batch = StoredBatch(encoding: records, codec: codec)
            batch.seal(firstOffset: 10, leaderEpoch: 2, timestampMs: 5)
            let reread = try StoredBatch(bytes: batch.bytes)
            #expect(try reread.decode().map { Array($0.bytes) } == records)
            #expect(try reread.decode().first?.offset == 10)
            var visited: [(UInt64, [UInt8])] = []
            var scratch: [UInt8] = []
            try reread.forEachRecord(scratch: &scratch) { offset, bytes in visited.append((offset, Array(bytes))) }
            #expect(visited.map(\.1) == records)
            #expect(visited.map(\.0) == (0..<records.count).map { 10 + UInt64($0) })
        }
        var compressed = StoredBatch(encoding: compressible, codec: codec)
        compressed.seal(firstOffset: 0, leaderEpoch: 0, timestampMs: 0)
        #expect(compressed.header.codec == codec, "compressible records use the requested codec")
        var raw = StoredBatch(encoding: incompressible, codec: codec)
        raw.seal(firstOffset: 0, leaderEpoch: 0, timestampMs: 0)
        #expect(raw.header.codec == .none, "LZ4 that does not shrink the payload is not used")
    }

    /// format.md §9 shows the bytes of one small batch; the encoder must produce exactly them.
    @Test func workedExampleInFormatDocumentMatchesTheEncoder() throws {
        var batch = StoredBatch(encoding: [Array("hi".utf8), Array("ship".utf8)], codec: .none)
        batch.seal(firstOffset: 5, leaderEpoch: 3, timestampMs: 1_700_000_000_000)
        let hex = batch.bytes.map { String(format: "%02x", $0) }.joined()
        let formatPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("format.md").path
        let document = try String(contentsOfFile: formatPath, encoding: .utf8)
        guard let start = document.range(of: "```hex\n"), let end = document.range(of: "```", range: start.upperBound..<document.endIndex) else {
            Issue.record("format.md has no ```hex block")
            return
        }
        let documented = document[start.upperBound..<end.lowerBound]
            .split(separator: "\n").map { line in line.split(separator: "|")[0] }
            .joined().filter { $0.isHexDigit }
        #expect(documented == hex)
    }
}
