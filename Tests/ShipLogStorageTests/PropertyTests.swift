import Foundation
import PropertyBased
import Testing
@testable import ShipLogStorage

@Suite struct PropertyTests {
    /// Any sequence of batches of any records reads back identically, before and after reopen,
    /// whatever the segment size that splits them.
    @Test func anyBatchesRoundTripThroughAReopenedLog() async throws {
        let record = Gen.uint8().array(of: 0...300)
        let batch = record.array(of: 1...6)
        await propertyCheck(count: 40, input: batch.array(of: 1...25), Gen.int(in: 0...1)) { batches, codecChoice in
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            var options = smallOptions(segmentBytes: 2048, compression: codecChoice == 0 ? .none : .lz4)
            options.indexIntervalBytes = 128
            do {
                do {
                    let log = try SegmentLog.open(directory: dir.logPath, options: options)
                    for records in batches { try log.append(records) }
                }
                let log = try SegmentLog.open(directory: dir.logPath, options: options)
                let expected = batches.flatMap { $0 }
                #expect(try allRecords(log) == expected)
                if !expected.isEmpty {
                    let middle = expected.count / 2
                    #expect(try log.record(at: UInt64(middle)) == expected[middle])
                }
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    /// A batch decoder fed arbitrary bytes either rejects them or yields a batch whose
    /// re-encoding has the same CRC: it never crashes or over-reads.
    @Test func arbitraryBytesNeverDecodeIntoGarbage() async {
        await propertyCheck(count: 300, input: Gen.uint8().array(of: 0...200)) { bytes in
            var framed = bytes
            if framed.count >= 4 { framed.replaceSubrange(0..<4, with: [0x53, 0x4C, 0x42, 0x31]) }
            if let batch = try? StoredBatch(bytes: framed) {
                #expect(batch.checksumMatches)
            }
        }
    }
}
