import Foundation
import ShipLogStorage

/// The new log `replay --into` writes, built beside its destination as `.<name>.partial`
/// and renamed into place only when complete.
///
/// Why: a copy cut short by a full disk or a kill once sat at the destination looking whole
/// (its error path even wrote a clean-shutdown marker, and the part verified healthy). Now
/// the destination either does not exist or holds the whole copy. A `.partial` left by a
/// killed replay is removed by the next replay into the same place, unless a running one
/// holds its lock.
final class ReplayTarget {
    let destination: String
    let partial: String
    private let parent: String
    private var log: SegmentLog?
    private(set) var appendedBatches = 0
    /// The copy has its final name: from here a failure leaves it whole.
    private var renamed = false

    init(destination: String) throws {
        let url = URL(fileURLWithPath: destination).standardizedFileURL
        self.destination = url.path
        parent = url.deletingLastPathComponent().path
        partial = parent + "/." + url.lastPathComponent + ".partial"
        let fs = PosixFileSystem()
        if fs.isDirectory(self.destination) == false {
            throw ToolFailure.usage("\(destination) is a file; replay writes into a new log only")
        }
        if let names = try? fs.contentsOfDirectory(self.destination), !names.isEmpty {
            throw ToolFailure.usage("\(destination) is not empty; replay writes into a new log only")
        }
        try removeStalePartial()
    }

    /// A `.partial` of an earlier replay: gone if it was killed, refused if it still runs.
    private func removeStalePartial() throws {
        let fs = PosixFileSystem()
        guard fs.isDirectory(partial) == true else { return }
        let lock: any FileLock
        do {
            lock = try fs.lockFile(partial + "/" + Format.lockFileName)
        } catch LogError.directoryLocked {
            throw ToolFailure.usage("another replay into \(destination) is running (it holds \(partial))")
        }
        defer { lock.unlock() }
        do {
            try FlatFolder.remove(partial)
        } catch {
            throw ToolFailure.usage("cannot remove \(partial), left by an interrupted replay: \(error)")
        }
    }

    /// Appends a batch, creating the log at the batch's first offset on the first call, so a
    /// copy that starts late (--from, --since) keeps the source's offsets.
    func append(_ batch: StoredBatch) throws {
        let log = try self.log ?? open(initialOffset: batch.header.firstOffset)
        try log.append(storedBatch: batch)
        appendedBatches += 1
    }

    private func open(initialOffset: UInt64) throws -> SegmentLog {
        var options = LogOptions()
        options.initialOffset = initialOffset
        options.durability = .buffered  // synced once at the end, before the rename
        let log = try SegmentLog.open(directory: partial, options: options)
        self.log = log
        return log
    }

    /// Syncs and closes the copy and renames it to the destination (an empty directory
    /// there is replaced), then syncs the parent so the name survives a power cut.
    /// `emptyAt` is the offset an empty copy starts at. Returns its offsets.
    func complete(emptyAt: UInt64) throws -> Range<UInt64> {
        let log = try self.log ?? open(initialOffset: emptyAt)
        let offsets = log.firstOffset..<log.nextOffset
        try log.sync()
        try log.close()
        self.log = nil
        let fs = PosixFileSystem()
        try fs.rename(partial, to: destination)
        renamed = true
        try fs.syncDirectory(parent)
        return offsets
    }

    /// Removes the partial copy without closing it cleanly: no clean-shutdown marker is ever
    /// written for a copy that failed. Returns what is left, for the error message.
    func abandon() -> String {
        if renamed { return "the copy at \(destination) is whole, but a power cut may still lose its name" }
        let opened = log != nil
        log = nil  // releases the lock, writes nothing
        var lock: (any FileLock)?
        if !opened {
            // Our open failed, perhaps because another replay holds this partial copy: remove
            // it only if nobody does.
            lock = try? PosixFileSystem().lockFile(partial + "/" + Format.lockFileName)
            if lock == nil { return "\(destination) was not created" }
        }
        defer { lock?.unlock() }
        do {
            try FlatFolder.remove(partial)
            return "\(destination) was not created and the incomplete copy was removed"
        } catch {
            return "\(destination) was not created; the incomplete copy \(partial) could not be removed (\(error))"
        }
    }
}
