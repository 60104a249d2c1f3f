// JSON string escaping for `shiplog replay` and `dump`, which write tens of millions of
// records as JSON lines. Log records are full of quotes, so a byte-at-a-time loop pays a
// mispredicted branch per quote; the SSSE3 path escapes 16 bytes per step without branching
// on the data: one pshufb per 8 bytes inserts the backslashes, steered by a table indexed by
// which of the 8 bytes are quotes or backslashes.
#include "json_lines.h"

#include <string.h>

static const uint8_t hex_digits[16] = "0123456789abcdef";

/// Escapes one byte; returns the bytes written, or -1 for a non-ASCII byte not allowed.
static inline int escape_byte(uint8_t byte, uint8_t *out, int allow_non_ascii) {
    uint8_t short_form;
    switch (byte) {
    case '"': case '\\': short_form = byte; break;
    case '\n': short_form = 'n'; break;
    case '\r': short_form = 'r'; break;
    case '\t': short_form = 't'; break;
    default:
        if (byte < 0x20) {
            out[0] = '\\'; out[1] = 'u'; out[2] = '0'; out[3] = '0';
            out[4] = hex_digits[byte >> 4]; out[5] = hex_digits[byte & 15];
            return 6;
        }
        if (byte >= 0x80 && !allow_non_ascii) return -1;
        out[0] = byte;
        return 1;
    }
    out[0] = '\\';
    out[1] = short_form;
    return 2;
}

static ptrdiff_t escape_scalar(const uint8_t *source, size_t count, uint8_t *destination, int allow_non_ascii) {
    uint8_t *out = destination;
    for (size_t i = 0; i < count; i++) {
        int written = escape_byte(source[i], out, allow_non_ascii);
        if (written < 0) return -1;
        out += written;
    }
    return out - destination;
}

#if defined(__x86_64__)
#include <immintrin.h>

static int has_ssse3;

/// For each 8-bit mask of bytes needing a backslash: the pshufb indices that spread 8 data
/// bytes (lanes 0-7) into 16, with lane 8 (a backslash) before each marked byte.
static uint8_t expand_shuffles[256][16];

__attribute__((constructor)) static void build_expand_shuffles(void) {
    __builtin_cpu_init();  // needed before __builtin_cpu_supports in a constructor
    has_ssse3 = __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("popcnt");
    for (int mask = 0; mask < 256; mask++) {
        int at = 0;
        for (int lane = 0; lane < 8; lane++) {
            if (mask & (1 << lane)) expand_shuffles[mask][at++] = 8;
            expand_shuffles[mask][at++] = (uint8_t)lane;
        }
        while (at < 16) expand_shuffles[mask][at++] = 0x80;
    }
}

__attribute__((target("ssse3,popcnt")))
static ptrdiff_t escape_ssse3(const uint8_t *source, size_t count, uint8_t *destination, int allow_non_ascii) {
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control_bits = _mm_set1_epi8((char)0xE0);
    const __m128i zero = _mm_setzero_si128();
    uint8_t *out = destination;
    size_t at = 0;
    uint8_t tail[16];
    while (at < count) {
        size_t valid = count - at < 16 ? count - at : 16;
        const uint8_t *block = source + at;
        if (valid < 16) {
            // Padding that needs no escaping; the mask below ignores it anyway.
            memset(tail, 'a', sizeof tail);
            memcpy(tail, block, valid);
            block = tail;
        }
        __m128i data = _mm_loadu_si128((const __m128i *)block);
        if (!allow_non_ascii && _mm_movemask_epi8(data) != 0) return -1;
        // A block with a control character (rare) takes the scalar path.
        __m128i control = _mm_cmpeq_epi8(_mm_and_si128(data, control_bits), zero);
        if (_mm_movemask_epi8(control) != 0) {
            ptrdiff_t written = escape_scalar(block, valid, out, allow_non_ascii);
            if (written < 0) return -1;
            out += written;
            at += valid;
            continue;
        }
        __m128i marked = _mm_or_si128(_mm_cmpeq_epi8(data, quote), _mm_cmpeq_epi8(data, backslash));
        unsigned mask = (unsigned)_mm_movemask_epi8(marked) & ((1u << valid) - 1);
        unsigned low = mask & 0xFF, high = mask >> 8;
        size_t low_valid = valid < 8 ? valid : 8;
        __m128i low_lanes = _mm_unpacklo_epi64(data, backslash);
        _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(low_lanes, _mm_loadu_si128((const __m128i *)expand_shuffles[low])));
        out += low_valid + (size_t)__builtin_popcount(low);
        if (valid > 8) {
            __m128i high_lanes = _mm_unpackhi_epi64(data, backslash);
            _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(high_lanes, _mm_loadu_si128((const __m128i *)expand_shuffles[high])));
            out += (valid - 8) + (size_t)__builtin_popcount(high);
        }
        at += valid;
    }
    return out - destination;
}
#endif

ptrdiff_t shiplog_json_escape(const uint8_t *source, size_t count, uint8_t *destination, int allow_non_ascii) {
#if defined(__x86_64__)
    if (has_ssse3) return escape_ssse3(source, count, destination, allow_non_ascii);
#endif
    return escape_scalar(source, count, destination, allow_non_ascii);
}
