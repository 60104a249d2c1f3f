import Foundation

/// Why a network baseline could not be measured: which call failed, and on what.
enum NetworkError: Error, CustomStringConvertible {
    /// A system call failed: its name, errno, and what it was doing.
    case system(call: String, errno: Int32, context: String)
    /// The peer closed the connection before the bytes expected from it arrived.
    case closed(context: String)
    /// Something did not happen within its bounded wait.
    case timeout(String)
    /// The peer answered something other than what the protocol says.
    case unexpectedReply(String)
    /// A child process could not be started, or exited while it was needed.
    case child(String)

    var description: String {
        switch self {
        case .system(let call, let code, let context): return "\(call) failed (\(String(cString: strerror(code)))) while \(context)"
        case .closed(let context): return "connection closed by the peer while \(context)"
        case .timeout(let text): return "timed out: \(text)"
        case .unexpectedReply(let text): return "unexpected reply: \(text)"
        case .child(let text): return text
        }
    }
}

/// Plain blocking TCP sockets on 127.0.0.1, as the network baselines use them: nothing between
/// the measurement and the system calls. Every descriptor is close-on-exec, so children spawned
/// meanwhile do not inherit it; sends use MSG_NOSIGNAL, so a peer that died is an error, not SIGPIPE.
enum LoopbackSocket {
    private static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian  // 127.0.0.1
        return address
    }

    private static func newSocket(_ context: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NetworkError.system(call: "socket", errno: errno, context: context) }
        return fd
    }

    /// A listening socket on 127.0.0.1:`port` (0: the kernel picks one) and the port it got.
    static func listen(port: UInt16, backlog: Int32 = 64) throws -> (fd: Int32, port: UInt16) {
        let fd = try newSocket("listening")
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw NetworkError.system(call: "bind", errno: code, context: "binding 127.0.0.1:\(port)")
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw NetworkError.system(call: "listen", errno: code, context: "listening on 127.0.0.1:\(port)")
        }
        return (fd, try boundPort(fd))
    }

    /// The local port a socket is bound to.
    static func boundPort(_ fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw NetworkError.system(call: "getsockname", errno: errno, context: "reading a bound port") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A port that was free a moment ago: bound with port 0, then closed. For servers such as
    /// redis-server that cannot be told to pick one themselves; another process may take it in
    /// between, which the caller sees as a server that fails to start.
    static func freePort() throws -> UInt16 {
        let (fd, port) = try listen(port: 0, backlog: 1)
        close(fd)
        return port
    }

    /// A connection to 127.0.0.1:`port` with TCP_NODELAY set (small requests go out at once,
    /// as a replication protocol's frames must).
    static func connect(port: UInt16) throws -> Int32 {
        let fd = try newSocket("connecting to 127.0.0.1:\(port)")
        var address = address(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw NetworkError.system(call: "connect", errno: code, context: "connecting to 127.0.0.1:\(port)")
        }
        try setNoDelay(fd)
        return fd
    }

    static func setNoDelay(_ fd: Int32) throws {
        var one: Int32 = 1
        guard setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw NetworkError.system(call: "setsockopt(TCP_NODELAY)", errno: errno, context: "configuring a connection")
        }
    }

    /// Sends every byte of `bytes`.
    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw NetworkError.system(call: "send", errno: errno, context: "sending \(bytes.count) bytes") }
            done += n
        }
    }

    /// Fills `buffer` from the socket. Returns false when the peer closed the connection before
    /// the first byte (a clean end); a close in the middle is an error.
    @discardableResult
    static func receiveExactly(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
        var done = 0
        while done < buffer.count {
            let n = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
            if n < 0 && errno == EINTR { continue }
            if n == 0 {
                if done == 0 { return false }
                throw NetworkError.closed(context: "receiving \(buffer.count) bytes (\(done) arrived)")
            }
            guard n > 0 else { throw NetworkError.system(call: "recv", errno: errno, context: "receiving \(buffer.count) bytes") }
            done += n
        }
        return true
    }
}

/// For a child server process: exits once the parent closes our standard input, so a server
/// never outlives the benchmark that started it.
func exitWhenStandardInputCloses() {
    Thread.detachNewThread {
        var byte: UInt8 = 0
        while read(0, &byte, 1) > 0 {}
        Glibc.exit(0)
    }
}

/// Accepts connections on `listener` for ever, serving each (with its 1-based number) on a
/// thread of its own; descriptors are close-on-exec.
func acceptConnections(on listener: Int32, serverName: String, serve: @escaping @Sendable (Int32, Int) -> Void) throws -> Never {
    var connections = 0
    while true {
        let fd = accept(listener, nil, nil)
        if fd < 0 {
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw NetworkError.system(call: "accept", errno: errno, context: serverName)
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        connections += 1
        let number = connections
        Thread.detachNewThread { serve(fd, number) }
    }
}

/// The body of a floor's receiving process (`replica-floor`, `catch-up-floor-receiver`): listens
/// on a free loopback port and prints it, exits when the benchmark that started it closes its
/// standard input (or dies), and serves each connection on a thread with a file of its own in
/// `directory`, removed afterwards.
func serveFloorConnections(name: String, directory: String, filePrefix: String,
                           serve: @escaping @Sendable (Int32, String) throws -> Void) throws -> Never {
    let (listener, bound) = try LoopbackSocket.listen(port: 0)
    print("port \(bound)")
    fflush(nil)
    exitWhenStandardInputCloses()
    try acceptConnections(on: listener, serverName: "\(name) on port \(bound)") { fd, number in
        let path = directory + "/\(filePrefix)-\(number).dat"
        try? serve(fd, path)
        close(fd)
        unlink(path)
    }
}
