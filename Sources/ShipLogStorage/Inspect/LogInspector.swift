/// Read-only access to a log directory for the recovery tool: it takes no lock, removes no
/// marker and writes nothing, so it works beside a running writer and on damaged logs that
/// `SegmentLog.open` would refuse. It uses the same decoders as the log (format.md).
public struct LogInspector: Sendable {
    public let directory: String
    let files: SegmentDirectory
    /// Segment base offsets, sorted.
    public let segmentBaseOffsets: [UInt64]
    /// Names in the directory that are not part of the log (format.md §1), sorted, each with
    /// what it looks like. The log never reads, changes or removes them.
    public let foreignFiles: [ForeignFile]

    /// A name in the log's directory that the log does not use.
    public struct ForeignFile: Sendable, Equatable {
        public var name: String
        /// Named like a segment (digits, `.log`) but not one the log can place: records in it
        /// would be missing from the log, so it is a problem rather than a stray file.
        public var looksLikeASegment: Bool
        public var reason: String
    }

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
        let bases = names.compactMap(Format.baseOffset(ofSegmentName:)).sorted()
        self.segmentBaseOffsets = bases
        self.foreignFiles = Self.foreignFiles(names, segments: Set(bases))
    }

    private static func foreignFiles(_ names: [String], segments: Set<UInt64>) -> [ForeignFile] {
        let known: Set<String> = [Format.directoryFileName, Format.lockFileName, Format.cleanMarkerName, Format.epochCheckpointName]
        var foreign: [ForeignFile] = []
        for name in names.sorted() {
            if known.contains(name) || name.hasSuffix(Format.temporarySuffix) || Format.baseOffset(ofSegmentName: name) != nil {
                continue
            }
            if let base = Format.baseOffset(ofIndexName: name) {
                if !segments.contains(base) {
                    foreign.append(ForeignFile(name: name, looksLikeASegment: false, reason: "an index file with no segment"))
                }
            } else if Format.isMisnamedSegment(name) {
                foreign.append(ForeignFile(
                    name: name, looksLikeASegment: true,
                    reason: "named like a segment, but not \(Format.offsetDigits) digits holding a 64-bit offset: "
                        + "the log ignores it, so any records in it are not part of the log"))
            } else {
                foreign.append(ForeignFile(name: name, looksLikeASegment: false, reason: "not part of the log"))
            }
        }
        return foreign
    }

    /// Whether a process holds the log open now (its `LOCK`), asked without blocking and
    /// without keeping the lock: nil when it cannot be told.
    public func writerHoldsLock() -> Bool? {
        files.fileSystem.lockIsHeld(directory + "/" + Format.lockFileName)
    }

    public func segmentPath(_ baseOffset: UInt64) -> String { files.segmentPath(baseOffset) }
    public var epochCheckpointPath: String { directory + "/" + Format.epochCheckpointName }

    /// The epoch checkpoint file (format.md §12) as it is: nil when there is none, a
    /// failure when it cannot be decoded. Reads only.
    public func epochCheckpoint() throws -> Result<EpochHistory, EpochCheckpoint.DecodeFailure>? {
        guard files.fileSystem.fileSize(epochCheckpointPath) != nil else { return nil }
        return try SegmentLog.readWholeFile(epochCheckpointPath, fileSystem: files.fileSystem)
            .withUnsafeBytes { EpochCheckpoint.decode($0) }
    }

    /// Writes the epoch checkpoint durably (temporary file, sync, rename, directory sync),
    /// for `shiplog repair`, which holds the log's lock.
    public func writeEpochCheckpoint(_ history: EpochHistory) throws {
        try SegmentLog.writeDurably(EpochCheckpoint.encoded(history), to: epochCheckpointPath, in: files)
    }
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
        /// Only in a scan of a tail being written: the intact batches end at `position`, where
        /// the scan stopped without judging what follows (`reason` says what it saw there, nil
        /// for zeroes).
        case unjudgedEnd(position: Int64, reason: String?)
    }

    /// Scans one segment from its header, calling `body` for each batch and, at the end, for
    /// the first invalid bytes if any (only zeroes after the last batch is a clean end).
    /// Returns the segment's size in bytes.
    ///
    /// With `tailBeingWritten` (the active segment of a log a writer holds), the end of the
    /// intact batches is reported as `unjudgedEnd` and nothing after it is read: a writer may
    /// be appending there, so zeroes followed by data, or half a batch, are what an append in
    /// flight looks like, not damage.
    @discardableResult
    public func scan(segment baseOffset: UInt64, tailBeingWritten: Bool = false,
                     _ body: (ScanEvent) throws -> Void) throws -> Int64 {
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
            case .end(let position) where tailBeingWritten:
                try body(.unjudgedEnd(position: position, reason: nil))
                return size
            case .invalid(let position, let reason) where tailBeingWritten:
                try body(.unjudgedEnd(position: position, reason: reason))
                return size
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

    /// Rewrites a segment's index from a scan of its first `segmentBytes` (repair), with
    /// entries `intervalBytes` apart: by default the interval the log's writer recorded in its
    /// other index files, so the rebuilt file is the one the writer would have written.
    /// Returns the interval used.
    @discardableResult
    public func rebuildIndex(segment baseOffset: UInt64, segmentBytes: Int64, intervalBytes: Int? = nil) throws -> Int {
        let interval = intervalBytes ?? recordedIndexIntervalBytes(near: baseOffset) ?? LogOptions().indexIntervalBytes
        let handle = files.segmentFile(baseOffset, readOnly: true)
        let index = try files.rebuildIndex(of: handle, endPosition: segmentBytes, intervalBytes: interval)
        try files.writeIndex(of: SegmentInfo(baseOffset: baseOffset, handle: handle, endPosition: segmentBytes,
                                             nextOffset: index.nextOffset, index: SparseIndex(entries: index.entries),
                                             newestTimestampMs: index.newestTimestampMs),
                             intervalBytes: interval)
        return interval
    }

    /// The interval recorded in the intact index file (format.md §5, version 2) of the
    /// segment nearest `baseOffset`, its own included: nil when no index file records one
    /// (none left, or all written by version 1, whose writers did not record it).
    public func recordedIndexIntervalBytes(near baseOffset: UInt64) -> Int? {
        let nearestFirst = segmentBaseOffsets.sorted {
            ($0 > baseOffset ? $0 - baseOffset : baseOffset - $0) < ($1 > baseOffset ? $1 - baseOffset : baseOffset - $1)
        }
        for base in nearestFirst {
            guard let file = try? files.fileSystem.openFileForReading(files.indexPath(base)),
                  let size = try? file.size(), size >= Int64(Format.indexHeaderBytes), size <= Int64(Format.batchBytesMax)
            else { continue }
            let bytes = [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, count in
                count = (try? file.read(into: UnsafeMutableRawBufferPointer(buffer), at: 0)) ?? 0
            }
            if let interval = bytes.withUnsafeBytes({ IndexFile.decode($0) })?.intervalBytes { return interval }
        }
        return nil
    }
}
