/// Early write-back of the active segment (`LogOptions.writebackBytes`).
///
/// Why: a roll seals the full segment with an fdatasync, and while it runs no append of the
/// log is written. With nothing written back before, that fdatasync writes the whole segment
/// (64 MiB by default), and a follower catching up stalled on every roll. Starting the
/// write-back every few megabytes spreads the disk's work over the writes, as RocksDB's
/// `bytes_per_sync` and PostgreSQL's `wal_writer_flush_after` do, and leaves the sealing
/// fdatasync the last few megabytes: issue 9's catch-up ran about 1.6× faster with it
/// (Benchmarks/README.md, "Seventh pass").
///
/// It changes nothing about durability: the kernel may write those pages any time anyway,
/// and only fdatasync says they are on disk.
///
/// The call runs on `writebackQueue`, not on the writer's thread: starting the write-back of
/// megabytes costs the kernel a millisecond or more of work, and can wait when the disk's
/// queue is full, and a writer may be an event loop (a caught-up follower appends on it) or
/// one of the few threads tasks run on. The closure keeps the file open until it has run,
/// and closing the log waits for it, so it never touches a descriptor the log has given up.
extension SegmentLog {
    /// Starts the write-back of `range` of `file` on `writebackQueue`.
    func startWriteback(_ range: Range<Int64>, of file: any StorageFile) {
        writebackQueue.async { file.startWriteback(range) }
    }

    /// Returns once every write-back started so far has been handed to the kernel.
    func drainWriteback() {
        writebackQueue.sync {}
    }

    /// Under the mutex, after a write: the range of the active segment whose write-back to
    /// start now, once `writebackBytes` have been written past the last start; nil otherwise.
    func writebackRange(_ state: inout LogState) -> Range<Int64>? {
        let every = Int64(options.writebackBytes)
        guard every > 0 else { return nil }
        let base = state.active.baseOffset
        let end = state.flushedPosition
        // A new active segment starts from its beginning. (A truncation below the last start
        // lowered it already, `adoptActiveEnd`; the `min` only keeps the range well formed.)
        let from = state.writebackStarted.flatMap { $0.segmentBase == base ? min($0.position, end) : nil } ?? 0
        guard end - from >= every else { return nil }
        state.writebackStarted = (base, end)
        return from..<end
    }
}
