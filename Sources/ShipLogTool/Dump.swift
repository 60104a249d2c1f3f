import ArgumentParser
import Foundation
import ShipLogStorage

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print records as JSON lines (offset, epoch, timestamp, payload) or as hex. Streams.",
        discussion: "Example: shiplog dump /var/lib/app/log --from 1000 --limit 20\nExit 1 if damage stops the dump (the valid prefix is printed first).")

    @OptionGroup var common: CommonOptions
    @OptionGroup var filter: RecordFilter

    @Option(help: "Print at most this many records.")
    var limit: Int?

    @Flag(help: "A hex view instead of JSON lines.")
    var hex = false

    func run() throws {
        let inspector = try common.inspector()
        let wanted = filter.offsets
        var printed = 0
        var scratch: [UInt8] = []
        let output = FileHandle.standardOutput
        var buffer: [UInt8] = []
        defer { output.write(Data(buffer)) }
        try filter.forEachBatch(inspector, progress: nil) { batch in
            var more = true
            var line = RecordLine(header: batch.header)
            try batch.forEachRecord(scratch: &scratch) { offset, bytes in
                guard more, wanted.contains(offset) else { return }
                if hex {
                    buffer.append(contentsOf: Array("offset \(offset) epoch \(batch.header.leaderEpoch) ts \(batch.header.timestampMs) length \(bytes.count)\n".utf8))
                    for row in stride(from: 0, to: bytes.count, by: 16) {
                        let chunk = bytes[row..<min(row + 16, bytes.count)]
                        let hexBytes = chunk.map { String(format: "%02x", $0) }.joined(separator: " ")
                        let ascii = String(chunk.map { (32...126).contains($0) ? Character(UnicodeScalar($0)) : "." })
                        buffer.append(contentsOf: Array((String(format: "  %08x  ", row) + hexBytes.padding(toLength: 48, withPad: " ", startingAt: 0) + "  " + ascii + "\n").utf8))
                    }
                } else {
                    line.append(offset: offset, payload: bytes, to: &buffer)
                }
                if buffer.count > 1 << 16 { output.write(Data(buffer)); buffer.removeAll(keepingCapacity: true) }
                printed += 1
                if let limit, printed >= limit { more = false }
            }
            return more
        }
    }
}
