#ifndef APPEND_FLOOR_H
#define APPEND_FLOOR_H

#include <stddef.h>
#include <stdint.h>

/// The floor for `append-os-8`: the same work as ShipLog's one-record appends at
/// `Durability.os` with LZ4, done the simplest correct way in C. Each append frames one
/// record (format.md §4), LZ4-compresses it, builds the 48-byte batch header (format.md §3)
/// and starts its CRC32C outside the lock; then under one plain pthread mutex it takes the
/// next offset and file position, patches the offset in, finishes the CRC and pwrites the
/// batch there. No queue, no group commit, no hand-off.
///
/// Runs `appends / threads` appends on each of `threads` new threads (append i of thread t
/// takes record (t + i * threads) % pool_count from the pool, as the Swift workload does;
/// record r is the bytes of `pool` from `starts[r]` to `starts[r + 1]`) into a new file at `path`, preallocated
/// to `preallocate_bytes` as a ShipLog segment is. Returns the appends made, or -1 with
/// errno set if the file could not be made or a write failed.
///
/// With `priority_inheritance` the mutex is a PTHREAD_PRIO_INHERIT one, a FUTEX_LOCK_PI
/// futex whose unlock hands the lock to the longest waiter, as Swift's
/// `Synchronization.Mutex` is on Linux; otherwise a default mutex, which a running thread
/// may take again before a woken waiter gets to it.
long append_floor_run(const char *path, int threads, long appends, const uint8_t *pool, const size_t *starts,
                      size_t pool_count, int64_t preallocate_bytes, int priority_inheritance);

#endif
