import ShipLogProtocol
import ShipLogStorage

/// The node's election state file (`ELECTION` beside its log, format.md §13.2): read once at
/// start, replaced durably on every `persist` (a `.tmp` name, write, fsync, rename, fsync of the
/// directory, as every small file of the log is), so a crash leaves the old or the new state.
/// `ElectionStateFile` is the only encoder. Blocking: called on the thread pool.
struct ElectionStateStore: Sendable {
    let directory: String
    let fileSystem: any FileSystem

    var path: String { directory + "/" + ElectionStateFile.fileName }

    /// The state in the file; `.initial` when there is none (a node that never voted). A damaged
    /// file is an error: the node must not start as if it had never voted.
    func load() throws -> ElectionDurableState {
        guard fileSystem.isDirectory(path) != nil else { return .initial }
        let file = try fileSystem.openFileForReading(path)
        let size = try file.size()
        guard size <= Int64(ElectionStateFile.byteCount) * 2 else {
            throw ClusterError.damagedElectionState(path: path, reason: "\(size) bytes, expected \(ElectionStateFile.byteCount)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let read = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        do {
            return try ElectionStateFile.decode(Array(bytes[0..<read]))
        } catch {
            throw ClusterError.damagedElectionState(path: path, reason: "\(error)")
        }
    }

    /// Replaces the file with `state`; durable when it returns.
    func save(_ state: ElectionDurableState) throws {
        let bytes = ElectionStateFile.encode(state)
        let temporary = path + Format.temporarySuffix
        let file = try fileSystem.openFile(temporary, create: true)
        try file.truncate(to: 0)
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
        try file.sync()
        try fileSystem.rename(temporary, to: path)
        try fileSystem.syncDirectory(directory)
    }
}
