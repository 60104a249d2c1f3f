/// Reads the batch headers of one segment in order, jumping over payloads, through a 64 KiB
/// buffer; checks that offsets are contiguous and that batches end at the segment's end.
struct HeaderWalker {
    let file: any StorageFile
    let segment: SegmentInfo
    var position: Int64
    /// The offset the next batch must start at; nil to take the first one as it comes.
    var expected: UInt64?
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private var bufferStart: Int64 = 0
    private var bufferCount = 0

    /// Opens its own descriptor, closed when the walker goes: recovery reads a few headers
    /// of sealed segments it will not otherwise read, and must not fill the log's cache of
    /// open files with them (a reader's later open is what notices a removed segment).
    init(_ segment: SegmentInfo, from position: Int64, expected: UInt64?, fileSystem: any FileSystem) throws {
        self.file = try fileSystem.openFileForReading(segment.handle.path)
        self.segment = segment
        self.position = position
        self.expected = expected
    }

    func damage(_ reason: String) -> LogError {
        .corruption(file: file.path, position: position, offset: expected, reason: reason + " (reading epochs from batch headers)")
    }

    /// The next header, nil at the segment's end.
    mutating func next() throws -> BatchHeader? {
        if position == segment.endPosition || expected == segment.nextOffset {
            guard position == segment.endPosition, expected.map({ $0 == segment.nextOffset }) ?? true else {
                throw damage("the segment's batches do not end at offset \(segment.nextOffset), byte \(segment.endPosition)")
            }
            return nil
        }
        guard position + Int64(Format.batchHeaderBytes) <= segment.endPosition else {
            throw damage("a batch header runs past the segment's end")
        }
        if position < bufferStart || position + Int64(Format.batchHeaderBytes) > bufferStart + Int64(bufferCount) {
            bufferStart = position
            let at = position
            bufferCount = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: at) }
            guard bufferCount >= Format.batchHeaderBytes else { throw damage("the file ends inside a batch header") }
        }
        let at = Int(position - bufferStart)
        let decoded = buffer.withUnsafeBytes {
            BatchHeader.decode(UnsafeRawBufferPointer(rebasing: $0[at..<(at + Format.batchHeaderBytes)]))
        }
        guard case .success(let header) = decoded else { throw damage("bad batch header") }
        if let expected, header.firstOffset != expected {
            throw damage("offset \(header.firstOffset) where \(expected) was expected")
        }
        position += Int64(header.totalBytes)
        expected = header.nextOffset
        return header
    }
}
