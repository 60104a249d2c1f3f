#if canImport(Glibc)
import CLinuxPipe
import Glibc
#endif

/// How `shiplog serve` asks glibc's allocator to keep the memory it frees. A follower catching
/// up receives each stored batch into an array of its own (tens of KiB) that is freed once
/// written; with glibc's defaults the freed space at the top of a thread's heap is handed back
/// to the kernel (heap trim) and the next arrays fault it in again, zeroed: about half of the
/// bytes a catch-up received went through freshly faulted pages, and page faults took a fifth
/// of the follower's CPU (issue 9, catch-up). A server's working set is bounded (a follower
/// stops reading from its primary while `ReplicationConfiguration.maxUnwrittenBytes` wait for
/// its log), so keeping it is cheap; and buffers of up to 16 MiB (NIO's 4 MiB receive buffers,
/// a primary's ship reads) come from the heap instead of an mmap and munmap each.
enum ServeMemory {
    static let keepFreedBytes: Int32 = 256 << 20
    static let mmapThresholdBytes: Int32 = 16 << 20

    /// Call once, before the node starts. Elsewhere than glibc it does nothing.
    static func keepFreedMemory() {
        #if canImport(Glibc)
        // Setting either also turns off glibc's adjusting of both as the process runs.
        _ = mallopt(M_TRIM_THRESHOLD, keepFreedBytes)
        _ = mallopt(M_MMAP_THRESHOLD, mmapThresholdBytes)
        #endif
    }
}
