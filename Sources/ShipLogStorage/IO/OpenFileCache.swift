import Synchronization

/// A least-recently-used set of open files, so that a log of thousands of segments holds a
/// bounded number of descriptors (RocksDB's table cache, `max_open_files`).
///
/// Entries are keyed by the identity of their owner (a `SegmentFile`), never by path: a
/// path can come to name a new inode (a segment replaced by rename), and a new owner must
/// never be handed the old inode's descriptor. Owners remove their entry when they die,
/// before their identity can be reused.
///
/// Evicting only drops the cache's reference. A file closes its descriptor when its last
/// reference goes (`PosixFile.deinit`), so a reader still holding a file it got from here
/// keeps reading the same descriptor after eviction; it is closed when that reader is done.
final class OpenFileCache: Sendable {
    typealias Key = ObjectIdentifier

    /// How many files the cache holds at most.
    let capacity: Int
    private let lru: Mutex<LRUList>

    init(capacity: Int) {
        precondition(capacity >= 1, "an open-file cache must hold at least one file")
        self.capacity = capacity
        self.lru = Mutex(LRUList())
    }

    /// The cached file for `key`, now the most recently used; nil when not cached.
    func file(for key: Key) -> (any StorageFile)? {
        lru.withLock { lru in
            guard let file = lru.remove(key) else { return nil }
            lru.insertNewest(key, file)
            return file
        }
    }

    /// Caches `file` for `key` as the most recently used, evicting the least recently used
    /// files beyond capacity.
    func insert(_ file: any StorageFile, for key: Key) {
        let dropped: [any StorageFile] = lru.withLock { lru in
            var dropped: [any StorageFile] = []
            if let replaced = lru.remove(key) { dropped.append(replaced) }
            lru.insertNewest(key, file)
            while lru.count > capacity, let evicted = lru.removeOldest() { dropped.append(evicted) }
            return dropped
        }
        // Released here, outside the lock: the last reference closes the descriptor.
        _ = dropped
    }

    /// Takes `key`'s file out of the cache and returns it, if it was there.
    @discardableResult
    func remove(_ key: Key) -> (any StorageFile)? {
        lru.withLock { $0.remove(key) }
    }

    var count: Int { lru.withLock { $0.count } }

    /// The cached keys, most recently used first.
    var keysByRecency: [Key] { lru.withLock { $0.keysNewestFirst() } }
}

/// A doubly linked list threaded through a dictionary: O(1) lookup, touch and eviction.
private struct LRUList {
    typealias Key = ObjectIdentifier

    struct Node {
        var file: any StorageFile
        var newer: Key?
        var older: Key?
    }

    private var nodes: [Key: Node] = [:]
    private var newest: Key?
    private var oldest: Key?

    var count: Int { nodes.count }

    mutating func insertNewest(_ key: Key, _ file: any StorageFile) {
        precondition(nodes[key] == nil, "key is already in the list")
        nodes[key] = Node(file: file, newer: nil, older: newest)
        if let newest { nodes[newest]!.newer = key } else { oldest = key }
        newest = key
    }

    mutating func remove(_ key: Key) -> (any StorageFile)? {
        guard let node = nodes.removeValue(forKey: key) else { return nil }
        if let newer = node.newer { nodes[newer]!.older = node.older } else { newest = node.older }
        if let older = node.older { nodes[older]!.newer = node.newer } else { oldest = node.newer }
        return node.file
    }

    mutating func removeOldest() -> (any StorageFile)? {
        guard let oldest else { return nil }
        return remove(oldest)
    }

    func keysNewestFirst() -> [Key] {
        var keys: [Key] = []
        var at = newest
        while let key = at {
            keys.append(key)
            at = nodes[key]!.older
        }
        return keys
    }
}
