#ifndef SHIPLOG_JSON_LINES_H
#define SHIPLOG_JSON_LINES_H

// Records as JSON lines, for `shiplog dump` and `shiplog replay --exec`, which write tens of
// millions of them: {"offset":N,"epoch":E,"timestamp_ms":T,"payload":"..."} with the payload
// as JSON-escaped text when it is valid UTF-8, else as "payload_base64":"..." in base64.
// Every function writes to memory the caller has sized with the bound functions below; they
// may store a few bytes past their result (the bounds include that slack).

#include <stddef.h>
#include <stdint.h>

/// The most bytes shiplog_json_escape writes for `count` input bytes: every byte may become a
/// six-byte \u00XX escape, and the vector path stores 16 bytes past its last output byte.
static inline size_t shiplog_json_escape_bound(size_t count) { return 6 * count + 16; }

/// Writes the JSON string escape (RFC 8259 section 7) of source[0..<count] into destination,
/// which must have room for shiplog_json_escape_bound(count) bytes, and returns the bytes
/// written. Quote, backslash and control characters are escaped; other bytes are copied.
/// Returns -1, having written scratch only, when a byte is 0x80 or above and
/// `allow_non_ascii` is 0: the caller then decides whether the bytes are valid UTF-8.
ptrdiff_t shiplog_json_escape(const uint8_t *source, size_t count, uint8_t *destination, int allow_non_ascii);

/// Whether bytes[0..<count] is valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
int shiplog_utf8_valid(const uint8_t *bytes, size_t count);

/// Writes the standard base64 (RFC 4648 section 4, padded) of source[0..<count]; returns the
/// bytes written, 4 * ceil(count / 3).
size_t shiplog_base64(const uint8_t *source, size_t count, uint8_t *destination);

/// The fields of one batch's lines, rendered once: every record of a batch shares the epoch and
/// timestamp, and has the next offset, so the offset's digits are counted up in place.
typedef struct {
    uint8_t text_middle[112];   // ,"epoch":E,"timestamp_ms":T,"payload":"
    uint8_t base64_middle[112]; // the same ending ,"payload_base64":"
    uint32_t text_middle_bytes;
    uint32_t base64_middle_bytes;
    uint8_t digits[24];         // the last offset written, left-aligned ASCII
    uint32_t digit_count;
    uint64_t last_offset;
    int has_last_offset;
} shiplog_json_line;

/// The most bytes one line for a payload of `count` bytes takes, slack included.
static inline size_t shiplog_json_line_bound(size_t count) { return shiplog_json_escape_bound(count) + 192; }

void shiplog_json_line_start_batch(shiplog_json_line *line, uint64_t epoch, int64_t timestamp_ms);

/// Writes one whole line with the payload as text; returns its bytes, or -1 (scratch written)
/// when the payload has a byte 0x80 or above and `allow_non_ascii` is 0.
ptrdiff_t shiplog_json_line_text(shiplog_json_line *line, uint64_t offset, const uint8_t *payload, size_t count,
                                 int allow_non_ascii, uint8_t *out);

/// Writes one whole line with the payload as base64; returns its bytes.
size_t shiplog_json_line_base64(shiplog_json_line *line, uint64_t offset, const uint8_t *payload, size_t count,
                                uint8_t *out);

#endif
