import Foundation

/// A blocking TCP connection to 127.0.0.1 whose every read and write has a deadline, for the
/// failover peers' clients: a client that gives up on a request after 100 ms (and moves to the
/// next server) must never sit in recv(2) on a server that was killed or is waiting for a dead
/// leader. Reads are buffered; `readLine` and `readBytes` take what the protocols need.
///
/// Used by one thread at a time.
final class TimedConnection {
    let port: UInt16
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    /// Connects (on loopback a refused or accepted connection is answered at once; the deadline
    /// then bounds everything after).
    init(port: UInt16) throws {
        self.port = port
        fd = try LoopbackSocket.connect(port: port)
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    /// Waits until the socket is ready for `events` or the deadline (monotonic ns) passes.
    private func wait(_ events: Int32, deadline: UInt64, doing: String) throws {
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { throw NetworkError.timeout("\(doing) on 127.0.0.1:\(port)") }
            var poller = pollfd(fd: fd, events: Int16(events), revents: 0)
            let milliseconds = Int32(min((deadline - now + 999_999) / 1_000_000, 60_000))
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready >= 0 else { throw NetworkError.system(call: "poll", errno: errno, context: "\(doing) on 127.0.0.1:\(port)") }
            if ready > 0 { return }
        }
    }

    /// Sends every byte before `deadline`.
    func send(_ bytes: [UInt8], deadline: UInt64) throws {
        guard fd >= 0 else { throw NetworkError.closed(context: "sending to 127.0.0.1:\(port) after close") }
        var done = 0
        while done < bytes.count {
            try wait(POLLOUT, deadline: deadline, doing: "sending a request")
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { throw NetworkError.system(call: "send", errno: errno, context: "sending a request to 127.0.0.1:\(port)") }
            done += n
        }
    }

    /// Reads whatever is available (at least one byte) into the buffer, before `deadline`.
    private func fill(deadline: UInt64) throws {
        guard fd >= 0 else { throw NetworkError.closed(context: "reading from 127.0.0.1:\(port) after close") }
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            try wait(POLLIN, deadline: deadline, doing: "waiting for a reply")
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n != 0 else { throw NetworkError.closed(context: "reading a reply from 127.0.0.1:\(port)") }
            guard n > 0 else { throw NetworkError.system(call: "recv", errno: errno, context: "reading a reply from 127.0.0.1:\(port)") }
            buffer += chunk[..<n]
            return
        }
    }

    /// The bytes up to the next CRLF, without it.
    func readLine(deadline: UInt64) throws -> [UInt8] {
        // Where the search resumes, relative to `start` (which `fill` moves to 0).
        var scanned = 0
        while true {
            var i = start + scanned
            while i + 1 < buffer.count {
                if buffer[i] == 13 && buffer[i + 1] == 10 {
                    let line = Array(buffer[start..<i])
                    start = i + 2
                    return line
                }
                i += 1
            }
            guard buffer.count - start < 1 << 20 else { throw NetworkError.unexpectedReply("a line over 1 MiB from 127.0.0.1:\(port)") }
            scanned = max(0, buffer.count - 1 - start)
            try fill(deadline: deadline)
        }
    }

    /// Exactly `count` bytes.
    func readBytes(_ count: Int, deadline: UInt64) throws -> [UInt8] {
        while buffer.count - start < count { try fill(deadline: deadline) }
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        return bytes
    }
}

/// A deadline `milliseconds` from now, in `monotonicNanoseconds()` time.
func deadline(milliseconds: Int) -> UInt64 { monotonicNanoseconds() + UInt64(milliseconds) * 1_000_000 }

/// Sleeps `milliseconds` (the pauses between a client's retries and between polls of a state).
func sleep(milliseconds: Int) { usleep(useconds_t(milliseconds * 1000)) }
