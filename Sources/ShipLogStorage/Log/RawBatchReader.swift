/// Where a batch ends in a `RawBatchReader.read`: the offset after it and the bytes read up to
/// its end (from the start of that read's buffer).
public struct StoredBatchEnd: Sendable, Equatable {
    public var nextOffset: UInt64
    public var bytes: Int
    public init(nextOffset: UInt64, bytes: Int) {
        self.nextOffset = nextOffset
        self.bytes = bytes
    }
}

/// What one `RawBatchReader.read` found.
public enum RawBatchRead: Sendable, Equatable {
    /// Whole batches, back to back from the buffer's start (empty at the log's end or `limit`).
    case batches([StoredBatchEnd])
    /// The next batch is longer than the buffer: read again with at least this many bytes.
    case needsBytes(Int)
}

/// Reads stored batches as raw bytes straight into a caller's buffer, front to back, for a
/// primary that ships them: one pread per call, no copy per batch and no CRC check. Each
/// header is decoded and the offsets must be contiguous, so what it returns is whole batches
/// in order; their CRCs are the receiver's to check (a follower checks every batch before it
/// writes it). Not for readers that interpret the bytes: use `BatchCursor` for those.
///
/// Like `BatchCursor`, it never mixes the log before and after a `truncate`: a truncation
/// below what it has returned makes `read` throw `LogError.truncated`; one that happens during
/// a read makes it read again.
public struct RawBatchReader {
    let log: SegmentLog
    /// The offset the next read starts at (always a batch's first offset).
    public private(set) var nextOffset: UInt64
    /// The stored length of the batch at `nextOffset`, when the last read saw its header but
    /// not all of it (it ran past the buffer): a caller with less room left than this knows a
    /// read now would return nothing, and spares the pread.
    public private(set) var nextBatchBytes: Int?
    /// The segment being read: the next batch's position and how far the log let it read.
    private var place: (file: any StorageFile, position: Int64, limit: Int64)?
    private var generation: UInt64

    /// A reader from `offset`, which must be the first offset of a stored batch.
    public init(log: SegmentLog, from offset: UInt64) {
        self.log = log
        self.nextOffset = offset
        self.generation = log.truncationGeneration.load(ordering: .sequentiallyConsistent)
    }

    /// Reads whole batches from `nextOffset` into `buffer`, none holding `limit` or past it, and
    /// advances past them. Stops at the end of a segment (the next call goes on in the next one).
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer, below limit: UInt64) throws -> RawBatchRead {
        nextBatchBytes = nil
        for _ in 0..<SegmentLog.readAttemptsMax {
            try checkTruncation()
            guard nextOffset < limit else { return .batches([]) }
            if place == nil || place!.position >= place!.limit {
                guard try locate() else { return .batches([]) }
            }
            let (file, position, segmentLimit) = place!
            let want = Int(min(Int64(buffer.count), segmentLimit - position))
            let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]), at: position)
            // A truncation during the pread may have replaced what it read: read again.
            if log.truncationGeneration.load(ordering: .sequentiallyConsistent) != generation { continue }
            var ends: [StoredBatchEnd] = []
            var at = 0
            var expected = nextOffset
            var reachedLimit = false
            while at + Format.batchHeaderBytes <= count {
                let header: BatchHeader
                do {
                    header = try decodeHeader(UnsafeRawBufferPointer(rebasing: buffer[at..<at + Format.batchHeaderBytes]),
                                              file: file, position: position + Int64(at))
                } catch {
                    // The whole batches before a damaged header go first; the next read starts at it and throws.
                    if ends.isEmpty { throw error }
                    break
                }
                guard header.firstOffset == expected else {
                    throw LogError.corruption(file: file.path, position: position + Int64(at), offset: header.firstOffset,
                                              reason: "offset gap: expected a batch starting at \(expected)")
                }
                guard header.nextOffset <= limit else { reachedLimit = true; break }
                guard at + header.totalBytes <= count else {
                    // Below the segment's limit lie whole batches only (the log publishes a
                    // batch once all of it is written), so one running past it is damage: an
                    // empty read here would look like the log's end, and the follower would
                    // wait below it for ever (BatchCursor reports the same as corruption). The
                    // whole batches before it go first; the next read starts at it and throws.
                    if ends.isEmpty, position + Int64(at) + Int64(header.totalBytes) > segmentLimit {
                        throw LogError.corruption(file: file.path, position: position + Int64(at), offset: header.firstOffset,
                                                  reason: "batch of \(header.totalBytes) bytes runs past the segment's end at byte \(segmentLimit)")
                    }
                    if ends.isEmpty, header.totalBytes > buffer.count { return .needsBytes(header.totalBytes) }
                    nextBatchBytes = header.totalBytes
                    break
                }
                at += header.totalBytes
                expected = header.nextOffset
                ends.append(StoredBatchEnd(nextOffset: expected, bytes: at))
            }
            // A pread comes up short only at the file's end; with no truncation since (checked
            // above), a file ending before the bytes the log published is damage too.
            if !reachedLimit, ends.isEmpty, count < want {
                throw LogError.corruption(file: file.path, position: position + Int64(count), offset: expected,
                                          reason: "the segment file ends before the log's end at byte \(segmentLimit)")
            }
            if ends.isEmpty, at == 0, count < Format.batchHeaderBytes, buffer.count < Format.batchHeaderBytes, want > 0 {
                return .needsBytes(Format.batchHeaderBytes)
            }
            place!.position += Int64(at)
            nextOffset = expected
            return .batches(ends)
        }
        throw LogError.truncated(readerOffset: nextOffset, newNextOffset: log.nextOffset)
    }

    /// Decodes a header and bounds its length by the log's `maxBatchBytes`: no batch larger was
    /// ever appended (or accepted from a primary), so a larger length is a damaged field. Unbounded,
    /// a length that still fits in the segment would make a ship allocate and read up to it
    /// (`needsBytes`) before the follower's CRC check refused the bytes.
    private func decodeHeader(_ bytes: UnsafeRawBufferPointer, file: any StorageFile, position: Int64) throws -> BatchHeader {
        switch BatchHeader.decode(bytes) {
        case .success(let header):
            guard header.totalBytes <= log.options.maxBatchBytes else {
                throw LogError.corruption(file: file.path, position: position, offset: header.firstOffset,
                                          reason: "batch header says \(header.totalBytes) bytes, over maxBatchBytes \(log.options.maxBatchBytes)")
            }
            return header
        case .failure(let failure):
            throw LogError.corruption(file: file.path, position: position, offset: nextOffset, reason: "batch header: \(failure)")
        }
    }

    /// Accounts for truncations since the last look (see `BatchCursor`): forgets the segment,
    /// and throws when one removed offsets this reader has already passed.
    private mutating func checkTruncation() throws {
        let now = log.truncationGeneration.load(ordering: .sequentiallyConsistent)
        guard now != generation else { return }
        let lowest = log.lowestTruncation(since: generation) ?? UInt64.max
        generation = now
        place = nil
        let first = log.state.withLock { $0.firstOffset }
        if lowest < nextOffset || nextOffset < first {
            throw LogError.truncated(readerOffset: nextOffset, newNextOffset: max(lowest, first))
        }
    }

    /// Finds the segment holding `nextOffset` and the position of the batch starting there
    /// (from the sparse index, then header by header). False at the log's end.
    private mutating func locate() throws -> Bool {
        guard let found = try log.locate(nextOffset) else { return false }
        let file = try found.segment.handle.file()
        var position = found.start
        var header = [UInt8](repeating: 0, count: Format.batchHeaderBytes)
        while position < found.limit {
            let count = try header.withUnsafeMutableBytes { try file.read(into: $0, at: position) }
            guard count == Format.batchHeaderBytes else {
                throw LogError.corruption(file: file.path, position: position, offset: nextOffset, reason: "short batch header")
            }
            let decoded = try header.withUnsafeBytes { try decodeHeader($0, file: file, position: position) }
            if decoded.firstOffset == nextOffset { break }
            guard decoded.nextOffset <= nextOffset else {
                throw LogError.corruption(file: file.path, position: position, offset: decoded.firstOffset,
                                          reason: "offset \(nextOffset) is not a batch boundary (the batch holding it starts at \(decoded.firstOffset))")
            }
            position += Int64(decoded.totalBytes)
        }
        place = (file, position, found.limit)
        return position < found.limit
    }
}
