import Foundation
import Synchronization

/// A 2 MiB output buffer for `replay --exec`, mapped 2 MiB-aligned so the kernel can back it
/// with one transparent huge page.
///
/// Its bytes may be handed to the program's pipe by reference (vmsplice), and then the reader,
/// or whatever it splices them on to, may see any later change to them. So a chunk that has
/// been `gifted` is never reused: when the last region referring to it is written, it is
/// unmapped, and the next chunk is fresh memory. Chunks written with write(2) are reused.
final class OutputChunk: @unchecked Sendable {
    static let bytes = 2 << 20

    let base: UnsafeMutableRawPointer
    private let pool: ChunkPool
    private let giftedFlag = Atomic<Bool>(false)

    fileprivate init(base: UnsafeMutableRawPointer, pool: ChunkPool) {
        self.base = base
        self.pool = pool
    }

    /// Marks the chunk as (partly) given to the pipe by reference: it must not be written again.
    func markGifted() { giftedFlag.store(true, ordering: .releasing) }

    deinit { pool.recycle(base, gifted: giftedFlag.load(ordering: .acquiring)) }
}

/// A run of bytes in a chunk, ready for the pipe; it keeps its chunk alive.
struct OutputRegion: @unchecked Sendable {
    let chunk: OutputChunk
    let start: Int
    let count: Int
}

/// Hands out chunks: fresh huge-page mappings when they will be gifted, reused ones otherwise.
final class ChunkPool: @unchecked Sendable {
    let hugePages: Bool
    private let spare = Mutex<[UInt]>([])
    private let spareMax = 8

    init(hugePages: Bool) { self.hugePages = hugePages }

    /// Chunks keep their pool alive, so by now every chunk has come back.
    deinit { drain() }

    func take() throws -> OutputChunk {
        if let address = spare.withLock({ $0.popLast() }) {
            return OutputChunk(base: UnsafeMutableRawPointer(bitPattern: address)!, pool: self)
        }
        guard let base = Self.map(hugePages: hugePages) else {
            throw ToolFailure.failed("cannot map a \(OutputChunk.bytes >> 20) MiB output buffer: \(String(cString: strerror(errno)))")
        }
        return OutputChunk(base: base, pool: self)
    }

    fileprivate func recycle(_ base: UnsafeMutableRawPointer, gifted: Bool) {
        let kept = !gifted && spare.withLock { list in
            guard list.count < spareMax else { return false }
            list.append(UInt(bitPattern: base))
            return true
        }
        if !kept { munmap(base, OutputChunk.bytes) }
    }

    /// Maps and faults in fresh chunks until `count` are spare, so that the zeroing of new
    /// memory happens on the calling thread (the writer, which mostly waits on the pipe)
    /// rather than on the encoding threads.
    func prefill(upTo count: Int) {
        while spare.withLock({ $0.count }) < count, let base = Self.map(hugePages: hugePages) {
            base.storeBytes(of: 0, as: UInt8.self)
            spare.withLock { $0.append(UInt(bitPattern: base)) }
        }
    }

    /// Unmaps the spare chunks; call when done.
    func drain() {
        for address in spare.withLock({ list in defer { list.removeAll() }; return list }) {
            munmap(UnsafeMutableRawPointer(bitPattern: address), OutputChunk.bytes)
        }
    }

    /// Maps twice the size and trims it to an aligned chunk: a huge page needs 2 MiB alignment.
    private static func map(hugePages: Bool) -> UnsafeMutableRawPointer? {
        let size = OutputChunk.bytes
        guard let mapping = mmap(nil, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapping != MAP_FAILED else { return nil }
        let address = UInt(bitPattern: mapping)
        let aligned = (address + UInt(size) - 1) & ~UInt(size - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(mapping, head) }
        if size - head > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + UInt(size))!, size - head) }
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        #if os(Linux)
        if hugePages { _ = madvise(base, size, MADV_HUGEPAGE) }
        #endif
        return base
    }
}

/// Fills chunks from one thread and cuts what it wrote into regions, one list per job.
struct ChunkWriter {
    private let pool: ChunkPool
    private var current: OutputChunk?
    private var used = 0
    private var regionStart = 0
    private var regions: [OutputRegion] = []

    init(pool: ChunkPool) { self.pool = pool }

    /// Room for `count` bytes (at most a chunk); `commit` says how many were written.
    mutating func reserve(_ count: Int) throws -> UnsafeMutableRawPointer {
        precondition(count <= OutputChunk.bytes, "reserve at most one chunk")
        if let current, used + count <= OutputChunk.bytes { return current.base + used }
        cutRegion()
        let chunk = try pool.take()
        current = chunk
        used = 0
        regionStart = 0
        return chunk.base
    }

    mutating func commit(_ count: Int) {
        assert(current != nil && used + count <= OutputChunk.bytes)
        used += count
    }

    /// Appends bytes of any length.
    mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        var from = 0
        while from < bytes.count {
            let piece = min(bytes.count - from, OutputChunk.bytes)
            let out = try reserve(piece)
            out.copyMemory(from: bytes.baseAddress! + from, byteCount: piece)
            commit(piece)
            from += piece
        }
    }

    /// The regions written since the last call. The current chunk stays in use: the next
    /// job's bytes follow in it.
    mutating func takeRegions() -> [OutputRegion] {
        cutRegion()
        defer { regions = [] }
        return regions
    }

    private mutating func cutRegion() {
        guard let current, used > regionStart else { return }
        regions.append(OutputRegion(chunk: current, start: regionStart, count: used - regionStart))
        regionStart = used
    }
}
