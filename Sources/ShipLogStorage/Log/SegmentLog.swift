import Dispatch
import Logging
import Synchronization

/// An append-only log of records stored in segment files: checksummed, optionally
/// LZ4-compressed batches with dense 64-bit offsets starting at 0.
///
/// One handle may be used from many threads and tasks at once. Appends are ordered by a
/// single mutex; concurrent `fsync` appends share fdatasync calls (group commit).
/// `append` blocks its thread until the requested durability is reached.
public final class SegmentLog: Sendable {
    public let directory: String
    public let options: LogOptions
    /// What `open` found and repaired.
    public let recoveryReport: RecoveryReport

    let files: SegmentDirectory
    let state: Mutex<LogState>
    /// Counts truncations. Bumped before a truncation changes any file, so a reader that
    /// loads the same value after reading some bytes knows they predate every truncation
    /// it has not accounted for (see `BatchCursor`).
    let truncationGeneration = Atomic<UInt64>(0)
    /// Where the fdatasyncs that async appends lead run, off the tasks' threads.
    let syncQueue = DispatchQueue(label: "shiplog.group-commit")
    /// Where write-backs are started (`SegmentLog+Writeback.swift`), off the writers' threads.
    let writebackQueue = DispatchQueue(label: "shiplog.writeback")
    /// Held by a `.os` append writing its own batch (`SegmentLog+DirectWrite.swift`).
    let directWriteLock = BargingLock()
    private let lock: Mutex<(any FileLock)?>
    static let logger = Logger(label: "shiplog.storage")

    private init(directory: String, options: LogOptions, files: SegmentDirectory, state: LogState,
                 lock: any FileLock, report: RecoveryReport) {
        self.directory = directory
        self.options = options
        self.files = files
        self.state = Mutex(state)
        self.lock = Mutex(lock)
        self.recoveryReport = report
    }

    /// Opens (or creates) the log in `directory`, recovering from an unclean shutdown as
    /// `options.recovery` says. Another open handle on the same directory, in this process or
    /// another, makes this throw `directoryLocked`.
    public static func open(directory: String, options: LogOptions = LogOptions()) throws -> SegmentLog {
        try options.validate()
        let fs = options.fileSystem
        switch fs.isDirectory(directory) {
        case nil:
            guard options.createIfMissing else {
                throw LogError.notAShipLogDirectory(path: directory, reason: "it does not exist")
            }
            try fs.createDirectoryDurably(directory)  // its new entry synced in the parent
        case false?:
            throw LogError.notAShipLogDirectory(path: directory, reason: "it is a file, not a directory")
        case true?:
            break
        }
        let identityPath = directory + "/" + Format.directoryFileName
        let names = try fs.contentsOfDirectory(directory)
        let isInitialized = names.contains(Format.directoryFileName)
        if !isInitialized {
            // A creation interrupted by a crash leaves only the lock file and temporary
            // files (finding F9): such a directory is still empty.
            let others = names.filter { $0 != Format.lockFileName && !$0.hasSuffix(Format.temporarySuffix) }
            guard others.isEmpty else {
                throw LogError.notAShipLogDirectory(
                    path: directory, reason: "no \(Format.directoryFileName) identity file among \(others.count) other files")
            }
            guard options.createIfMissing else {
                throw LogError.notAShipLogDirectory(path: directory, reason: "it is empty and createIfMissing is off")
            }
        }
        let lock = try fs.lockFile(directory + "/" + Format.lockFileName)
        do {
            let files = SegmentDirectory(path: directory, fileSystem: fs, maxOpenFiles: options.maxOpenSegmentFiles)
            if isInitialized {
                let identity = try readWholeFile(identityPath, fileSystem: fs)
                try identity.withUnsafeBytes { try DirectoryIdentity.check($0, file: identityPath, directory: directory) }
            } else {
                for name in names where name.hasSuffix(Format.temporarySuffix) { try fs.removeFile(directory + "/" + name) }
                try writeDurably(DirectoryIdentity.encoded(), to: identityPath, in: files)
            }
            let (state, report) = try recover(files: files, options: options)
            let log = SegmentLog(directory: directory, options: options, files: files, state: state, lock: lock, report: report)
            if report.truncatedFile != nil || !report.droppedSegments.isEmpty {
                logger.warning("recovered \(directory): \(report.reason ?? "segments dropped"), \(report.droppedBytes) bytes dropped")
            }
            return log
        } catch {
            lock.unlock()
            throw error
        }
    }

    private static func recover(files: SegmentDirectory, options: LogOptions) throws -> (LogState, RecoveryReport) {
        let fs = files.fileSystem
        let markerPath = files.path + "/" + Format.cleanMarkerName
        var marker: CleanShutdownMarker?
        if fs.fileSize(markerPath) != nil {
            marker = try readWholeFile(markerPath, fileSystem: fs).withUnsafeBytes { CleanShutdownMarker.decode($0) }
            // Removed before anything else, so a crash during recovery counts as unclean.
            try fs.removeFile(markerPath)
            try fs.syncDirectory(files.path)
        }
        let names = try fs.contentsOfDirectory(files.path)
        var bases = names.compactMap(Format.baseOffset(ofSegmentName:)).sorted()
        let temporaries = names.filter { $0.hasSuffix(Format.temporarySuffix) }
        // No segment but a reset's new one under its temporary name: finish the reset.
        let finishedReset = bases.isEmpty ? try finishInterruptedReset(temporaries, in: files) : nil
        for name in temporaries where name != finishedReset?.name { try fs.removeFile(files.path + "/" + name) }
        if let finishedReset { bases = [finishedReset.baseOffset] }
        var recovery = Recovery(directory: files, options: options)
        recovery.report.finishedResetAt = finishedReset?.baseOffset
        var segments: [SegmentInfo]
        var lastEpoch: UInt64 = 0
        if bases.isEmpty {
            segments = [try files.createSegment(baseOffset: options.initialOffset, preallocateBytes: nil)]
            recovery.report.created = true
        } else {
            (segments, lastEpoch) = try recovery.recover(bases: bases, marker: marker)
        }
        if options.preallocateSegments {
            let active = segments[segments.count - 1]
            try active.handle.file().preallocate(to: max(Int64(options.segmentBytes), active.endPosition))
        }
        let epochs = try EpochRecovery(files: files).recover(segments: segments, lastEpoch: lastEpoch,
                                                             scanned: recovery.scannedEpochs, report: &recovery.report)
        return (LogState(segments: segments, lastEpoch: lastEpoch, epochHistory: epochs.history, checkpoint: epochs.checkpoint),
                recovery.report)
    }

    // MARK: Properties

    /// The first offset the log holds (retention moves it forward).
    public var firstOffset: UInt64 { state.withLock { $0.firstOffset } }
    /// One past the last offset appended; the offset the next record gets.
    public var nextOffset: UInt64 { state.withLock { $0.nextOffset } }
    /// The last offset the log holds; nil when it holds none.
    public var lastOffset: UInt64? {
        state.withLock { $0.nextOffset > $0.firstOffset ? $0.nextOffset - 1 : nil }
    }
    /// One past the last offset known to be on disk.
    public var durableNextOffset: UInt64 { state.withLock { $0.durableNextOffset } }
    public var lastEpoch: UInt64 { state.withLock { $0.lastEpoch } }
    /// How many fdatasync calls group commit has made: appends per sync shows the sharing.
    public var groupCommitSyncs: UInt64 { state.withLock { $0.groupCommitSyncs } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    /// Bytes of batches in all segments.
    public var totalBytes: Int64 { state.withLock { $0.segments.reduce(0) { $0 + $1.endPosition } } }

    // MARK: Close

    /// Flushes, syncs and writes the clean-shutdown marker so the next open skips the scan.
    /// Appends still queued, and every later call on this handle, throw `closed`; `.fsync`
    /// appends waiting for durability are made durable first. Idempotent.
    public func close() throws {
        let result = try exclusive(closeBody)
        releaseDirectoryLock()
        try result.get()
    }

    /// Flushes, syncs, writes the index and the marker; marks the handle closed whatever
    /// happens, finishing everyone still waiting.
    func closeBody(_ state: inout LogState, _ wakeups: inout Wakeups) -> Result<Void, any Error> {
        guard !state.isClosed else { return .success(()) }
        defer {
            state.isClosed = true
            state.finishDurableWaiters(&wakeups)
            wakeups.tails += state.takeTailWaiters()
        }
        guard state.failure == nil else { return .success(()) }
        return Result {
            try flushPending(&state)
            let active = state.active
            do {
                let file = try active.handle.file()
                try file.truncate(to: active.endPosition)
                try file.sync()
            } catch {
                markFailed(&state, &wakeups, cause: "closing \(active.handle.path): \(error)")
                throw error
            }
            state.durableNextOffset = state.flushedNextOffset
            state.durablePosition = state.flushedPosition
            state.finishDurableWaiters(&wakeups)
            try files.writeIndex(of: active, intervalBytes: options.indexIntervalBytes)
            // The next open trusts the checkpoint when it matches the marker: leave it exact.
            // (A log that never held a batch needs no file: recovery finds nothing to name.)
            if state.checkpoint != state.epochHistory, state.checkpoint != nil || !state.epochHistory.entries.isEmpty {
                try writeEpochCheckpoint(state.epochHistory)
                state.checkpoint = state.epochHistory
            }
            let marker = CleanShutdownMarker(activeBaseOffset: active.baseOffset, activeSegmentBytes: active.endPosition,
                                             nextOffset: active.nextOffset, lastEpoch: state.lastEpoch)
            try Self.writeDurably(marker.encoded(), to: directory + "/" + Format.cleanMarkerName, in: files)
        }
    }

    func releaseDirectoryLock() {
        // No write-back call on this log's files outlives its close.
        drainWriteback()
        lock.withLock { held in
            held?.unlock()
            held = nil
        }
    }

    deinit {
        lock.withLock { $0?.unlock() }
    }

    // MARK: Helpers shared by the extensions

    /// Writes the in-process buffer to the kernel. Called with the mutex held by the one who
    /// may change the log's end: a write group's leader or an exclusive operation.
    func flushPending(_ state: inout LogState) throws {
        precondition(!state.writerBusy, "only the writer may flush")
        guard !state.pending.isEmpty else { return }
        let file = try state.active.handle.file()
        let at = state.flushedPosition
        try state.pending.withUnsafeBytes { try file.write($0, at: at) }
        state.flushedPosition = state.active.endPosition
        state.flushedNextOffset = state.active.nextOffset
        state.pending.removeAll(keepingCapacity: true)
    }

    func checkWritable(_ state: LogState) throws {
        if state.isClosed { throw LogError.closed }
        if let failure = state.failure { throw LogError.failed(cause: failure) }
    }

    static func readWholeFile(_ path: String, fileSystem: any FileSystem) throws -> [UInt8] {
        let file = try fileSystem.openFileForReading(path)
        let size = try file.size()
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let got = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        return Array(bytes[0..<got])
    }

    /// Writes a small file atomically and durably: temporary file, sync, rename, directory sync.
    static func writeDurably(_ bytes: [UInt8], to path: String, in files: SegmentDirectory) throws {
        let temporary = path + Format.temporarySuffix
        let file = try files.fileSystem.openFile(temporary, create: true)
        try file.truncate(to: 0)
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
        try file.sync()
        try files.fileSystem.rename(temporary, to: path)
        try files.fileSystem.syncDirectory(files.path)
    }
}
