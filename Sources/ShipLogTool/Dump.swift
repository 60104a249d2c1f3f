import ArgumentParser
import Foundation
import ShipLogStorage

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print records as JSON lines (offset, epoch, timestamp, payload) or as hex. Streams.",
        discussion: """
            JSON lines are specified in format.md §10, and are written by --threads threads in offset order.
            On a log a running process holds, records up to the end the scan saw are printed, and standard \
            error says the log is live.
            Example: shiplog dump /var/lib/app/log --from 1000 --to 1019
            Exit 1 if damage stops the dump (a hole between segments included; the valid prefix is printed first), \
            2 if --from or --to name offsets the log does not hold (the records it holds are printed first).
            """)

    @OptionGroup var common: LogLocation
    @OptionGroup var filter: RecordFilter

    @Option(help: "Print at most this many records.")
    var limit: Int?

    @Flag(help: "A hex view instead of JSON lines.")
    var hex = false

    @OptionGroup var streamOptions: StreamOptions

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
    }

    func run() throws {
        let inspector = try common.inspector()
        if hex { try dumpHex(inspector) } else { try dumpLines(inspector) }
    }

    /// JSON lines through the same parallel stream as `replay --exec`, to standard output.
    private func dumpLines(_ inspector: LogInspector) throws {
        guard limit != 0 else { return }
        let wanted = filter.offsets
        var remaining = limit
        let stream = RecordStream(fd: FileHandle.standardOutput.fileDescriptor, destination: "standard output",
                                  encoding: .jsonLines, workers: streamOptions.threads)
        // A bar on a terminal that also shows the records would tangle with them.
        let progress = Progress.make(label: "dump", totalBytes: totalSegmentBytes(inspector),
                                     quiet: common.quiet || isatty(1) == 1)
        defer { progress?.finish() }
        var walk: LogWalk?
        try stream.deliver {
            walk = try filter.forEachBatch(inspector, progress: progress) { batch in
                let header = batch.header
                let first = max(wanted.lowerBound, header.firstOffset)
                var last = min(wanted.upperBound, header.lastOffset)
                guard first <= last else { return true }
                if let left = remaining {
                    last = min(last, first + UInt64(left) - 1)
                    remaining = left - Int(last - first + 1)
                }
                try stream.submit(batch, wanted: first...last)
                return remaining != 0
            }
        }
        if let walk { try filter.checkOffsetsWereInTheLog(walk) }
    }

    private func dumpHex(_ inspector: LogInspector) throws {
        let wanted = filter.offsets
        var printed = 0
        var scratch: [UInt8] = []
        let output = FileHandle.standardOutput
        var buffer: [UInt8] = []
        defer { output.write(Data(buffer)) }
        let walk = try filter.forEachBatch(inspector, progress: nil) { batch in
            var more = true
            try batch.forEachRecord(scratch: &scratch) { offset, bytes in
                guard more, wanted.contains(offset) else { return }
                buffer.append(contentsOf: Array("offset \(offset) epoch \(batch.header.leaderEpoch) ts \(batch.header.timestampMs) length \(bytes.count)\n".utf8))
                for row in stride(from: 0, to: bytes.count, by: 16) {
                    let chunk = bytes[row..<min(row + 16, bytes.count)]
                    let hexBytes = chunk.map { String(format: "%02x", $0) }.joined(separator: " ")
                    let ascii = String(chunk.map { (32...126).contains($0) ? Character(UnicodeScalar($0)) : "." })
                    buffer.append(contentsOf: Array((String(format: "  %08x  ", row) + hexBytes.padding(toLength: 48, withPad: " ", startingAt: 0) + "  " + ascii + "\n").utf8))
                }
                if buffer.count > 1 << 16 { output.write(Data(buffer)); buffer.removeAll(keepingCapacity: true) }
                printed += 1
                if let limit, printed >= limit { more = false }
            }
            return more
        }
        try filter.checkOffsetsWereInTheLog(walk)
    }
}
