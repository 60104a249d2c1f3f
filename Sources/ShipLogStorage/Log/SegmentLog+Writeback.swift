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
extension SegmentLog {
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
