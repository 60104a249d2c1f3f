import ArgumentParser
import Foundation
import ShipLogStorage

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut a torn tail, rebuild indexes, and (with --accept-data-loss) keep only the valid prefix.",
        discussion: """
            Dry run unless --apply. Before changing anything, the files it touches are copied into \
            DIR/repair-backup-<time>/. Running it twice is harmless. Refuses a log locked by a running process.
            Example: shiplog repair /var/lib/app/log --apply
            """)

    @OptionGroup var common: CommonOptions

    @Flag(help: "Change files (default: only print the plan).")
    var apply = false

    @Flag(help: "Allow dropping valid-looking data after corruption in the middle of the log (point-in-time).")
    var acceptDataLoss = false

    enum Action: CustomStringConvertible {
        case cut(file: String, at: Int64, fileBytes: Int64, fromOffset: UInt64?, reason: String)
        case remove(file: String, bytes: Int64, baseOffset: UInt64)
        case rebuildIndex(baseOffset: UInt64, segmentBytes: Int64, file: String)

        var description: String {
            switch self {
            case .cut(let file, let at, let bytes, let offset, let reason):
                return "cut \(file) at byte \(at): drop \(bytes - at) bytes\(offset.map { " (offsets from \($0) on)" } ?? "") — \(reason)"
            case .remove(let file, let bytes, let base):
                return "remove \(file): drop \(bytes) bytes (offsets from \(base) on)"
            case .rebuildIndex(_, _, let file):
                return "rebuild \(file)"
            }
        }
    }

    func run() throws {
        // With --apply the lock is held from before the scan to the last change, so no writer
        // can open the log in between and make the plan stale.
        var lock: (any FileLock)?
        if apply {
            do {
                lock = try common.inspector().lock()
            } catch LogError.directoryLocked {
                throw ToolFailure.usage("\(common.directory) is locked by a running process; stop it first")
            } catch let error as LogError {
                throw ToolFailure.usage("cannot lock \(common.directory) to repair it: \(error)")
            }
        }
        defer { lock?.unlock() }
        let (inspector, result) = try common.verify(label: "repair", lockHeldHere: lock != nil)
        // A dry run takes no lock: on a log being written it cannot judge the tail.
        if result.live {
            throw ToolFailure.usage("\(common.directory) is held by a running process, so its tail is being written; stop it first")
        }
        // Repair only changes files it understands. One named like a segment may hold records
        // the log cannot place; cutting or removing around it could lose them for good.
        if !result.misnamedSegments.isEmpty {
            throw ToolFailure.damaged("nothing changed: " + result.misnamedSegments.map(\.description).joined(separator: "; ")
                                      + ". Move it out of the log directory (or rename it to the segment it is) and run repair again")
        }
        var actions: [Action] = []
        var needsDataLoss = false
        var cutSegment: UInt64?
        if let first = result.problems.first, let segment = result.segments.first(where: { $0.file == first.file }) {
            needsDataLoss = !first.tornTail
            actions.append(.cut(file: segment.file, at: first.position < Int64(Format.segmentHeaderBytes) ? 0 : first.position, fileBytes: segment.fileBytes,
                                fromOffset: first.offset, reason: first.reason))
            cutSegment = segment.baseOffset
            for later in result.segments where later.baseOffset > segment.baseOffset {
                actions.append(.remove(file: later.file, bytes: later.fileBytes, baseOffset: later.baseOffset))
            }
        }
        for segment in result.segments where segment.index != "ok" {
            if let cutSegment, segment.baseOffset >= cutSegment { continue }
            if segment.baseOffset == result.segments.last?.baseOffset { continue }  // the active segment's index is written at close
            actions.append(.rebuildIndex(baseOffset: segment.baseOffset, segmentBytes: segment.validBytes,
                                         file: inspector.indexPath(segment.baseOffset)))
        }
        if actions.isEmpty {
            print(common.json ? "{\"actions\":[],\"applied\":false,\"healthy\":true}" : "healthy: nothing to repair")
            return
        }
        if !common.json { for action in actions { print((apply ? "" : "would ") + "\(action)") } }
        if needsDataLoss && !acceptDataLoss {
            throw ToolFailure.damaged("corruption before the tail; intact data follows it. Re-run with --accept-data-loss to keep only the valid prefix (point-in-time)")
        }
        guard apply else {
            if common.json { printJSON(["actions": actions.map(\.description)]) }
            throw ToolFailure.damaged("dry run: nothing changed; re-run with --apply")
        }
        let backup = try backUp(actions, in: inspector.directory)
        for action in actions {
            switch action {
            case .cut(let file, let at, _, _, _):
                let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file))
                try handle.truncate(atOffset: UInt64(max(at, 0)))
                try handle.synchronize()
                try handle.close()
                if at == 0 { try FileManager.default.removeItem(atPath: file) }
                try? FileManager.default.removeItem(atPath: indexPath(ofSegment: file))
            case .remove(let file, _, _):
                try? FileManager.default.removeItem(atPath: indexPath(ofSegment: file))
                try FileManager.default.removeItem(atPath: file)
            case .rebuildIndex(let base, let bytes, _):
                try inspector.rebuildIndex(segment: base, segmentBytes: bytes)
            }
        }
        // Segment lengths changed: the clean-shutdown marker no longer describes them.
        try? FileManager.default.removeItem(atPath: inspector.directory + "/" + Format.cleanMarkerName)
        try PosixFileSystem().syncDirectory(inspector.directory)
        if common.json {
            printJSON(["applied": actions.map(\.description), "backup": [backup]])
        } else {
            print("repaired; originals saved in \(backup)")
        }
    }

    /// Copies every file an action touches into a fresh timestamped folder inside the log.
    private func backUp(_ actions: [Action], in directory: String) throws -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        var folder = directory + "/repair-backup-" + formatter.string(from: Date())
        var suffix = 1
        while FileManager.default.fileExists(atPath: folder) { folder += "-\(suffix)"; suffix += 1 }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        var paths: [String] = []
        for action in actions {
            switch action {
            case .cut(let file, _, _, _, _), .remove(let file, _, _):
                paths += [file, indexPath(ofSegment: file)]
            case .rebuildIndex(_, _, let file):
                paths.append(file)
            }
        }
        for path in paths where FileManager.default.fileExists(atPath: path) {
            try FileManager.default.copyItem(atPath: path, toPath: folder + "/" + URL(fileURLWithPath: path).lastPathComponent)
        }
        return folder
    }

    /// The index file beside a segment file (format.md §1: same base offset, `.index`).
    private func indexPath(ofSegment file: String) -> String {
        String(file.dropLast(Format.segmentSuffix.count)) + Format.indexSuffix
    }
}
