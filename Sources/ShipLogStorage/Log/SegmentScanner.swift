/// Reads the batches of one segment in order through a large buffer, validating each:
/// header fields, bounds, CRC. It never decides what an invalid batch means; recovery and
/// readers do (LevelDB's log reader works the same way).
struct SegmentScanner {
    enum Step {
        case batch(StoredBatch, position: Int64)
        /// `position` is the end of the last intact batch: either the limit was reached or
        /// only zeroes follow within the buffer (preallocated space).
        case end(position: Int64)
        /// The bytes at `position` are not an intact batch.
        case invalid(position: Int64, reason: String)
    }

    let file: any StorageFile
    private let limit: Int64
    private var buffer: [UInt8]
    private var bufferStart: Int64
    private var bufferFill = 0
    private(set) var position: Int64

    /// Scans from `position` up to `limit` (the file's size when nil).
    init(file: any StorageFile, from position: Int64, limit: Int64? = nil, bufferBytes: Int = 1 << 20) throws {
        self.file = file
        self.limit = try limit ?? file.size()
        self.position = position
        self.bufferStart = position
        self.buffer = [UInt8](repeating: 0, count: bufferBytes)
    }

    /// Makes bytes [position, position + count) resident, reading at most up to `limit`.
    /// Returns how many of them are available.
    private mutating func fill(_ count: Int) throws -> Int {
        let have = Int(bufferStart + Int64(bufferFill) - position)
        if have >= count { return count }
        let wanted = Int(min(Int64(count), limit - position))
        if wanted <= have { return max(have, 0) }
        let keepFrom = Int(position - bufferStart)
        if buffer.count < wanted { // a batch larger than the buffer
            var grown = [UInt8](repeating: 0, count: wanted)
            grown.withUnsafeMutableBytes { g in
                buffer.withUnsafeBytes { b in
                    if have > 0 { g.baseAddress!.copyMemory(from: b.baseAddress! + keepFrom, byteCount: have) }
                }
            }
            buffer = grown
        } else if have > 0 && keepFrom > 0 {
            buffer.withUnsafeMutableBytes { b in
                b.baseAddress!.copyMemory(from: b.baseAddress! + keepFrom, byteCount: have)
            }
        }
        bufferStart = position
        bufferFill = max(have, 0)
        let toRead = Int(min(Int64(buffer.count - bufferFill), limit - (bufferStart + Int64(bufferFill))))
        if toRead > 0 {
            let start = bufferFill
            let got = try buffer.withUnsafeMutableBytes { b in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: b[start..<(start + toRead)]),
                              at: bufferStart + Int64(start))
            }
            bufferFill += got
        }
        return min(count, bufferFill)
    }

    mutating func next() throws -> Step {
        if position >= limit { return .end(position: position) }
        let available = try fill(Format.batchHeaderBytes)
        let offsetInBuffer = Int(position - bufferStart)
        if available < Format.batchHeaderBytes {
            let tailIsZero = buffer[offsetInBuffer..<(offsetInBuffer + available)].allSatisfy { $0 == 0 }
            if tailIsZero { return .end(position: position) }
            return .invalid(position: position, reason: "torn batch header (\(available) bytes before end of file)")
        }
        let decoded = buffer.withUnsafeBytes { raw in
            BatchHeader.decode(UnsafeRawBufferPointer(rebasing: raw[offsetInBuffer..<(offsetInBuffer + Format.batchHeaderBytes)]))
        }
        let header: BatchHeader
        switch decoded {
        case .success(let h): header = h
        case .failure(.zeroes): return .end(position: position)
        case .failure(let failure): return .invalid(position: position, reason: "bad batch header: \(failure)")
        }
        let total = header.totalBytes
        let got = try fill(total)
        guard got == total else {
            return .invalid(position: position, reason: "torn batch: \(got) of \(total) bytes present")
        }
        let start = Int(position - bufferStart)
        let bytes = Array(buffer[start..<(start + total)])
        do {
            let batch = try StoredBatch(bytes: bytes, file: file.path, position: position)
            let at = position
            position += Int64(total)
            return .batch(batch, position: at)
        } catch let error as LogError {
            if case .corruption(_, _, _, let reason) = error { return .invalid(position: position, reason: reason) }
            throw error
        }
    }

    /// Looks past an invalid spot for evidence of later data: an intact batch anywhere
    /// after `position`, and the last non-zero byte. Used to tell a torn tail (nothing
    /// after) from corruption in the middle (intact data after).
    static func probeAfter(file: any StorageFile, position: Int64) throws -> (intactBatchAt: Int64?, lastNonZero: Int64?) {
        // Holes read as zeroes, so only the ranges that may hold data are read. A batch is
        // written whole, so it lies inside one of them.
        var lastNonZero: Int64?
        var intact: Int64?
        for range in try file.dataRanges(from: position) {
            let bytes = [UInt8](unsafeUninitializedCapacity: Int(range.count)) { buffer, count in
                count = (try? file.read(into: UnsafeMutableRawBufferPointer(buffer), at: range.lowerBound)) ?? 0
            }
            if let last = bytes.lastIndex(where: { $0 != 0 }) { lastNonZero = range.lowerBound + Int64(last) }
            // Not at `position` itself: that is the invalid batch being looked past.
            if intact == nil, let found = firstIntactBatch(in: bytes, from: range.lowerBound == position ? 1 : 0) {
                intact = range.lowerBound + Int64(found)
            }
        }
        return (intact, lastNonZero)
    }

    /// The index of the first intact batch (magic, valid header, matching CRC) at or after `start`.
    private static func firstIntactBatch(in bytes: [UInt8], from start: Int) -> Int? {
        let magic = withUnsafeBytes(of: Format.batchMagic.littleEndian) { Array($0) }
        var i = start
        while i + Format.batchHeaderBytes <= bytes.count {
            if bytes[i] == magic[0] && bytes[i + 1] == magic[1] && bytes[i + 2] == magic[2] && bytes[i + 3] == magic[3] {
                let candidate = bytes.withUnsafeBytes { raw -> Bool in
                    guard case .success(let h) = BatchHeader.decode(UnsafeRawBufferPointer(rebasing: raw[i..<(i + Format.batchHeaderBytes)])),
                        i + h.totalBytes <= raw.count
                    else { return false }
                    return BatchHeader.checksum(header: UnsafeRawBufferPointer(rebasing: raw[i...]),
                                                payload: UnsafeRawBufferPointer(rebasing: raw[(i + Format.batchHeaderBytes)..<(i + h.totalBytes)])) == h.crc
                }
                if candidate { return i }
            }
            i += 1
        }
        return nil
    }
}
