// The minimal loop behind `append-os-minimal-c-8` (see include/append_floor.h and
// Benchmarks/README.md, "The floor for append-os-8").
#define _GNU_SOURCE
#include "append_floor.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { header_bytes = 48, length_prefix_bytes = 4, section_max = 1 << 16 };

struct shared {
    pthread_mutex_t mutex;
    int fd;
    // Guarded by `mutex`.
    uint64_t next_offset;
    int64_t position;
    int failed_errno;
    // Read-only while the threads run.
    int threads;
    long per_thread;
    const uint8_t *pool;
    const size_t *starts;
    size_t pool_count;
};

struct worker {
    struct shared *shared;
    int index;
};

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }  // little-endian hosts only (x86-64, arm64)
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *append_loop(void *argument) {
    struct worker *worker = argument;
    struct shared *s = worker->shared;
    uint8_t section[section_max];
    uint8_t batch[header_bytes + LZ4_COMPRESSBOUND(section_max)];
    for (long i = 0; i < s->per_thread; i++) {
        size_t r = (size_t)(worker->index + i * s->threads) % s->pool_count;
        size_t record_bytes = s->starts[r + 1] - s->starts[r];
        size_t section_bytes = length_prefix_bytes + record_bytes;
        // The record section (format.md §4), compressed when that makes it smaller (§3).
        put32(section, (uint32_t)record_bytes);
        memcpy(section + length_prefix_bytes, s->pool + s->starts[r], record_bytes);
        int compressed = LZ4_compress_default((const char *)section, (char *)batch + header_bytes, (int)section_bytes,
                                              LZ4_COMPRESSBOUND(section_max));
        uint8_t codec = 1;
        size_t stored = (size_t)compressed;
        if (compressed <= 0 || (size_t)compressed >= section_bytes) {
            codec = 0;
            stored = section_bytes;
            memcpy(batch + header_bytes, section, section_bytes);
        }
        // The header with offset 0: magic, CRC later, version 1, codec, reserved, count 1,
        // offset, epoch 0, timestamp, both lengths.
        put32(batch, 0x31424C53);
        batch[8] = 1;
        batch[9] = codec;
        batch[10] = batch[11] = 0;
        put32(batch + 12, 1);
        put64(batch + 24, 0);
        put64(batch + 32, (uint64_t)now_ms());
        put32(batch + 40, (uint32_t)section_bytes);
        put32(batch + 44, (uint32_t)stored);
        // CRC32C of header bytes 8..<48 then the payload; ISA-L neither pre- nor post-inverts.
        // The bytes before the offset are summed here, the rest once the offset is known.
        uint32_t crc = crc32_iscsi(batch + 8, 8, 0xFFFFFFFFu);
        size_t total = header_bytes + stored;

        pthread_mutex_lock(&s->mutex);
        put64(batch + 16, s->next_offset);
        put32(batch + 4, ~crc32_iscsi(batch + 16, (int)(total - 16), crc));
        ssize_t written = s->failed_errno ? -1 : pwrite(s->fd, batch, total, s->position);
        if (written == (ssize_t)total) {
            s->next_offset += 1;
            s->position += (int64_t)total;
        } else if (!s->failed_errno) {
            s->failed_errno = written < 0 ? errno : EIO;
        }
        pthread_mutex_unlock(&s->mutex);
    }
    return NULL;
}

long append_floor_run(const char *path, int threads, long appends, const uint8_t *pool, const size_t *starts,
                      size_t pool_count, int64_t preallocate_bytes, int priority_inheritance) {
    if (threads < 1 || threads > 64 || pool_count == 0) {
        errno = EINVAL;
        return -1;
    }
    for (size_t r = 0; r < pool_count; r++) {
        if (starts[r + 1] < starts[r] || starts[r + 1] - starts[r] + length_prefix_bytes > section_max) {
            errno = EINVAL;
            return -1;
        }
    }
    struct shared s = {.threads = threads, .per_thread = appends / threads, .pool = pool, .starts = starts,
                       .pool_count = pool_count};
    s.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0) return -1;
    int code = posix_fallocate(s.fd, 0, preallocate_bytes);
    if (code != 0 && code != EOPNOTSUPP) {
        close(s.fd);
        errno = code;
        return -1;
    }
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    if (priority_inheritance) pthread_mutexattr_setprotocol(&attributes, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&s.mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    pthread_t ids[64];
    struct worker workers[64];
    int started = 0;
    for (; started < threads; started++) {
        workers[started] = (struct worker){.shared = &s, .index = started};
        // Each thread keeps two 64 KiB buffers on its stack; the default 8 MiB is plenty.
        if (pthread_create(&ids[started], NULL, append_loop, &workers[started]) != 0) {
            s.failed_errno = EAGAIN;
            break;
        }
    }
    for (int i = 0; i < started; i++) pthread_join(ids[i], NULL);
    pthread_mutex_destroy(&s.mutex);
    close(s.fd);
    if (s.failed_errno) {
        errno = s.failed_errno;
        return -1;
    }
    return (long)s.next_offset;
}
