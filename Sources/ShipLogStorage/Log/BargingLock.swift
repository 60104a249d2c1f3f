#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain pthread mutex: whoever is running when it is released may take it ("barging"),
/// and a blocked thread sleeps on a futex until an unlock wakes it.
///
/// Why not `Synchronization.Mutex`: on Linux that is a priority-inheriting futex
/// (FUTEX_LOCK_PI), whose unlock hands the lock to the longest waiter. Held across a
/// pwrite by 8 threads on 2 cores, such a hand-off goes to a thread that is asleep, so the
/// releasing thread blocks on its next append and the lock moves at the pace of wake-ups:
/// the minimal C loop of `append-os-8`'s floor, 8 threads against 1, made 0.2–0.4 of one
/// thread's rate with a PI mutex and about 1.0 with this kind (Benchmarks/README.md, "The
/// floor for append-os-8").
final class BargingLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let code = pthread_mutex_init(mutex, nil)
        precondition(code == 0, "pthread_mutex_init: \(code)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
