import Foundation
import ShipLogStorage

/// Carries out a repair plan one durable step at a time, counting what is done, so that a
/// failure can say what was done, what was not, and where the originals are.
///
/// Each step ends synced (the file, or the directory entry it changed) before the next
/// begins, so the order of `RepairPlan` holds on disk too and not only in the kernel.
struct RepairRun {
    let inspector: LogInspector
    let plan: RepairPlan
    let backupPath: String

    struct Step {
        var description: String
        var changesData: Bool
        var perform: () throws -> Void
    }

    /// The clean-shutdown marker describes the last segment's length and the next offset;
    /// once segments change it would vouch for a log that no longer exists (the library
    /// trusts it and scans nothing), so it goes before the first change to data. An index
    /// rebuild changes no segment, so it keeps the marker and the next open stays fast.
    var steps: [Step] {
        let fs = PosixFileSystem()
        let directory = inspector.directory
        let marker = directory + "/" + Format.cleanMarkerName
        var steps: [Step] = []
        if plan.changesData && fs.fileSize(marker) != nil {
            steps.append(Step(description: "remove \(marker)", changesData: false) {
                try fs.removeFile(marker)
                try fs.syncDirectory(directory)
            })
        }
        for action in plan.actions {
            switch action {
            case .remove(let file, _, _, _):
                steps.append(Step(description: action.description, changesData: true) {
                    try Self.removeIfPresent(RepairPlan.indexPath(ofSegment: file))
                    try fs.removeFile(file)
                    try fs.syncDirectory(directory)
                })
            case .cut(let file, let at, _, _, _):
                steps.append(Step(description: action.description, changesData: true) {
                    try Self.removeIfPresent(RepairPlan.indexPath(ofSegment: file))  // it is the active segment now
                    let segment = try fs.openFile(file, create: false)
                    try segment.truncate(to: at)
                    try segment.sync()
                    try fs.syncDirectory(directory)
                })
            case .rebuildEpochCheckpoint(_, let history, _):
                steps.append(Step(description: action.description, changesData: false) {
                    try inspector.writeEpochCheckpoint(history)  // synced, renamed, directory synced
                })
            case .rebuildIndex(let base, let bytes, _):
                steps.append(Step(description: action.description, changesData: false) {
                    try inspector.rebuildIndex(segment: base, segmentBytes: bytes)
                    try fs.syncDirectory(directory)
                })
            }
        }
        return steps
    }

    /// Runs every step; on the first failure throws a message listing what was done and not.
    func run() throws {
        let steps = self.steps
        for (number, step) in steps.enumerated() {
            do {
                try step.perform()
            } catch {
                let done = steps[..<number]
                let state = done.contains(where: \.changesData)
                    ? "the log holds a prefix of what it held before (the removals go newest first, the cut last)"
                    : "the log's data is as it was"
                let lines = ["repair stopped at step \(number + 1) of \(steps.count): \(error)", "  done:", "    back up into \(backupPath)"]
                    + done.map { "    \($0.description)" }
                    + ["  not done:"] + steps[number...].map { "    \($0.description)" }
                    + ["  \(state); the originals of every file the repair touches are in \(backupPath)",
                       "  running the same repair again finishes it"]
                throw ToolFailure.damaged(lines.joined(separator: "\n"))
            }
        }
    }

    private static func removeIfPresent(_ path: String) throws {
        do {
            try PosixFileSystem().removeFile(path)
        } catch LogError.io(_, _, let code) where code == ENOENT {
        }
    }
}
