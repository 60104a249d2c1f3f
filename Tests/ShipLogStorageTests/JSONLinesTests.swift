import CJSONLines
import Foundation
import PropertyBased
import Testing
@testable import ShipLogStorage
@testable import ShipLogTool

/// The C writer of JSON lines (CJSONLines) against Swift and Foundation references.
@Suite struct JSONLinesTests {
    /// Bytes weighted towards the ones escaping and UTF-8 checks care about.
    static let interestingByte = Gen.int(in: 0...511).map { (n: Int) -> UInt8 in
        let special: [UInt8] = [0x22, 0x5C, 0x0A, 0x0D, 0x09, 0x00, 0x1F, 0x20, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xA9,
                                0xE2, 0x82, 0xAC, 0xED, 0xA0, 0xF0, 0x9F, 0x98, 0xF4, 0x90, 0xFF]
        return n < 256 ? UInt8(n) : special[(n - 256) % special.count]
    }

    /// RFC 8259 escaping, one byte at a time.
    static func referenceEscape(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for byte in bytes {
            switch byte {
            case 0x22: out += Array(#"\""#.utf8)
            case 0x5C: out += Array(#"\\"#.utf8)
            case 0x0A: out += Array(#"\n"#.utf8)
            case 0x0D: out += Array(#"\r"#.utf8)
            case 0x09: out += Array(#"\t"#.utf8)
            case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
            default: out.append(byte)
            }
        }
        return out
    }

    static func escape(_ bytes: [UInt8], allowNonASCII: Bool) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: shiplog_json_escape_bound(bytes.count))
        let written = bytes.withUnsafeBufferPointer { source in
            shiplog_json_escape(source.baseAddress ?? UnsafePointer(bitPattern: 1)!, bytes.count, &out, allowNonASCII ? 1 : 0)
        }
        return written < 0 ? nil : Array(out[..<written])
    }

    @Test func escapingMatchesAByteAtATimeReference() async {
        await propertyCheck(count: 400, input: Self.interestingByte.array(of: 0...300)) { bytes in
            #expect(Self.escape(bytes, allowNonASCII: true) == Self.referenceEscape(bytes))
            let ascii = Self.escape(bytes, allowNonASCII: false)
            #expect((ascii == nil) == bytes.contains { $0 >= 0x80 })
            if let ascii { #expect(ascii == Self.referenceEscape(bytes)) }
        }
    }

    @Test func utf8ValidationAgreesWithSwift() async {
        await propertyCheck(count: 600, input: Self.interestingByte.array(of: 0...12)) { bytes in
            let swift = String(validating: bytes, as: UTF8.self) != nil
            #expect((shiplog_utf8_valid(bytes, bytes.count) != 0) == swift, "\(bytes)")
        }
        for (bytes, valid) in [([0xC0, 0x80], false), ([0xED, 0xA0, 0x80], false), ([0xF4, 0x90, 0x80, 0x80], false),
                               ([0xE2, 0x82], false), ([0xF4, 0x8F, 0xBF, 0xBF], true), ([0xE2, 0x82, 0xAC], true)] as [([UInt8], Bool)] {
            #expect((shiplog_utf8_valid(bytes, bytes.count) != 0) == valid, "\(bytes)")
        }
    }

    @Test func base64MatchesFoundation() async {
        await propertyCheck(count: 200, input: Gen.uint8().array(of: 0...40)) { bytes in
            var out = [UInt8](repeating: 0, count: 6 * bytes.count + 16)
            let written = shiplog_base64(bytes, bytes.count, &out)
            #expect(Array(out[..<written]) == Array(Data(bytes).base64EncodedData()))
        }
    }

    /// Parses one line, checking its metadata; returns the payload it carries.
    static func payload(ofLine line: [UInt8], offset: UInt64, epoch: UInt64, timestampMs: Int64) throws -> [UInt8] {
        #expect(line.last == 0x0A)
        #expect(line.dropLast().firstIndex(of: 0x0A) == nil, "one line per record")
        let object = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
        #expect((object["offset"] as? NSNumber)?.uint64Value == offset)
        #expect((object["epoch"] as? NSNumber)?.uint64Value == epoch)
        #expect((object["timestamp_ms"] as? NSNumber)?.int64Value == timestampMs)
        if let text = object["payload"] as? String {
            #expect(object["payload_base64"] == nil)
            return Array(text.utf8)
        }
        return [UInt8](Data(base64Encoded: object["payload_base64"] as! String)!)
    }

    @Test func linesCarryTheRecordAndItsMetadata() async {
        let scalar = Gen.int(in: 0...0x10FFFF).map { UnicodeScalar(UInt32($0)).map { Character($0) } ?? "x" }
        let text = scalar.array(of: 0...40).map { Array(String($0).utf8) }
        await propertyCheck(count: 200, input: Self.interestingByte.array(of: 0...200), text) { bytes, text in
            let header = BatchHeader(codec: .none, recordCount: 2, firstOffset: 7, leaderEpoch: 3, timestampMs: -12,
                                     uncompressedBytes: 0, storedBytes: 0)
            var line = RecordLine(header: header)
            for (offset, payload) in [(UInt64(41), bytes), (42, text)] {
                var out: [UInt8] = []
                payload.withUnsafeBytes { line.append(offset: offset, payload: $0, to: &out) }
                #expect(out.count <= RecordLine.maximumBytes(payloadBytes: payload.count))
                do {
                    #expect(try Self.payload(ofLine: out, offset: offset, epoch: 3, timestampMs: -12) == payload)
                } catch {
                    Issue.record("line does not parse: \(error): \(String(decoding: out, as: UTF8.self))")
                }
            }
        }
    }

    /// Offsets are counted up in place between records; carries and jumps must still be right.
    @Test func offsetDigitsCarryAndJump() throws {
        let header = BatchHeader(codec: .none, recordCount: 1, firstOffset: 0, leaderEpoch: 0, timestampMs: 5,
                                 uncompressedBytes: 0, storedBytes: 0)
        var line = RecordLine(header: header)
        let offsets: [UInt64] = [0, 1, 8, 9, 10, 11, 98, 99, 100, 101, 999, 1000, 5, 6, 99_999, 100_000,
                                 UInt64.max - 1, UInt64.max, 0, 1]
        for offset in offsets {
            var out: [UInt8] = []
            Array("p".utf8).withUnsafeBytes { line.append(offset: offset, payload: $0, to: &out) }
            #expect(try Self.payload(ofLine: out, offset: offset, epoch: 0, timestampMs: 5) == Array("p".utf8))
        }
    }

    /// format.md §10 shows the worked example's batch as JSON lines; the writer must produce
    /// exactly them.
    @Test func workedExampleLinesInFormatDocumentMatch() throws {
        var batch = StoredBatch(encoding: [Array("hi".utf8), Array("ship".utf8)], codec: .none)
        batch.seal(firstOffset: 5, leaderEpoch: 3, timestampMs: 1_700_000_000_000)
        var line = RecordLine(header: batch.header)
        var written: [UInt8] = []
        var scratch: [UInt8] = []
        try batch.forEachRecord(scratch: &scratch) { offset, bytes in line.append(offset: offset, payload: bytes, to: &written) }
        let formatPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("format.md").path
        let document = try String(contentsOfFile: formatPath, encoding: .utf8)
        guard let section = document.range(of: "## 10."),
              let start = document.range(of: "```\n", range: section.upperBound..<document.endIndex),
              let end = document.range(of: "```", range: start.upperBound..<document.endIndex) else {
            Issue.record("format.md §10 has no example block")
            return
        }
        #expect(String(document[start.upperBound..<end.lowerBound]) == String(decoding: written, as: UTF8.self))
    }
}
