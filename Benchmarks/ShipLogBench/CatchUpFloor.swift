import ArgumentParser
import Foundation
import ShipLogStorage

/// The floor of `catch-up` on this machine, measured in the same run: the same stored bytes
/// moved between two processes with nothing but system calls. The sender (the benchmark) preads
/// the primary's segment files in 1 MiB chunks and sends them over loopback TCP; the receiver
/// (`shiplog-bench catch-up-floor-receiver`, a `ChildProcess`) recvs them into a 1 MiB buffer
/// and pwrites each chunk to its own file, then answers with one byte. Both file writes a
/// catch-up must do (the primary's read, the follower's write) are here; framing, checksums,
/// event loops and state machines are not. Timed from the connect until the answer.
struct CatchUpFloorReceiverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catch-up-floor-receiver",
        abstract: "The catch-up floor's receiving process (internal).",
        shouldDisplay: false)

    @Option(name: .customLong("receiver-dir"), help: "Directory for the receiver's file.")
    var dir: String

    func run() throws {
        try serveFloorConnections(name: "catch-up floor", directory: dir, filePrefix: "catch-up-floor", serve: CatchUpFloor.receive)
    }
}

enum CatchUpFloor {
    static let chunkBytes = 1 << 20

    /// A connection starts with the u64 LE byte count; the bytes follow; one byte answers.
    static func receive(_ fd: Int32, path: String) throws {
        var total: UInt64 = 0
        guard try withUnsafeMutableBytes(of: &total, { try LoopbackSocket.receiveExactly(fd, $0) }) else { return }
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw NetworkError.system(call: "open", errno: errno, context: path) }
        defer { close(file) }
        // Unlinked at once: its pages go when it closes, and no dirty gigabyte is left for the
        // kernel to write back while the catch-up measured next runs.
        unlink(path)
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        var position: Int64 = 0
        let expected = Int64(UInt64(littleEndian: total))
        try buffer.withUnsafeMutableBytes { buffer in
            while position < expected {
                let n = recv(fd, buffer.baseAddress!, min(buffer.count, Int(expected - position)), 0)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw NetworkError.closed(context: "the catch-up floor's stream after \(position) bytes") }
                var done = 0
                while done < n {
                    let w = pwrite(file, buffer.baseAddress! + done, n - done, off_t(position) + off_t(done))
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { throw NetworkError.system(call: "pwrite", errno: errno, context: path) }
                    done += w
                }
                position += Int64(n)
            }
        }
        var answer: UInt8 = 1
        try withUnsafeBytes(of: &answer) { try LoopbackSocket.sendAll(fd, $0) }
    }

    static func startReceiver(directory: String) throws -> (ChildProcess, UInt16) {
        let receiver = try ChildProcess(executable: try currentExecutablePath(),
                                        arguments: ["catch-up-floor-receiver", "--receiver-dir", directory],
                                        output: .pipe, name: "catch-up floor receiver")
        let line = try receiver.readLine(timeout: .seconds(10))
        guard line.hasPrefix("port "), let port = UInt16(line.dropFirst(5)), port != 0 else {
            receiver.stop()
            throw NetworkError.unexpectedReply("catch-up floor receiver printed '\(line)' instead of 'port N'")
        }
        return (receiver, port)
    }

    /// Sends `bytes` bytes of the segment files in `logDirectory` (in offset order, segment
    /// headers included) and returns the seconds from the connect until the receiver answered.
    static func send(logDirectory: String, bytes: Int64, port: UInt16) throws -> Double {
        let names = try FileManager.default.contentsOfDirectory(atPath: logDirectory)
            .filter { $0.hasSuffix(Format.segmentSuffix) }.sorted()
        let start = monotonicNanoseconds()
        let fd = try LoopbackSocket.connect(port: port)
        defer { close(fd) }
        var total = UInt64(bytes).littleEndian
        try withUnsafeBytes(of: &total) { try LoopbackSocket.sendAll(fd, $0) }
        var left = bytes
        var chunk = [UInt8](repeating: 0, count: chunkBytes)
        try chunk.withUnsafeMutableBytes { chunk in
            for name in names where left > 0 {
                let file = open(logDirectory + "/" + name, O_RDONLY | O_CLOEXEC)
                guard file >= 0 else { throw NetworkError.system(call: "open", errno: errno, context: name) }
                defer { close(file) }
                var position: off_t = 0
                while left > 0 {
                    let n = pread(file, chunk.baseAddress!, Int(min(Int64(chunk.count), left)), position)
                    if n < 0 && errno == EINTR { continue }
                    guard n >= 0 else { throw NetworkError.system(call: "pread", errno: errno, context: name) }
                    if n == 0 { break }
                    try LoopbackSocket.sendAll(fd, UnsafeRawBufferPointer(rebasing: chunk[..<n]))
                    position += off_t(n)
                    left -= Int64(n)
                }
            }
        }
        guard left == 0 else { throw NetworkError.unexpectedReply("the segment files hold \(bytes - left) of \(bytes) bytes") }
        var answer: UInt8 = 0
        guard try withUnsafeMutableBytes(of: &answer, { try LoopbackSocket.receiveExactly(fd, $0) }) else {
            throw NetworkError.closed(context: "waiting for the catch-up floor's answer")
        }
        return Double(monotonicNanoseconds() - start) / 1e9
    }
}
