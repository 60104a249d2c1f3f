import ShipLogStorage

/// What a repair will change, planned from a verification before anything is touched, in
/// the order the changes are made.
///
/// The order is the point. Segments after the damage go newest first and the damaged one is
/// cut last, the way the library's own point-in-time recovery and `truncate` do it, so that
/// a repair killed or failing at any step leaves the old log or a prefix of it. Cutting
/// first, as this tool once did, left the kept prefix, a hole and the newest segments: a log
/// the library opened and appended to as if nothing were missing.
struct RepairPlan {
    enum Action: CustomStringConvertible {
        /// A whole segment and its index: one after the damage, or one whose header is damaged.
        case remove(file: String, lostBytes: Int64, fromOffset: UInt64, reason: String?)
        /// The damaged segment, cut back to the end of its last intact batch.
        case cut(file: String, at: Int64, lostBytes: Int64, fromOffset: UInt64?, reason: String)
        /// A sealed segment's missing or damaged index, rewritten from a scan of the segment.
        case rebuildIndex(baseOffset: UInt64, segmentBytes: Int64, file: String)
        /// The epoch checkpoint, rewritten from the batch headers the repair keeps (format.md
        /// §12): last, after every cut, so it names exactly the epochs left.
        case rebuildEpochCheckpoint(file: String, history: EpochHistory, reason: String)

        /// Whether records go: everything but an index rebuild, which only rewrites a cache.
        var changesData: Bool {
            switch self {
            case .rebuildIndex, .rebuildEpochCheckpoint: return false
            case .remove, .cut: return true
            }
        }

        var description: String {
            switch self {
            case .remove(let file, let lost, let offset, let reason):
                return "remove \(file): drop \(lost) bytes of data (offsets from \(offset) on)" + (reason.map { " — \($0)" } ?? "")
            case .cut(let file, let at, let lost, let offset, let reason):
                return "cut \(file) at byte \(at): drop \(lost) bytes of data\(offset.map { " (offsets from \($0) on)" } ?? "") — \(reason)"
            case .rebuildIndex(_, _, let file):
                return "rebuild \(file)"
            case .rebuildEpochCheckpoint(let file, let history, let reason):
                return "rebuild \(file) from the batches (\(Verification.describe(history))) — \(reason)"
            }
        }
    }

    private(set) var actions: [Action] = []
    /// The damage is not a torn tail: intact data follows it, and only --accept-data-loss
    /// lets the repair drop that.
    private(set) var needsDataLoss = false
    /// Every file an action changes or removes, in plan order: what the backup copies.
    private(set) var touchedFiles: [String] = []

    var changesData: Bool { actions.contains(where: \.changesData) }

    init(_ result: Verification, inspector: LogInspector) throws {
        var cutBase: UInt64?
        if let first = result.problems.first, let damaged = result.segments.first(where: { $0.file == first.file }) {
            needsDataLoss = !first.tornTail
            cutBase = damaged.baseOffset
            for later in result.segments.reversed() where later.baseOffset > damaged.baseOffset {
                let lost = try FileSpace.endOfNonZeroBytes(in: later.file, from: 0)
                append(.remove(file: later.file, lostBytes: lost, fromOffset: later.baseOffset, reason: nil))
            }
            // Damage inside the header leaves nothing of the segment worth keeping.
            if first.position < Int64(Format.segmentHeaderBytes) {
                let lost = try FileSpace.endOfNonZeroBytes(in: damaged.file, from: 0)
                append(.remove(file: damaged.file, lostBytes: lost, fromOffset: damaged.baseOffset, reason: first.reason))
            } else {
                let lost = try FileSpace.endOfNonZeroBytes(in: damaged.file, from: first.position) - first.position
                append(.cut(file: damaged.file, at: first.position, lostBytes: lost, fromOffset: first.offset, reason: first.reason))
            }
        }
        for segment in result.segments where segment.index != "ok" {
            if let cutBase, segment.baseOffset >= cutBase { continue }
            if segment.baseOffset == result.segments.last?.baseOffset { continue }  // the active segment's index is written at close
            append(.rebuildIndex(baseOffset: segment.baseOffset, segmentBytes: segment.validBytes,
                                 file: inspector.indexPath(segment.baseOffset)))
        }
        appendEpochCheckpoint(result, inspector: inspector)
    }

    /// The epochs left once the data actions are done: the walk's, cut where the first
    /// removed offset is.
    private mutating func appendEpochCheckpoint(_ result: Verification, inspector: LogInspector) {
        var history = result.epochHistory
        var reason = result.epochProblem?.reason
        let removedFrom = actions.compactMap { action -> UInt64? in
            switch action {
            case .remove(_, _, let offset, _): return offset
            case .cut(_, _, _, let offset, _): return offset
            case .rebuildIndex, .rebuildEpochCheckpoint: return nil
            }
        }.min()
        if let removedFrom {
            history.truncate(toNextOffset: removedFrom)
            reason = reason ?? "the repair removes offsets from \(removedFrom) on"
        }
        guard let reason else { return }
        append(.rebuildEpochCheckpoint(file: inspector.epochCheckpointPath, history: history, reason: reason))
    }

    private mutating func append(_ action: Action) {
        actions.append(action)
        switch action {
        case .remove(let file, _, _, _), .cut(let file, _, _, _, _):
            touchedFiles += [file, RepairPlan.indexPath(ofSegment: file)]
        case .rebuildIndex(_, _, let file), .rebuildEpochCheckpoint(let file, _, _):
            touchedFiles.append(file)
        }
    }

    /// The index file beside a segment file (format.md §1: same base offset, `.index`).
    static func indexPath(ofSegment file: String) -> String {
        String(file.dropLast(Format.segmentSuffix.count)) + Format.indexSuffix
    }
}
