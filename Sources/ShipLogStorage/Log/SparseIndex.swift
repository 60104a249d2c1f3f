/// Offset-to-position entries for one segment, one per `indexIntervalBytes` of batches,
/// sorted by both offset and position. Lookups find where to start scanning.
struct SparseIndex: Sendable {
    private(set) var entries: [IndexEntry] = []
    private var lastIndexedPosition: Int64 = Int64(Format.segmentHeaderBytes)

    init() {}

    init(entries: [IndexEntry]) {
        self.entries = entries
        lastIndexedPosition = entries.last?.position ?? Int64(Format.segmentHeaderBytes)
    }

    /// Records a batch that starts at `position`, if it is far enough past the last entry.
    mutating func noteBatch(firstOffset: UInt64, position: Int64, intervalBytes: Int) {
        guard position - lastIndexedPosition >= Int64(intervalBytes) else { return }
        assert(entries.last.map { $0.offset < firstOffset && $0.position < position } ?? true,
               "index entries must grow in offset and position")
        entries.append(IndexEntry(offset: firstOffset, position: position))
        lastIndexedPosition = position
    }

    /// The last entry at or before `offset`: where a scan for `offset` starts.
    func floor(_ offset: UInt64) -> IndexEntry? {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].offset <= offset { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : entries[low - 1]
    }

    /// Drops entries at or past `position` (after a truncation).
    mutating func truncate(toPosition position: Int64) {
        while let last = entries.last, last.position >= position { entries.removeLast() }
        lastIndexedPosition = entries.last?.position ?? Int64(Format.segmentHeaderBytes)
    }
}
