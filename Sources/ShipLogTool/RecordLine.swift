import CJSONLines
import ShipLogStorage

/// Writes records as JSON lines,
/// `{"offset":…,"epoch":…,"timestamp_ms":…,"payload":"…"}`, the payload as JSON-escaped text
/// when it is valid UTF-8, else as `"payload_base64":"…"`.
///
/// The bytes are written by CJSONLines, in C, because `replay --exec` streams tens of millions
/// of records and each nanosecond per record is a visible share of the run: the fields a batch
/// shares are rendered once, and escaping takes 16 bytes per step. One value serves one batch.
struct RecordLine {
    private var line = shiplog_json_line()

    /// The most bytes one line takes for a payload of `payloadBytes`.
    static func maximumBytes(payloadBytes: Int) -> Int { shiplog_json_line_bound(payloadBytes) }

    init(header: BatchHeader) {
        shiplog_json_line_start_batch(&line, header.leaderEpoch, header.timestampMs)
    }

    /// Writes one line at `out`, which must have room for `maximumBytes(payload.count)`;
    /// returns the bytes written.
    mutating func encode(offset: UInt64, payload: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) -> Int {
        let target = out.assumingMemoryBound(to: UInt8.self)
        // A non-null pointer even for an empty payload: C reads nothing through it then.
        let source = (payload.baseAddress ?? UnsafeRawPointer(target)).assumingMemoryBound(to: UInt8.self)
        let ascii = shiplog_json_line_text(&line, offset, source, payload.count, 0, target)
        if ascii >= 0 { return ascii }
        if shiplog_utf8_valid(source, payload.count) != 0 {
            return shiplog_json_line_text(&line, offset, source, payload.count, 1, target)
        }
        return shiplog_json_line_base64(&line, offset, source, payload.count, target)
    }

    /// Appends one line to `out`.
    mutating func append(offset: UInt64, payload: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let start = out.count
        let bound = Self.maximumBytes(payloadBytes: payload.count)
        out.append(contentsOf: repeatElement(0, count: bound))
        let written = out.withUnsafeMutableBytes { encode(offset: offset, payload: payload, into: $0.baseAddress! + start) }
        out.removeLast(bound - written)
    }
}
