/// A record batch exactly as stored in a segment: the 48-byte header and its payload
/// (format.md §3). Replication ships these bytes unchanged; `decode()` opens them.
public struct StoredBatch: Sendable, Equatable {
    public private(set) var header: BatchHeader
    /// Header and payload, `header.totalBytes` long.
    public private(set) var bytes: [UInt8]
    /// The CRC was checked against `bytes` (`init(bytes:)`) or computed over them (`seal`):
    /// both are private(set), so it stays true. `SegmentLog`'s stored append skips its own
    /// check then, so a replicated batch is checksummed once on the follower, not twice.
    /// Not part of equality.
    var checksumVerified = false

    public static func == (lhs: StoredBatch, rhs: StoredBatch) -> Bool {
        lhs.header == rhs.header && lhs.bytes == rhs.bytes
    }

    /// Wraps bytes read from disk or received from a peer, checking the header's fields
    /// and the CRC. Throws `corruption` naming `file` and `position` when they fail.
    public init(bytes: [UInt8], file: String = "<memory>", position: Int64 = 0) throws {
        guard bytes.count >= Format.batchHeaderBytes else {
            throw LogError.corruption(file: file, position: position, offset: nil,
                                      reason: "batch of \(bytes.count) bytes is shorter than its header")
        }
        let header: BatchHeader
        switch bytes.withUnsafeBytes({ BatchHeader.decode($0) }) {
        case .success(let decoded): header = decoded
        case .failure(let failure):
            throw LogError.corruption(file: file, position: position, offset: nil, reason: "batch header: \(failure)")
        }
        guard bytes.count == header.totalBytes else {
            throw LogError.corruption(file: file, position: position, offset: header.firstOffset,
                                      reason: "batch is \(bytes.count) bytes, header says \(header.totalBytes)")
        }
        self.header = header
        self.bytes = bytes
        guard checksumMatches else {
            throw LogError.corruption(file: file, position: position, offset: header.firstOffset,
                                      reason: "batch checksum mismatch")
        }
        checksumVerified = true
    }

    /// Builds an unsealed batch from records: offset, epoch and timestamp are set by `seal`.
    /// LZ4 is used when `codec` is `.lz4` and it makes the payload smaller.
    public init(encoding records: [[UInt8]], codec: CompressionCodec) {
        precondition(!records.isEmpty, "a batch holds at least one record")
        var sectionBytes = 0
        for record in records { sectionBytes += Format.recordLengthPrefixBytes + record.count }
        let headerBytes = Format.batchHeaderBytes

        func writeSection(_ out: UnsafeMutableRawBufferPointer) {
            var at = 0
            for record in records {
                out.setLittleEndian(UInt32(record.count), at: at)
                at += Format.recordLengthPrefixBytes
                record.withUnsafeBytes { source in
                    if source.count > 0 { (out.baseAddress! + at).copyMemory(from: source.baseAddress!, byteCount: source.count) }
                }
                at += record.count
            }
            assert(at == sectionBytes)
        }

        var storedCodec = CompressionCodec.none
        var stored: [UInt8]
        if codec == .lz4 {
            let bound = LZ4Block.compressBound(sectionBytes)
            let section = [UInt8](unsafeUninitializedCapacity: sectionBytes) { buffer, count in
                writeSection(UnsafeMutableRawBufferPointer(buffer))
                count = sectionBytes
            }
            stored = [UInt8](unsafeUninitializedCapacity: headerBytes + max(bound, sectionBytes)) { buffer, count in
                let out = UnsafeMutableRawBufferPointer(buffer)
                let compressed = section.withUnsafeBytes { source in
                    LZ4Block.compress(source, into: UnsafeMutableRawBufferPointer(rebasing: out[headerBytes...]))
                }
                if let compressed, compressed < sectionBytes {
                    storedCodec = .lz4
                    count = headerBytes + compressed
                } else {
                    section.withUnsafeBytes { (out.baseAddress! + headerBytes).copyMemory(from: $0.baseAddress!, byteCount: sectionBytes) }
                    count = headerBytes + sectionBytes
                }
            }
        } else {
            stored = [UInt8](unsafeUninitializedCapacity: headerBytes + sectionBytes) { buffer, count in
                writeSection(UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[headerBytes...]))
                count = headerBytes + sectionBytes
            }
        }
        header = BatchHeader(
            codec: storedCodec, recordCount: UInt32(records.count), firstOffset: 0, leaderEpoch: 0,
            timestampMs: 0, uncompressedBytes: UInt32(sectionBytes), storedBytes: UInt32(stored.count - headerBytes))
        bytes = stored
    }

    /// Assigns the batch its place in a log and computes the CRC over the final header.
    public mutating func seal(firstOffset: UInt64, leaderEpoch: UInt64, timestampMs: Int64) {
        header.firstOffset = firstOffset
        header.leaderEpoch = leaderEpoch
        header.timestampMs = timestampMs
        let header = self.header
        bytes.withUnsafeMutableBytes { out in
            header.encode(into: out)
            let crc = BatchHeader.checksum(
                header: UnsafeRawBufferPointer(out),
                payload: UnsafeRawBufferPointer(rebasing: out[Format.batchHeaderBytes...]))
            out.setLittleEndian(crc, at: 4)
        }
        self.header.crc = bytes.withUnsafeBytes { $0.getLittleEndian(at: 4) }
        checksumVerified = true
    }

    public var checksumMatches: Bool {
        bytes.withUnsafeBytes { raw in
            BatchHeader.checksum(header: raw, payload: UnsafeRawBufferPointer(rebasing: raw[Format.batchHeaderBytes...]))
                == header.crc
        }
    }

    /// Calls `body` with each record's offset and bytes, decompressing into `scratch` (reused
    /// across calls) and allocating nothing per record: the path for replaying a whole log.
    /// The bytes are valid only during the call. The framing is checked before any record is
    /// delivered, so a batch with damaged framing throws without delivering any of its records.
    public func forEachRecord(scratch: inout [UInt8], file: String = "<memory>", position: Int64 = 0,
                              _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
        let header = self.header
        try withUncheckedSection(scratch: &scratch, file: file, position: position) { section in
            try RecordBatch.walk(section, header: header, file: file, position: position) { _, _ in }
            var offset = header.firstOffset
            try RecordBatch.walk(section, header: header, file: file, position: position) { start, length in
                try body(offset, UnsafeRawBufferPointer(rebasing: section[start..<(start + length)]))
                offset += 1
            }
        }
    }

    /// Calls `body` with the uncompressed record section (format.md §4: each record as a u32
    /// length and its bytes), decompressing into `scratch` when needed. The framing is checked
    /// before `body` sees it.
    public func withRecordSection<T>(scratch: inout [UInt8], file: String = "<memory>", position: Int64 = 0,
                                     _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        let header = self.header
        return try withUncheckedSection(scratch: &scratch, file: file, position: position) { section in
            try RecordBatch.walk(section, header: header, file: file, position: position) { _, _ in }
            return try body(section)
        }
    }

    /// Writes the uncompressed record section (format.md §4) into `target`, which must be
    /// exactly `header.uncompressedBytes` long, and checks its framing: for callers that want
    /// the frames in memory of their own, with no copy through a scratch buffer.
    public func decodeRecordSection(into target: UnsafeMutableRawBufferPointer, file: String = "<memory>",
                                    position: Int64 = 0) throws {
        precondition(target.count == Int(header.uncompressedBytes), "target must hold exactly the record section")
        try writeSection(into: target, file: file, position: position)
        try RecordBatch.walk(UnsafeRawBufferPointer(target), header: header, file: file, position: position) { _, _ in }
    }

    /// The record section, decompressed into `scratch` for LZ4; its framing not yet walked.
    private func withUncheckedSection<T>(scratch: inout [UInt8], file: String, position: Int64,
                                         _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        let sectionBytes = Int(header.uncompressedBytes)
        switch header.codec {
        case .none:
            return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[Format.batchHeaderBytes...])) }
        case .lz4:
            if scratch.count < sectionBytes { scratch = [UInt8](repeating: 0, count: sectionBytes) }
            return try scratch.withUnsafeMutableBytes { out in
                let target = UnsafeMutableRawBufferPointer(rebasing: out[0..<sectionBytes])
                try writeSection(into: target, file: file, position: position)
                return try body(UnsafeRawBufferPointer(target))
            }
        }
    }

    /// Decompresses (or copies) the payload into `target`, exactly the section's length.
    private func writeSection(into target: UnsafeMutableRawBufferPointer, file: String, position: Int64) throws {
        let sectionBytes = Int(header.uncompressedBytes)
        assert(target.count == sectionBytes)
        let ok = bytes.withUnsafeBytes { raw in
            let payload = UnsafeRawBufferPointer(rebasing: raw[Format.batchHeaderBytes...])
            switch header.codec {
            case .none:
                guard payload.count == sectionBytes else { return false }
                target.copyMemory(from: payload)
                return true
            case .lz4:
                return LZ4Block.decompress(payload, into: target)
            }
        }
        guard ok else {
            throw LogError.corruption(file: file, position: position, offset: header.firstOffset,
                                      reason: "\(header.codec) payload does not decode to \(sectionBytes) bytes")
        }
    }

    /// Decompresses the payload and splits it into records, checking the framing.
    public func decode(file: String = "<memory>", position: Int64 = 0) throws -> RecordBatch {
        let sectionBytes = Int(header.uncompressedBytes)
        let section = try [UInt8](unsafeUninitializedCapacity: sectionBytes) { buffer, count in
            try writeSection(into: UnsafeMutableRawBufferPointer(buffer), file: file, position: position)
            count = sectionBytes
        }
        return try RecordBatch(header: header, section: section, file: file, position: position)
    }
}

/// A decoded batch: its header and its records, each a slice of one shared buffer.
public struct RecordBatch: Sendable, RandomAccessCollection {
    public struct Record: Sendable, Equatable {
        public var offset: UInt64
        public var bytes: ArraySlice<UInt8>
    }

    public let header: BatchHeader
    private let section: [UInt8]
    /// Start of each record's bytes in `section`; a record ends 4 bytes before the next starts.
    private let starts: [Int]

    init(header: BatchHeader, section: [UInt8], file: String, position: Int64) throws {
        var starts: [Int] = []
        starts.reserveCapacity(Int(header.recordCount))
        try section.withUnsafeBytes { raw in
            try Self.walk(raw, header: header, file: file, position: position) { start, _ in starts.append(start) }
        }
        self.header = header
        self.section = section
        self.starts = starts
    }

    /// Walks the record section (format.md §4), calling `body` with each record's start and
    /// length; throws unless the lengths account for exactly `recordCount` records and every byte.
    static func walk(_ raw: UnsafeRawBufferPointer, header: BatchHeader, file: String, position: Int64,
                     _ body: (Int, Int) throws -> Void) throws {
        var at = 0
        for _ in 0..<header.recordCount {
            // Running out of bytes before `recordCount` records is damage too.
            guard at + Format.recordLengthPrefixBytes <= raw.count else { at = -1; break }
            let length = Int(raw.getLittleEndian(at: at, as: UInt32.self))
            at += Format.recordLengthPrefixBytes
            guard length <= raw.count - at else { at = -1; break }
            try body(at, length)
            at += length
        }
        guard at == raw.count else {
            throw LogError.corruption(file: file, position: position, offset: header.firstOffset,
                                      reason: "record framing does not match the record count \(header.recordCount)")
        }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { starts.count }

    public subscript(index: Int) -> Record {
        let end = index + 1 < starts.count ? starts[index + 1] - Format.recordLengthPrefixBytes : section.count
        return Record(offset: header.firstOffset + UInt64(index), bytes: section[starts[index]..<end])
    }
}
