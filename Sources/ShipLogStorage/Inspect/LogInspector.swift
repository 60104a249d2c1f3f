/// Read-only access to a log directory for the recovery tool: it takes no lock, removes no
/// marker and writes nothing, so it works beside a running writer and on damaged logs that
/// `SegmentLog.open` would refuse. It uses the same decoders as the log (format.md).
public struct LogInspector: Sendable {
    public let directory: String
    let files: SegmentDirectory
    /// Segment base offsets, sorted.
    public let segmentBaseOffsets: [UInt64]

    public init(directory: String, fileSystem: any FileSystem = PosixFileSystem()) throws {
        switch fileSystem.isDirectory(directory) {
        case nil: throw LogError.notAShipLogDirectory(path: directory, reason: "it does not exist")
        case false?: throw LogError.notAShipLogDirectory(path: directory, reason: "it is a file, not a directory")
        case true?: break
        }
        let names = try fileSystem.contentsOfDirectory(directory)
        guard names.contains(Format.directoryFileName) else {
            throw LogError.notAShipLogDirectory(
                path: directory,
                reason: names.isEmpty ? "it is empty" : "no \(Format.directoryFileName) identity file among \(names.count) files")
        }
        let identityPath = directory + "/" + Format.directoryFileName
        let identity = try SegmentLog.readWholeFile(identityPath, fileSystem: fileSystem)
        try identity.withUnsafeBytes { try DirectoryIdentity.check($0, file: identityPath, directory: directory) }
        self.directory = directory
        self.files = SegmentDirectory(path: directory, fileSystem: fileSystem, maxOpenFiles: LogOptions().maxOpenSegmentFiles)
        self.segmentBaseOffsets = names.compactMap(Format.baseOffset(ofSegmentName:)).sorted()
    }

    public func segmentPath(_ baseOffset: UInt64) -> String { files.segmentPath(baseOffset) }
    public func indexPath(_ baseOffset: UInt64) -> String { files.indexPath(baseOffset) }

    /// Takes the directory's lock, as `SegmentLog.open` does, for a tool that is about to
    /// change the files: throws `directoryLocked` while a writer holds it, and `io` when the
    /// lock file cannot be opened (a read-only directory).
    public func lock() throws -> any FileLock {
        try files.fileSystem.lockFile(directory + "/" + Format.lockFileName)
    }

    /// One step of a segment scan.
    public enum ScanEvent {
        case batch(StoredBatch, position: Int64)
        /// The bytes at `position` are not an intact batch; `dataFollows` when an intact
        /// batch lies later in the segment (damage in the middle, not a torn tail).
        case problem(position: Int64, reason: String, dataFollows: Bool)
    }

    /// Scans one segment from its header, calling `body` for each batch and, at the end, for
    /// the first invalid bytes if any (only zeroes after the last batch is a clean end).
    /// Returns the segment's size in bytes.
    @discardableResult
    public func scan(segment baseOffset: UInt64, _ body: (ScanEvent) throws -> Void) throws -> Int64 {
        let handle = files.segmentFile(baseOffset, readOnly: true)
        let file = try handle.file()
        let size = try file.size()
        var headerBytes = [UInt8](repeating: 0, count: Format.segmentHeaderBytes)
        let got = try headerBytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        do {
            let header = try headerBytes.withUnsafeBytes {
                try SegmentHeader.decode(UnsafeRawBufferPointer(rebasing: $0[0..<got]), file: handle.path)
            }
            guard header.baseOffset == baseOffset else {
                try body(.problem(position: 16, reason: "header base offset \(header.baseOffset) does not match the file name", dataFollows: true))
                return size
            }
        } catch LogError.corruption(_, let position, _, let reason) {
            try body(.problem(position: position, reason: reason, dataFollows: true))
            return size
        }
        var scanner = try SegmentScanner(file: file, from: Int64(Format.segmentHeaderBytes))
        while true {
            switch try scanner.next() {
            case .batch(let batch, let position):
                try body(.batch(batch, position: position))
            case .end(let position):
                let probe = try SegmentScanner.probeAfter(file: file, position: position)
                if probe.lastNonZero != nil {
                    try body(.problem(position: position, reason: "zeroed bytes followed by non-zero data",
                                      dataFollows: probe.intactBatchAt != nil))
                }
                return size
            case .invalid(let position, let reason):
                let probe = try SegmentScanner.probeAfter(file: file, position: position)
                try body(.problem(position: position, reason: reason, dataFollows: probe.intactBatchAt != nil))
                return size
            }
        }
    }

    /// How a segment's index file stands against the segment it describes.
    public enum IndexStatus: String, Sendable {
        case ok, missing, damaged
    }

    public func indexStatus(segment baseOffset: UInt64, segmentBytes: Int64) -> IndexStatus {
        if files.fileSystem.fileSize(files.indexPath(baseOffset)) == nil { return .missing }
        return files.loadIndex(baseOffset: baseOffset, segmentBytes: segmentBytes) == nil ? .damaged : .ok
    }

    /// Rewrites a segment's index from a scan of its first `segmentBytes` (repair).
    public func rebuildIndex(segment baseOffset: UInt64, segmentBytes: Int64, intervalBytes: Int = 4096) throws {
        let handle = files.segmentFile(baseOffset, readOnly: true)
        let index = try files.rebuildIndex(of: handle, endPosition: segmentBytes, intervalBytes: intervalBytes)
        try files.writeIndex(of: SegmentInfo(baseOffset: baseOffset, handle: handle, endPosition: segmentBytes,
                                             nextOffset: index.nextOffset, index: SparseIndex(entries: index.entries),
                                             newestTimestampMs: index.newestTimestampMs))
    }
}
