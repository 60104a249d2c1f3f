import Foundation
import ShipLogStorage

/// Walks a log's segments in offset order, the way every read-only subcommand reads a log,
/// and judges what a reader must notice: segments that do not join up (a hole, or one that
/// runs into the next), batches out of offset order, epochs going back, invalid bytes, and a
/// tail being written.
///
/// Why the live rule: the tool takes no lock, so a writer may be appending while the active
/// segment is read. What the scan meets past the last batch there (zeroes followed by data
/// appended since, half of a batch) is an append in flight, not damage. So when a writer
/// holds the log, the active segment is judged up to the end of the batches the scan saw,
/// and nothing after that end counts (`liveTail` says where it was).
struct LogWalk {
    enum Step {
        /// A segment is about to be read; the active one is the last.
        case segment(base: UInt64, path: String, isActive: Bool)
        case batch(StoredBatch, position: Int64)
        case problem(Problem)
        /// The segment has been read; its file is `fileBytes` long.
        case segmentEnd(fileBytes: Int64)
    }

    let inspector: LogInspector
    private let lockHeldHere: Bool
    /// A writer held the log's lock when the walk began, or when it reached the active
    /// segment's end (a writer that opened the log meanwhile).
    private(set) var live: Bool
    /// Where the batches of a live log's active segment ended when the scan got there.
    private(set) var liveTail: LiveTail?
    /// One past the last offset walked: the log's next offset once the walk reached the end.
    private(set) var nextOffset: UInt64?
    /// The walk read every segment (`body` never asked it to stop).
    private(set) var reachedEnd = false

    /// `lockHeldHere`: this process holds the log's lock (repair), so no writer can, and the
    /// lock probe, which cannot tell this process from another, is not asked.
    init(_ inspector: LogInspector, lockHeldHere: Bool = false) {
        self.inspector = inspector
        self.lockHeldHere = lockHeldHere
        live = !lockHeldHere && inspector.writerHoldsLock() == true
    }

    /// The offset of the log's first record: its first segment's base.
    var firstOffset: UInt64? { inspector.segmentBaseOffsets.first }

    private struct Stop: Error {}

    /// Calls `body` with each step, in log order, until it returns false. With `from`, the
    /// segments that end before it (the next one starts at or before it) are not read, so
    /// damage there is not in the way of the records asked for.
    mutating func run(from: UInt64? = nil, _ body: (Step) throws -> Bool) throws {
        let bases = inspector.segmentBaseOffsets
        var lastEpoch: UInt64 = 0
        var walkedAny = false
        do {
            for (i, base) in bases.enumerated() {
                if let from, i + 1 < bases.count, bases[i + 1] <= from { continue }
                let path = inspector.segmentPath(base)
                let isActive = i == bases.count - 1
                // Before the segment's own step, so a reader that stops at a segment starting
                // past what it wants still hears of missing offsets it wanted.
                if let expected = nextOffset, expected != base {
                    let reason = base > expected
                        ? "a hole: the previous segment's next offset is \(expected), this one starts at \(base) (offsets \(expected)...\(base - 1) are missing)"
                        : "this segment starts at offset \(base), but the previous one runs to offset \(expected - 1)"
                    let problem = Problem(file: path, position: 0, offset: min(expected, base), reason: reason, tornTail: false)
                    guard try body(.problem(problem)) else {
                        throw Stop()
                    }
                }
                guard try body(.segment(base: base, path: path, isActive: isActive)) else { throw Stop() }
                var next = base
                let fileBytes: Int64
                do {
                    fileBytes = try inspector.scan(segment: base, tailBeingWritten: isActive && live) { event in
                        switch event {
                        case .batch(let batch, let position):
                            let h = batch.header
                            if h.firstOffset != next {
                                // The first offset it affects: the first missing, or the first repeated.
                                let problem = Problem(file: path, position: position, offset: min(h.firstOffset, next),
                                                      reason: "offset \(h.firstOffset) where \(next) was expected", tornTail: false)
                                guard try body(.problem(problem)) else { throw Stop() }
                            }
                            if h.leaderEpoch < lastEpoch {
                                let problem = Problem(file: path, position: position, offset: h.firstOffset,
                                                      reason: "epoch \(h.leaderEpoch) after epoch \(lastEpoch)", tornTail: false)
                                guard try body(.problem(problem)) else { throw Stop() }
                            }
                            lastEpoch = max(lastEpoch, h.leaderEpoch)
                            next = h.nextOffset
                            walkedAny = true
                            guard try body(.batch(batch, position: position)) else { throw Stop() }
                        case .unjudgedEnd(let position, let reason):
                            liveTail = LiveTail(file: path, position: position, nextOffset: next, seen: reason)
                        case .problem(let position, let reason, let dataFollows):
                            // A writer that opened the log after the walk began.
                            if isActive && !live && !lockHeldHere && inspector.writerHoldsLock() == true {
                                live = true
                                liveTail = LiveTail(file: path, position: position, nextOffset: next, seen: reason)
                                return
                            }
                            let problem = Problem(file: path, position: position, offset: next, reason: reason,
                                                  tornTail: isActive && !dataFollows)
                            guard try body(.problem(problem)) else { throw Stop() }
                        }
                    }
                } catch LogError.io(_, _, let code) where code == ENOENT && live && !walkedAny {
                    // Retention removed it after the directory was listed: the log now
                    // starts later, and nothing has been delivered from before.
                    continue
                } catch LogError.io(_, _, let code) where code == ENOENT && live {
                    throw ToolFailure.failed("\(path) was removed while the log was read (the writer's retention or truncation); run again")
                }
                nextOffset = next
                guard try body(.segmentEnd(fileBytes: fileBytes)) else { throw Stop() }
            }
            reachedEnd = true
        } catch is Stop {}
    }
}

/// Where the batches of a live log's active segment ended when the scan reached them: what
/// follows is being written and was not judged.
struct LiveTail: Encodable {
    var file: String
    var position: Int64
    var nextOffset: UInt64
    /// What the scan saw there, when not zeroes (half of a batch being written).
    var seen: String?

    enum CodingKeys: String, CodingKey { case file, position, nextOffset = "next_offset", seen }

    var description: String {
        "live: a writer holds the log; \(file) was read to byte \(position) (next offset \(nextOffset)), "
            + "where its batches ended when the scan got there; what follows is being written and was not judged"
    }
}
