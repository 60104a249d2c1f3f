import ArgumentParser
import Foundation
import ShipLogStorage

/// Which records a dump or replay takes: an offset range and a time range.
struct RecordFilter: ParsableArguments {
    @Option(help: "First offset to include.")
    var from: UInt64?

    @Option(help: "Last offset to include.")
    var to: UInt64?

    @Option(help: "Only batches written at or after this time (ISO 8601, or ms since the Unix epoch).")
    var since: String?

    @Option(help: "Only batches written at or before this time (ISO 8601, or ms since the Unix epoch).")
    var until: String?

    func validate() throws {
        if let from, let to, from > to { throw ValidationError("--from \(from) is after --to \(to)") }
        _ = try milliseconds(since, "--since")
        _ = try milliseconds(until, "--until")
    }

    func milliseconds(_ text: String?, _ name: String) throws -> Int64? {
        guard let text else { return nil }
        if let ms = Int64(text) { return ms }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        throw ValidationError("\(name) '\(text)' is neither ISO 8601 nor milliseconds")
    }

    /// Calls `body` with each stored batch that holds a wanted record, in offset order,
    /// streaming segment by segment. Stops early when `body` returns false, and at the first
    /// invalid bytes, which it throws as damage after the valid prefix has been delivered.
    func forEachBatch(_ inspector: LogInspector, progress: Progress?, _ body: (StoredBatch) throws -> Bool) throws {
        let sinceMs = try milliseconds(since, "--since")
        let untilMs = try milliseconds(until, "--until")
        struct Stop: Error {}
        do {
            for base in inspector.segmentBaseOffsets {
                if let to, base > to { break }
                var damage: String?
                try inspector.scan(segment: base) { event in
                    switch event {
                    case .batch(let batch, _):
                        progress?.advance(by: Int64(batch.bytes.count))
                        let h = batch.header
                        if let from, h.lastOffset < from { return }
                        if let to, h.firstOffset > to { throw Stop() }
                        if let sinceMs, h.timestampMs < sinceMs { return }
                        if let untilMs, h.timestampMs > untilMs { throw Stop() }
                        if try !body(batch) { throw Stop() }
                    case .problem(let position, let reason, _):
                        damage = "\(inspector.segmentPath(base)): byte \(position): \(reason)"
                    }
                }
                if let damage { throw ToolFailure.damaged("stopped at damage: \(damage)") }
            }
        } catch is Stop {}
    }

    /// The offsets wanted (batches can straddle them). Read once: the option wrappers are
    /// slow to read per record.
    var offsets: ClosedRange<UInt64> { (from ?? 0)...(to ?? .max) }
}

/// Writes one record as a JSON line, `{"encoding":…,"epoch":…,"offset":…,"payload":…,"timestamp_ms":…}`,
/// with the payload as UTF-8 text when it is valid UTF-8, else base64. Hand-written because
/// JSONEncoder costs microseconds per record, and replay streams tens of millions.
enum RecordLine {
    static func append(offset: UInt64, header: BatchHeader, bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let text = isValidUTF8(bytes)
        out.append(contentsOf: text ? #"{"encoding":"utf8","epoch":"#.utf8 : #"{"encoding":"base64","epoch":"#.utf8)
        appendDecimal(header.leaderEpoch, to: &out)
        out.append(contentsOf: #","offset":"#.utf8)
        appendDecimal(offset, to: &out)
        out.append(contentsOf: #","payload":""#.utf8)
        if text {
            appendEscaped(bytes, to: &out)
        } else {
            out.append(contentsOf: Data(bytes).base64EncodedData())
        }
        out.append(contentsOf: #"","timestamp_ms":"#.utf8)
        if header.timestampMs < 0 { out.append(UInt8(ascii: "-")) }
        appendDecimal(header.timestampMs.magnitude, to: &out)
        out.append(contentsOf: "}\n".utf8)
    }

    static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if !bytes.contains(where: { $0 >= 0x80 }) { return true }
        return String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// JSON string escaping (RFC 8259 §7): quote, backslash and control characters. Sizes
    /// the output first, then writes it in place: log lines are full of quotes.
    static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var escapedCount = bytes.count
        for byte in bytes where byte < 0x20 || byte == 0x22 || byte == 0x5C {
            escapedCount += (byte == 0x22 || byte == 0x5C || byte == 0x0A || byte == 0x0D || byte == 0x09) ? 1 : 5
        }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: escapedCount))
        out.withUnsafeMutableBufferPointer { buffer in
            var at = start
            for byte in bytes {
                switch byte {
                case 0x22, 0x5C:
                    buffer[at] = 0x5C; buffer[at + 1] = byte; at += 2
                case 0x0A:
                    buffer[at] = 0x5C; buffer[at + 1] = UInt8(ascii: "n"); at += 2
                case 0x0D:
                    buffer[at] = 0x5C; buffer[at + 1] = UInt8(ascii: "r"); at += 2
                case 0x09:
                    buffer[at] = 0x5C; buffer[at + 1] = UInt8(ascii: "t"); at += 2
                case 0..<0x20:
                    buffer[at] = 0x5C; buffer[at + 1] = UInt8(ascii: "u"); buffer[at + 2] = 0x30; buffer[at + 3] = 0x30
                    buffer[at + 4] = hexDigits[Int(byte >> 4)]; buffer[at + 5] = hexDigits[Int(byte & 15)]; at += 6
                default:
                    buffer[at] = byte; at += 1
                }
            }
            assert(at == start + escapedCount)
        }
    }

    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }
}
