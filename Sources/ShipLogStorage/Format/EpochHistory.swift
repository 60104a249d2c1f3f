/// Which leader epoch wrote which offsets: for each epoch in the log, the first offset it wrote
/// (Kafka's leader-epoch checkpoint). Epochs only grow along the log, so the entries are sorted
/// by both epoch and start offset, and epoch `e` covers offsets from its start up to the next
/// entry's start (or the log's end). Replication uses it to find where two logs stop agreeing.
public struct EpochHistory: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var epoch: UInt64
        public var startOffset: UInt64
        public init(epoch: UInt64, startOffset: UInt64) {
            self.epoch = epoch
            self.startOffset = startOffset
        }
    }

    public private(set) var entries: [Entry]

    public init(entries: [Entry] = []) {
        for i in entries.indices.dropFirst() {
            precondition(entries[i - 1].epoch < entries[i].epoch && entries[i - 1].startOffset <= entries[i].startOffset,
                         "epoch history entries must grow in epoch and start offset")
        }
        self.entries = entries
    }

    /// The newest epoch in the log, nil when the history is empty.
    public var lastEpoch: UInt64? { entries.last?.epoch }

    /// Notes that a batch of `epoch` starts at `offset`; a no-op unless the epoch is new.
    public mutating func record(epoch: UInt64, startOffset offset: UInt64) {
        if let last = entries.last {
            if epoch == last.epoch { return }
            precondition(epoch > last.epoch && offset >= last.startOffset,
                         "epoch \(epoch) at \(offset) after epoch \(last.epoch) at \(last.startOffset)")
        }
        entries.append(Entry(epoch: epoch, startOffset: offset))
    }

    /// Forgets the epochs that start at or after `nextOffset` (the log was cut there).
    public mutating func truncate(toNextOffset nextOffset: UInt64) {
        while let last = entries.last, last.startOffset >= nextOffset { entries.removeLast() }
    }

    /// Forgets what lies before `firstOffset` (retention), keeping the epoch that covers it.
    public mutating func trimFront(firstOffset: UInt64) {
        while entries.count > 1, entries[1].startOffset <= firstOffset { entries.removeFirst() }
        if !entries.isEmpty, entries[0].startOffset < firstOffset { entries[0].startOffset = firstOffset }
    }

    /// The largest epoch at or below `epoch` and the offset where it ends in a log ending at
    /// `logNextOffset`: the start of the next epoch, or the log's end (Kafka's
    /// OffsetsForLeaderEpoch). Nil when every epoch in the history is newer than `epoch`.
    public func end(ofEpochAtOrBelow epoch: UInt64, logNextOffset: UInt64) -> (epoch: UInt64, endOffset: UInt64)? {
        guard let i = entries.lastIndex(where: { $0.epoch <= epoch }) else { return nil }
        let end = i + 1 < entries.count ? entries[i + 1].startOffset : logNextOffset
        return (entries[i].epoch, end)
    }

    /// The epoch that wrote `offset`, nil when the offset precedes the history.
    public func epoch(at offset: UInt64) -> UInt64? {
        entries.last(where: { $0.startOffset <= offset })?.epoch
    }
}

extension EpochHistory {
    /// The history of a log holding offsets `firstOffset..<nextOffset` whose batches are those
    /// this history describes, cut at both ends: empty for an empty log, else without the
    /// epochs that start at or after `nextOffset` and with the first kept epoch starting at
    /// `firstOffset`. A checkpoint written ahead of the log (an epoch change whose batch was
    /// lost in a crash, a truncate or retention not yet written to it) reconciles this way.
    public func reconciled(firstOffset: UInt64, nextOffset: UInt64) -> EpochHistory {
        guard firstOffset < nextOffset else { return EpochHistory() }
        var history = self
        history.truncate(toNextOffset: nextOffset)
        history.trimFront(firstOffset: firstOffset)
        return history
    }

    /// The entries whose start offset lies in `range`.
    public func entries(startingIn range: Range<UInt64>) -> ArraySlice<Entry> {
        let low = entries.partitioningIndex { $0.startOffset >= range.lowerBound }
        let high = entries.partitioningIndex { $0.startOffset >= range.upperBound }
        return entries[low..<max(low, high)]
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for a predicate that is false
    /// then true along the array (binary search); `count` when none does.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if predicate(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
