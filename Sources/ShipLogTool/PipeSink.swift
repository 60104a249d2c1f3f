import CLinuxPipe
import Foundation

/// Writes output regions to a file descriptor: the pipe to a program's standard input, or
/// standard output.
///
/// Why vmsplice: on Linux a write(2) into a pipe allocates and copies a page per 4 KiB, and
/// moving replay's output that way costs about as much CPU as decoding the log. vmsplice(2)
/// hands the pages over by reference instead; `OutputChunk` makes sure they are never written
/// again. It is used only into a pipe and with transparent huge pages, which make the fresh
/// memory each chunk then needs cheap; otherwise, or if the kernel refuses, write(2).
final class PipeSink {
    private let fd: Int32
    private let destination: String
    private(set) var splicing: Bool
    /// Bytes written so far, for error messages.
    private(set) var writtenBytes = 0

    /// `destination` names the reader in errors: "the program", "standard output".
    init(fd: Int32, destination: String) {
        self.fd = fd
        self.destination = destination
        splicing = Self.canSplice(fd)
    }

    /// Writes the region entirely; throws a message naming how far it got.
    func write(_ region: OutputRegion) throws {
        var done = 0
        let base = region.chunk.base + region.start
        while done < region.count {
            var n: Int
            if splicing {
                n = Self.splice(fd, base + done, region.count - done)
                if n < 0 && (errno == EINVAL || errno == ENOSYS) {
                    splicing = false  // not a pipe after all, or no vmsplice: copy from now on
                    continue
                }
                if n > 0 { region.chunk.markGifted() }
            } else {
                n = Foundation.write(fd, base + done, region.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                let why = code == EPIPE ? " (it closed its input)" : ""
                throw ToolFailure(code: 1, message: "writing to \(destination) failed after \(writtenBytes) bytes: \(String(cString: strerror(code)))\(why)",
                                  readerClosedInput: code == EPIPE)
            }
            done += n
            writtenBytes += n
        }
    }

    private static func splice(_ fd: Int32, _ bytes: UnsafeMutableRawPointer, _ count: Int) -> Int {
        #if os(Linux)
        var piece = iovec(iov_base: bytes, iov_len: count)
        return vmsplice(fd, &piece, 1, 0)
        #else
        errno = ENOSYS
        return -1
        #endif
    }

    private static func canSplice(_ fd: Int32) -> Bool {
        #if os(Linux)
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFIFO else { return false }
        guard let mode = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8) else {
            return false
        }
        return mode.contains("[always]") || mode.contains("[madvise]")
        #else
        return false
        #endif
    }
}
