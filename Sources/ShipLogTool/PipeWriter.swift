import Foundation

/// Writes buffers to a file descriptor on its own thread, so that decoding the next records
/// overlaps writing the last ones into the pipe. At most `queuedMax` buffers wait.
final class PipeWriter: @unchecked Sendable {
    private let fd: Int32
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [[UInt8]] = []
    private var finishing = false
    private var finished = false
    private var failure: String?
    private let queuedMax = 4

    init(fd: Int32) {
        self.fd = fd
        Thread.detachNewThread { [self] in drain() }
    }

    /// Queues `buffer`, waiting while the queue is full; throws if a write already failed.
    func submit(_ buffer: [UInt8]) throws {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= queuedMax && failure == nil { condition.wait() }
        if let failure { throw ToolFailure.damaged(failure) }
        queue.append(buffer)
        condition.broadcast()
    }

    /// Waits until every queued buffer is written; throws if a write failed.
    func finish() throws {
        condition.lock()
        defer { condition.unlock() }
        finishing = true
        condition.broadcast()
        while !finished { condition.wait() }
        if let failure { throw ToolFailure.damaged(failure) }
    }

    private func drain() {
        while true {
            condition.lock()
            while queue.isEmpty && !finishing { condition.wait() }
            if queue.isEmpty {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let buffer = queue.removeFirst()
            condition.broadcast()
            condition.unlock()
            if failure == nil, let error = writeAll(buffer) {
                condition.lock()
                failure = error
                queue.removeAll()
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    private func writeAll(_ buffer: [UInt8]) -> String? {
        buffer.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return "writing to the program failed: \(String(cString: strerror(errno)))"
                }
                done += n
            }
            return nil
        }
    }
}
