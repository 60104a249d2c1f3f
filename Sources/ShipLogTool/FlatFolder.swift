import Foundation
import ShipLogStorage

/// The folders the tool writes and may have to remove again (a backup, a partial replay
/// target) hold files only, so removing one is a loop and an rmdir; anything else in them,
/// a subfolder, makes the removal fail rather than reach further.
enum FlatFolder {
    static func remove(_ path: String) throws {
        let fs = PosixFileSystem()
        guard fs.isDirectory(path) == true else { return }
        for name in try fs.contentsOfDirectory(path) { try fs.removeFile(path + "/" + name) }
        guard rmdir(path) == 0 else { throw LogError.io(operation: "rmdir", path: path, errno: errno) }
    }
}
