// The parts of a JSON line around the escaped payload: the per-batch template, the offset's
// digits, base64 and UTF-8 validation. See json_lines.h.
#include "json_lines.h"

#include <string.h>

static const uint8_t line_prefix[16] = "{\"offset\":";  // 10 bytes used
static const size_t line_prefix_bytes = 10;
static const uint8_t line_suffix[4] = "\"}\n";          // 3 bytes used

static size_t append_text(uint8_t *out, const char *text) {
    size_t length = strlen(text);
    memcpy(out, text, length);
    return length;
}

static size_t append_decimal(uint8_t *out, uint64_t value) {
    uint8_t reversed[20];
    size_t count = 0;
    do {
        reversed[count++] = (uint8_t)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    for (size_t i = 0; i < count; i++) out[i] = reversed[count - 1 - i];
    return count;
}

void shiplog_json_line_start_batch(shiplog_json_line *line, uint64_t epoch, int64_t timestamp_ms) {
    uint8_t *middle = line->text_middle;
    size_t at = append_text(middle, ",\"epoch\":");
    at += append_decimal(middle + at, epoch);
    at += append_text(middle + at, ",\"timestamp_ms\":");
    if (timestamp_ms < 0) middle[at++] = '-';
    uint64_t magnitude = timestamp_ms < 0 ? (uint64_t)0 - (uint64_t)timestamp_ms : (uint64_t)timestamp_ms;
    at += append_decimal(middle + at, magnitude);
    memcpy(line->base64_middle, middle, at);
    line->base64_middle_bytes = (uint32_t)(at + append_text(line->base64_middle + at, ",\"payload_base64\":\""));
    line->text_middle_bytes = (uint32_t)(at + append_text(middle + at, ",\"payload\":\""));
    line->has_last_offset = 0;
}

/// Sets `digits` to `offset`: one increment in place when it follows the last offset.
static inline void set_digits(shiplog_json_line *line, uint64_t offset) {
    if (line->has_last_offset && offset == line->last_offset + 1 && offset != 0) {
        int at = (int)line->digit_count - 1;
        while (at >= 0 && line->digits[at] == '9') line->digits[at--] = '0';
        if (at >= 0) {
            line->digits[at]++;
        } else {  // 99 → 100
            memmove(line->digits + 1, line->digits, line->digit_count);
            line->digits[0] = '1';
            line->digit_count++;
        }
    } else {
        line->digit_count = (uint32_t)append_decimal(line->digits, offset);
    }
    line->last_offset = offset;
    line->has_last_offset = 1;
}

/// Writes {"offset":N and the middle; fixed-size copies, trimmed by advancing less.
static inline size_t write_head(shiplog_json_line *line, uint64_t offset, int base64, uint8_t *out) {
    set_digits(line, offset);
    memcpy(out, line_prefix, sizeof line_prefix);
    size_t at = line_prefix_bytes;
    memcpy(out + at, line->digits, sizeof line->digits);
    at += line->digit_count;
    if (base64) {
        memcpy(out + at, line->base64_middle, sizeof line->base64_middle);
        at += line->base64_middle_bytes;
    } else {
        memcpy(out + at, line->text_middle, sizeof line->text_middle);
        at += line->text_middle_bytes;
    }
    return at;
}

ptrdiff_t shiplog_json_line_text(shiplog_json_line *line, uint64_t offset, const uint8_t *payload, size_t count,
                                 int allow_non_ascii, uint8_t *out) {
    size_t at = write_head(line, offset, 0, out);
    ptrdiff_t escaped = shiplog_json_escape(payload, count, out + at, allow_non_ascii);
    if (escaped < 0) return -1;
    at += (size_t)escaped;
    memcpy(out + at, line_suffix, sizeof line_suffix);
    return (ptrdiff_t)(at + 3);
}

size_t shiplog_json_line_base64(shiplog_json_line *line, uint64_t offset, const uint8_t *payload, size_t count,
                                uint8_t *out) {
    size_t at = write_head(line, offset, 1, out);
    at += shiplog_base64(payload, count, out + at);
    memcpy(out + at, line_suffix, sizeof line_suffix);
    return at + 3;
}

size_t shiplog_base64(const uint8_t *source, size_t count, uint8_t *destination) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t *out = destination;
    size_t i = 0;
    for (; i + 3 <= count; i += 3) {
        uint32_t group = (uint32_t)source[i] << 16 | (uint32_t)source[i + 1] << 8 | source[i + 2];
        out[0] = (uint8_t)alphabet[group >> 18];
        out[1] = (uint8_t)alphabet[(group >> 12) & 63];
        out[2] = (uint8_t)alphabet[(group >> 6) & 63];
        out[3] = (uint8_t)alphabet[group & 63];
        out += 4;
    }
    if (i < count) {
        uint32_t group = (uint32_t)source[i] << 16 | (i + 1 < count ? (uint32_t)source[i + 1] << 8 : 0);
        out[0] = (uint8_t)alphabet[group >> 18];
        out[1] = (uint8_t)alphabet[(group >> 12) & 63];
        out[2] = i + 1 < count ? (uint8_t)alphabet[(group >> 6) & 63] : '=';
        out[3] = '=';
        out += 4;
    }
    return (size_t)(out - destination);
}

int shiplog_utf8_valid(const uint8_t *bytes, size_t count) {
    size_t i = 0;
    while (i < count) {
        uint8_t lead = bytes[i];
        if (lead < 0x80) { i++; continue; }
        size_t length;
        uint32_t minimum, value;
        if ((lead & 0xE0) == 0xC0) { length = 2; minimum = 0x80; value = lead & 0x1F; }
        else if ((lead & 0xF0) == 0xE0) { length = 3; minimum = 0x800; value = lead & 0x0F; }
        else if ((lead & 0xF8) == 0xF0) { length = 4; minimum = 0x10000; value = lead & 0x07; }
        else return 0;
        if (count - i < length) return 0;
        for (size_t k = 1; k < length; k++) {
            uint8_t next = bytes[i + k];
            if ((next & 0xC0) != 0x80) return 0;
            value = value << 6 | (next & 0x3F);
        }
        if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
        i += length;
    }
    return 1;
}
