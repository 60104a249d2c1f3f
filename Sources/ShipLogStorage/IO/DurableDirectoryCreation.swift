extension FileSystem {
    /// Creates `path` and any missing parents, then fsyncs the parent of each directory it
    /// created. A directory's entry lives in its parent, and mkdir leaves that entry in the
    /// page cache: without the sync, power loss can take the new directory, and every file
    /// already synced inside it, away.
    func createDirectoryDurably(_ path: String) throws {
        var missing: [String] = []
        var at = path
        while isDirectory(at) == nil {
            missing.append(at)
            let parent = parentDirectory(of: at)
            if parent == at { break }
            at = parent
        }
        try createDirectory(path)
        // Outermost first, so each synced entry names a directory whose own entry is durable.
        for created in missing.reversed() {
            try syncDirectory(parentDirectory(of: created))
        }
    }
}

/// The directory holding the last component of `path`: "a/b" → "a", "b" → ".", "/b" → "/".
/// Trailing and repeated slashes are ignored, as the kernel ignores them.
func parentDirectory(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "." }
    var parent = trimmed[..<slash]
    while parent.hasSuffix("/") { parent = parent.dropLast() }
    return parent.isEmpty ? "/" : String(parent)
}
