import NIOCore

/// The primary's copy of the batches it appended last, so that shipping them to a follower that
/// is caught up needs no read of the log: without it, every `ship` of a sync append went to the
/// thread pool and back (two hand-offs between threads, about half of a sync append's time on
/// loopback). Bounded in bytes; a follower that is further behind is read from disk as before.
/// Valid because a primary's log only grows at its end while it is primary (it never truncates
/// or resets its own log; the driver, and this with it, goes away on a step-down).
/// Confined to the driver's event loop.
struct RecentBatches {
    private var byFirstOffset: [UInt64: (bytes: [UInt8], nextOffset: UInt64)] = [:]
    private var order: [UInt64] = []
    private var orderStart = 0
    private var bytes = 0
    let maxBytes: Int

    init(maxBytes: Int) { self.maxBytes = maxBytes }

    /// Keeps `batch` (a whole stored batch holding offsets first..<nextOffset), dropping the
    /// oldest beyond `maxBytes`.
    mutating func insert(_ batch: [UInt8], first: UInt64, nextOffset: UInt64) {
        guard batch.count <= maxBytes, byFirstOffset[first] == nil else { return }
        byFirstOffset[first] = (batch, nextOffset)
        order.append(first)
        bytes += batch.count
        while bytes > maxBytes, orderStart < order.count {
            if let dropped = byFirstOffset.removeValue(forKey: order[orderStart]) { bytes -= dropped.bytes.count }
            orderStart += 1
        }
        if orderStart > 1024, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }

    /// Whole batches from `from` on, contiguous, about `maxBytes` (at least one), none reaching
    /// `limit` or past, copied into one send buffer; nil unless the batch starting at `from` is here.
    func read(from: UInt64, maxBytes: Int, below limit: UInt64, allocator: ByteBufferAllocator) -> ShipRead? {
        guard let first = byFirstOffset[from], first.nextOffset <= limit else { return nil }
        // The exact size: a caught-up follower's ship is one small batch, and a buffer of
        // `maxBytes` (1 MiB) for it cost a large malloc and free on every sync append.
        var capacity = 0
        var next = from
        while capacity < maxBytes, next < limit, let batch = byFirstOffset[next], batch.nextOffset <= limit {
            capacity += batch.bytes.count
            next = batch.nextOffset
        }
        var read = ShipRead(from: from, allocator: allocator, capacity: capacity)
        while read.bytes < maxBytes, read.nextOffset < limit, let batch = byFirstOffset[read.nextOffset],
              batch.nextOffset <= limit {
            read.append(batch.bytes, batchNextOffset: batch.nextOffset)
        }
        return read
    }

    /// Forgets everything (the log was cut or reset under it).
    mutating func removeAll() {
        byFirstOffset = [:]
        order = []
        orderStart = 0
        bytes = 0
    }
}
