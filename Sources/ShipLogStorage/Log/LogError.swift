#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every error the log reports. Each case carries the context needed to act on it:
/// which file, which byte position, which offset.
public enum LogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The directory exists and holds files, but no ShipLog identity file.
    case notAShipLogDirectory(path: String, reason: String)
    /// Another process (or another handle in this one) has the log open.
    case directoryLocked(path: String)
    /// A file written by a format version this code does not know.
    case unsupportedFormatVersion(file: String, version: UInt32)
    /// Bytes that fail validation. `position` is the byte position in `file`.
    case corruption(file: String, position: Int64, offset: UInt64?, reason: String)
    case recordTooLarge(bytes: Int, limit: Int)
    case batchTooLarge(bytes: Int, limit: Int)
    case emptyBatch
    /// Epochs in a log never decrease.
    case epochRegression(epoch: UInt64, lastEpoch: UInt64)
    /// A stored batch handed to `append(storedBatch:)` does not continue the log.
    case nonContiguousBatch(expectedOffset: UInt64, batchOffset: UInt64)
    case offsetOutOfRange(requested: UInt64, firstOffset: UInt64, nextOffset: UInt64)
    /// A `truncate` removed records a reader (cursor, tail) had already read, or the offset it
    /// was waiting at: the log now ends, or continues with other records, from `newNextOffset`.
    /// The reader must resync from there (a follower truncates its own copy to match).
    case truncated(readerOffset: UInt64, newNextOffset: UInt64)
    /// A system call failed; `errno` says why (ENOSPC: the disk is full).
    case io(operation: String, path: String, errno: Int32)
    /// An fsync failed earlier (the kernel may have dropped dirty pages), or a truncate, roll
    /// or write failed part-way: the files may not be what the log believes, so it refuses
    /// every further write rather than pretend. Reopen to recover from what is on disk.
    case failed(cause: String)
    case closed
    case invalidOptions(String)

    public var description: String {
        switch self {
        case .notAShipLogDirectory(let path, let reason):
            return "\(path) is not a ShipLog directory: \(reason)"
        case .directoryLocked(let path):
            return "\(path) is locked by another process or handle (\(Format.lockFileName) is held)"
        case .unsupportedFormatVersion(let file, let version):
            return "\(file): format version \(version) is not supported (this build reads version \(Format.version))"
        case .corruption(let file, let position, let offset, let reason):
            let at = offset.map { ", offset \($0)" } ?? ""
            return "corruption in \(file) at byte \(position)\(at): \(reason)"
        case .recordTooLarge(let bytes, let limit):
            return "record of \(bytes) bytes exceeds maxRecordBytes \(limit)"
        case .batchTooLarge(let bytes, let limit):
            return "batch of \(bytes) bytes exceeds maxBatchBytes \(limit)"
        case .emptyBatch:
            return "a batch must hold at least one record"
        case .epochRegression(let epoch, let lastEpoch):
            return "leader epoch \(epoch) is lower than the log's last epoch \(lastEpoch)"
        case .nonContiguousBatch(let expected, let got):
            return "stored batch starts at offset \(got), the log's next offset is \(expected)"
        case .offsetOutOfRange(let requested, let first, let next):
            return "offset \(requested) is outside the log [\(first), \(next))"
        case .truncated(let readerOffset, let newNextOffset):
            return "the log was truncated to end at offset \(newNextOffset) while a reader was at offset \(readerOffset);"
                + " records from \(newNextOffset) on that it read are gone: resync from \(newNextOffset)"
        case .io(let operation, let path, let errno):
            return "\(operation) failed on \(path): \(String(cString: strerror(errno))) (errno \(errno))"
        case .failed(let cause):
            return "the log refuses writes after a failure that left its files uncertain (\(cause)); reopen it to recover"
        case .closed:
            return "the log is closed"
        case .invalidOptions(let reason):
            return "invalid options: \(reason)"
        }
    }
}
