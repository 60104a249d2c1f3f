import Foundation
import ShipLogStorage

/// The copy of every file a repair touches, made and made durable before the log changes.
///
/// It is written under `<name>.partial` and renamed to `<name>` only once every file and the
/// folder are synced, so a folder named `repair-backup-<time>` is always whole: a killed or
/// failed copy once stayed in the log looking complete, and filled the disk the log needed.
/// The next `repair --apply` removes a `.partial` one (it holds the log's lock, so no other
/// repair is writing it).
struct RepairBackup {
    static let namePrefix = "repair-backup-"
    static let partialSuffix = ".partial"
    /// Free space required beyond the copy itself: directory entries and rebuilt indexes.
    static let marginBytes: Int64 = 1 << 20

    /// Where the complete backup will be.
    let path: String
    var partialPath: String { path + Self.partialSuffix }
    let logDirectory: String
    /// The touched files that exist (an index may be missing: that is often why we repair).
    let files: [String]
    /// At most what the copy writes: the files' data, holes left out.
    let bytes: Int64

    init(of touched: [String], in logDirectory: String) throws {
        self.logDirectory = logDirectory
        let fs = PosixFileSystem()
        files = touched.filter { fs.fileSize($0) != nil }
        bytes = try files.reduce(0) { $0 + (try FileSpace.dataBytes(of: $1)) }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let base = logDirectory + "/" + Self.namePrefix + formatter.string(from: Date())
        var candidate = base
        var suffix = 1
        while fs.isDirectory(candidate) != nil || fs.isDirectory(candidate + Self.partialSuffix) != nil {
            candidate = base + "-\(suffix)"
            suffix += 1
        }
        path = candidate
    }

    var summary: String { "back up \(files.count) files (\(bytes) bytes) into \(path)" }

    /// Why the file system cannot hold the copy, or nil when it can.
    func spaceShortfall() -> String? {
        let available: Int64
        do {
            available = try FileSpace.availableBytes(at: logDirectory)
        } catch {
            return "cannot tell whether the backup fits: \(error)"
        }
        guard available < bytes + Self.marginBytes else { return nil }
        return "not enough free space to back up before repairing: the backup needs \(bytes) bytes and \(Self.marginBytes) to spare, "
            + "\(logDirectory) has \(available) free"
    }

    /// Copies the files, syncs them and the folder, renames it into place and syncs the log
    /// directory. On failure removes what it wrote and throws saying so; the log is untouched.
    func write() throws {
        let fs = PosixFileSystem()
        do {
            try fs.createDirectory(partialPath)
            for file in files {
                try Self.copy(file, to: partialPath + "/" + URL(fileURLWithPath: file).lastPathComponent)
            }
            // The copies' own entries, then the folder's name: a power cut must not keep the
            // repair's cut and lose the backup of what it cut.
            try fs.syncDirectory(partialPath)
            try fs.rename(partialPath, to: path)
            try fs.syncDirectory(logDirectory)
        } catch {
            let cleanup = cleanUpAfterFailure()
            throw ToolFailure.damaged("backing up into \(path) failed: \(error); nothing in the log was changed, \(cleanup)")
        }
    }

    /// Removes the partial folder after a failed copy; says what is left.
    private func cleanUpAfterFailure() -> String {
        if PosixFileSystem().isDirectory(path) == true { return "the backup in \(path) is complete" }
        do {
            try FlatFolder.remove(partialPath)
            return "the incomplete backup was removed"
        } catch {
            return "the incomplete backup \(partialPath) could not be removed (\(error)): delete it"
        }
    }

    /// Copies a file byte for byte, leaving its holes and all-zero blocks as holes so that a
    /// preallocated segment costs only its data, then syncs the copy.
    private static func copy(_ source: String, to destination: String) throws {
        let fs = PosixFileSystem()
        let input = try fs.openFileForReading(source)
        let output = try fs.openFile(destination, create: true)
        let blockBytes = 64 << 10
        var buffer = [UInt8](repeating: 0, count: blockBytes)
        for range in try input.dataRanges(from: 0) {
            var at = range.lowerBound
            while at < range.upperBound {
                let count = Int(min(Int64(blockBytes), range.upperBound - at))
                let got = try buffer.withUnsafeMutableBytes {
                    try input.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), at: at)
                }
                if got == 0 { break }
                if buffer[0..<got].contains(where: { $0 != 0 }) {
                    try buffer.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[0..<got]), at: at) }
                }
                at += Int64(got)
            }
        }
        try output.truncate(to: try input.size())
        try output.sync()
    }

    /// Folders named `repair-backup-….partial` in the log: copies an interrupted repair left.
    static func incomplete(in logDirectory: String) -> [String] {
        ((try? PosixFileSystem().contentsOfDirectory(logDirectory)) ?? [])
            .filter { $0.hasPrefix(namePrefix) && $0.hasSuffix(partialSuffix) }
            .sorted().map { logDirectory + "/" + $0 }
    }
}
