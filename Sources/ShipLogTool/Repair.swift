import ArgumentParser
import Foundation
import ShipLogStorage

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut a torn tail, rebuild indexes, and (with --accept-data-loss) keep only the valid prefix.",
        discussion: """
            Dry run unless --apply. Before changing anything, the files it touches are copied into \
            DIR/repair-backup-<time>/ and synced (written as repair-backup-<time>.partial/ and renamed \
            when whole; refused when the disk cannot hold the copy). Later segments are removed newest first and the \
            damaged one is cut last, so an interrupted repair leaves the old log or a prefix of it; \
            running it again finishes the job. Refuses a log locked by a running process.
            Example: shiplog repair /var/lib/app/log --apply
            """)

    @OptionGroup var common: CommonOptions

    @Flag(help: "Change files (default: only print the plan).")
    var apply = false

    @Flag(help: "Allow dropping valid-looking data after corruption in the middle of the log (point-in-time).")
    var acceptDataLoss = false

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
        removeIncompleteBackups()
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
        let plan = try RepairPlan(result, inspector: inspector)
        if plan.actions.isEmpty {
            print(common.json ? "{\"actions\":[],\"applied\":false,\"healthy\":true}" : "healthy: nothing to repair")
            return
        }
        let backup = try RepairBackup(of: plan.touchedFiles, in: inspector.directory)
        let refused = plan.needsDataLoss && !acceptDataLoss
        let repair = RepairRun(inspector: inspector, plan: plan, backupPath: backup.path)
        let steps = repair.steps
        if common.json {
            if refused || !apply { printJSON(["actions": steps.map(\.description)]) }
        } else {
            // A run that will not act says "would" for every step, so nobody reads a refused
            // run's plan as done.
            let verb = apply && !refused ? "" : "would "
            print(verb + backup.summary)
            for step in steps { print(verb + step.description) }
            if !apply || refused, let shortfall = backup.spaceShortfall() { print("note: \(shortfall)") }
        }
        if refused {
            throw ToolFailure.damaged("corruption before the tail; intact data follows it. Re-run with --accept-data-loss to keep only the valid prefix (point-in-time); nothing was changed")
        }
        guard apply else { throw ToolFailure.damaged("dry run: nothing changed; re-run with --apply") }
        if let shortfall = backup.spaceShortfall() { throw ToolFailure.damaged(shortfall + "; nothing was changed") }
        try backup.write()
        try repair.run()
        if common.json {
            printJSON(["applied": steps.map(\.description), "backup": [backup.path]])
        } else {
            print("repaired; originals saved in \(backup.path)")
        }
    }

    /// Backups an interrupted repair left half-written: with the lock held no other repair
    /// is writing them, so they go (a dry run only mentions them).
    private func removeIncompleteBackups() {
        for folder in RepairBackup.incomplete(in: common.directory) {
            guard apply else {
                note("would remove \(folder), an incomplete backup left by an interrupted repair")
                continue
            }
            do {
                try FlatFolder.remove(folder)
                note("removed \(folder), an incomplete backup left by an interrupted repair")
            } catch {
                FileHandle.standardError.write(Data("shiplog: could not remove the incomplete backup \(folder): \(error)\n".utf8))
            }
        }
    }

    /// A line for people: standard output, or standard error when that is JSON.
    private func note(_ line: String) {
        if common.json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
    }
}
