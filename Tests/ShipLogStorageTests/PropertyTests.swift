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
                    #expect(try log.record(at: UInt64(middle)).bytes == expected[middle])
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

    /// `dataRanges` may leave out only bytes that read as zero: holes and never-written
    /// preallocated space. Checked on sparse files with data written at random places.
    @Test func dataRangesCoverEveryNonZeroByte() async {
        let write = Gen.int(in: 0...(1 << 20)).array(of: 0...6)
        await propertyCheck(count: 25, input: write, Gen.int(in: 0...(1 << 20)), Gen.int(in: 0...1)) { starts, from, preallocate in
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            do {
                try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
                let fs = PosixFileSystem()
                let file = try fs.openFile(dir.path + "/sparse", create: true)
                if preallocate == 1 { try file.preallocate(to: 1 << 20) } else { try file.truncate(to: 1 << 20) }
                for start in starts {
                    try [UInt8](repeating: 0xA5, count: 100).withUnsafeBytes { try file.write($0, at: Int64(start)) }
                }
                let size = try file.size()
                let ranges = try file.dataRanges(from: Int64(from))
                for (earlier, later) in zip(ranges, ranges.dropFirst()) { #expect(earlier.upperBound <= later.lowerBound) }
                #expect(ranges.allSatisfy { $0.lowerBound >= Int64(from) && $0.upperBound <= size })
                let bytes = fileBytes(dir.path + "/sparse")
                for (index, byte) in bytes.enumerated() where byte != 0 && index >= from {
                    if !ranges.contains(where: { $0.contains(Int64(index)) }) {
                        Issue.record("non-zero byte \(index) outside \(ranges)")
                        break
                    }
                }
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}
