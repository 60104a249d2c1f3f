extension PrimaryReplicator {
    /// Where a follower whose log ends at `follower` starts (format.md §11.4): Kafka's
    /// leader-epoch truncation (KIP-101/279) with Raft's log matching. A follower streams only when
    /// its last batch's epoch is in the primary's history and that epoch covers the follower's last
    /// offset on the primary too; otherwise it is cut back to where its last epoch ends on the
    /// primary (each answer strictly shortens its log, so the exchange ends), or reset to the
    /// primary's first offset when nothing verifiable is shared.
    public static func decideFollow(_ follower: LogEnd, log: LogView) -> (kind: Frame.FollowReply.Kind, offset: UInt64) {
        let n = follower.nextOffset
        guard let e = follower.lastEpoch else {
            return n == log.firstOffset ? (.stream, n) : (.reset, log.firstOffset)
        }
        // The follower's last record precedes what the primary keeps: nothing to compare it with.
        guard n > log.firstOffset else { return (.reset, log.firstOffset) }
        let entries = log.epochs.entries
        if let i = entries.firstIndex(where: { $0.epoch == e }) {
            let start = entries[i].startOffset
            let end = i + 1 < entries.count ? entries[i + 1].startOffset : log.nextOffset
            if start <= n - 1, n - 1 < end { return (.stream, n) }
        }
        guard let (epochBelow, end) = log.epochs.end(ofEpochAtOrBelow: e, logNextOffset: log.nextOffset) else {
            return (.reset, log.firstOffset)
        }
        var target = min(n, end)
        // The follower's records of `e` below where the primary's `e` starts (all of them when
        // the primary never had `e`) are not the primary's: cut them in this one step (KIP-279's
        // point: without it the follower is cut only to where the primary's older epoch ends,
        // and the next round, finding no cut that shortens it, resets the whole log).
        if let s = follower.lastEpochStart {
            let primaryStart = entries.first(where: { $0.epoch == e })?.startOffset ?? UInt64.max
            if s < primaryStart { target = min(target, s) }
        }
        if target >= n {
            // The primary's epoch below `e` runs past the follower's end: the follower's last
            // batch (of `e`) is not the primary's, but where its records of `e` begin is unknown
            // here. Cut only that last batch (the log cuts whole batches) and compare again: each
            // round shortens the log, and no round removes a record the primary also has. Cutting
            // to where `epochBelow` starts would also drop the follower's matching records of
            // `epochBelow`, which may be committed ones it is counted on for: a failover before it
            // fetched them again could elect a node without them (the simulator found this,
            // seeds 2 and 9 of shiplog-simulate).
            _ = epochBelow
            target = n - 1
        }
        if target <= log.firstOffset { return (.reset, log.firstOffset) }
        return (.truncate, target)
    }
}
