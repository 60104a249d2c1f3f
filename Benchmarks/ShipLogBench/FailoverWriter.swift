import Foundation

/// One append that a node acknowledged, as the writer saw it: which node, the offsets it
/// answered, the record's text, and when the answer was read.
struct AcknowledgedAppend: Sendable {
    var node: Int
    var offsets: Range<UInt64>
    var record: String
    var at: ContinuousClock.Instant
}

/// The `failover` workload's client: a thread appending one record at a time, continuously,
/// through the hidden `serve --stdin-appends sync:1` pipe of whichever node it believes is
/// primary. It learns only what a client learns: an "error ..." answer (a follower names its
/// primary, and the writer goes there next), a pipe that closes (the process died), or no
/// answer within `requestTimeoutMilliseconds`; on any of them it moves on at once to the named
/// primary or else the next node, pausing `cyclePauseMilliseconds` only when every node has
/// failed since the last acknowledgement. It never reads the benchmark's kills.
///
/// Each process incarnation has a reader thread that timestamps every answer as it arrives, so
/// an acknowledgement that comes after the writer gave up on it still counts, at its own time.
final class FailoverWriter: @unchecked Sendable {
    static let requestTimeoutMilliseconds = 100
    static let cyclePauseMilliseconds = 1

    /// One process incarnation's pipes (dup'd, owned here). Guarded by `condition`.
    private final class Pipe: @unchecked Sendable {
        let node: Int
        let input: Int32
        let output: Int32
        /// Records sent whose answers have not been read yet: the appender answers in order.
        var pending: [String] = []
        var sent = 0
        var answers: [Int: String] = [:]
        var answered = 0
        var closed = false

        init(node: Int, input: Int32, output: Int32) {
            (self.node, self.input, self.output) = (node, input, output)
        }
    }

    let nodes: [Int]
    private let prefix: String
    private let condition = NSCondition()
    private var pipes: [Int: Pipe] = [:]
    private var acks: [AcknowledgedAppend] = []
    private var errorAnswers = 0
    private var timeouts = 0
    private var stopping = false
    private var writing = false
    private var initialTarget: Int

    /// `initialTarget`: the node whose status said it was primary when the writer started.
    init(nodes: [Int], recordPrefix: String, initialTarget: Int) {
        self.nodes = nodes
        prefix = recordPrefix
        self.initialTarget = initialTarget
    }

    /// Takes a new process incarnation's pipes (dup'd here, so the `ChildProcess` keeps its
    /// own) and starts its reader thread.
    func attach(node: Int, input: Int32, output: Int32) throws {
        let inputCopy = fcntl(input, F_DUPFD_CLOEXEC, 0)
        let outputCopy = fcntl(output, F_DUPFD_CLOEXEC, 0)
        guard inputCopy >= 0, outputCopy >= 0 else {
            throw NetworkError.system(call: "fcntl(F_DUPFD_CLOEXEC)", errno: errno, context: "node \(node)'s pipes")
        }
        let pipe = Pipe(node: node, input: inputCopy, output: outputCopy)
        condition.withLock {
            precondition(pipes[node].map(\.closed) ?? true, "node \(node) attached twice while running")
            pipes[node] = pipe
        }
        Thread.detachNewThread { self.read(pipe) }
    }

    /// Waits (at most `timeout`) until node's current incarnation has closed its output.
    func waitClosed(node: Int, timeout: Duration) -> Bool {
        wait(timeout) { pipes[node].map(\.closed) ?? true }
    }

    /// Starts the writing thread.
    func start() {
        condition.withLock { writing = true }
        Thread.detachNewThread { self.write() }
    }

    /// Stops the writing thread (bounded wait) and, up to `drain`, waits for the answers to
    /// the appends still in flight on live processes.
    func stop(drain: Duration) {
        condition.withLock { stopping = true; condition.broadcast() }
        _ = wait(.seconds(2)) { !writing }
        _ = wait(drain) { pipes.values.allSatisfy { $0.closed || $0.pending.isEmpty } }
    }

    /// Every acknowledgement so far, in the order read.
    var acknowledged: [AcknowledgedAppend] { condition.withLock { acks } }
    var counts: (acks: Int, errors: Int, timeouts: Int) { condition.withLock { (acks.count, errorAnswers, timeouts) } }

    /// How many acknowledgements have been read so far (a cursor for `firstAck`).
    var ackCount: Int { condition.withLock { acks.count } }

    /// The first acknowledgement read after `instant` by a node that `node` accepts, looking
    /// from index `from` on and waiting up to `timeout` for one.
    func firstAck(from: Int, after instant: ContinuousClock.Instant, timeout: Duration,
                  by node: (Int) -> Bool = { _ in true }) -> AcknowledgedAppend? {
        var checked = from
        var found: AcknowledgedAppend?
        _ = wait(timeout) {
            while found == nil && checked < acks.count {
                if acks[checked].at > instant && node(acks[checked].node) { found = acks[checked] }
                checked += 1
            }
            return found != nil
        }
        return found
    }

    /// Polls `condition` (under the lock) until it holds or `timeout` passes.
    private func wait(_ timeout: Duration, _ holds: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        condition.lock()
        defer { condition.unlock() }
        while !holds() {
            if !condition.wait(until: deadline) { return holds() }
        }
        return true
    }

    // MARK: Threads

    private func read(_ pipe: Pipe) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(pipe.output, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            let now = ContinuousClock.now
            guard n > 0 else { break }
            buffer += chunk[..<n]
            condition.lock()
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                guard !pipe.pending.isEmpty else { continue }  // not an answer (no append in flight)
                let record = pipe.pending.removeFirst()
                let parts = line.split(separator: " ")
                if parts.count == 3, parts[0] == "ack", let first = UInt64(parts[1]), let end = UInt64(parts[2]), first <= end {
                    acks.append(AcknowledgedAppend(node: pipe.node, offsets: first..<end, record: record, at: now))
                } else {
                    errorAnswers += 1
                }
                pipe.answers[pipe.answered] = line
                pipe.answered += 1
            }
            condition.broadcast()
            condition.unlock()
        }
        condition.withLock {
            pipe.closed = true
            close(pipe.output)
            close(pipe.input)
            condition.broadcast()
        }
    }

    private enum Outcome { case ack, error(namedPrimary: Int?), noAnswer }

    private func write() {
        var target = initialTarget
        var failedSinceAck = Set<Int>()
        var sequence = 0
        defer { condition.withLock { writing = false; condition.broadcast() } }
        while !condition.withLock({ stopping }) {
            sequence += 1
            switch append("\(prefix) \(sequence)", to: target) {
            case .ack:
                failedSinceAck.removeAll()
                continue
            case .error(let named):
                failedSinceAck.insert(target)
                target = named.flatMap { nodes.contains($0) && $0 != target ? $0 : nil } ?? next(after: target)
            case .noAnswer:
                failedSinceAck.insert(target)
                target = next(after: target)
            }
            if failedSinceAck.count >= nodes.count {
                failedSinceAck.removeAll()
                usleep(useconds_t(Self.cyclePauseMilliseconds * 1000))
            }
        }
    }

    private func next(after node: Int) -> Int { nodes[(nodes.firstIndex(of: node)! + 1) % nodes.count] }

    /// Sends one record to `node` and waits for its answer (at most the request timeout).
    private func append(_ record: String, to node: Int) -> Outcome {
        let deadline = Date().addingTimeInterval(Double(Self.requestTimeoutMilliseconds) / 1000)
        condition.lock()
        defer { condition.unlock() }
        guard let pipe = pipes[node], !pipe.closed else { return .noAnswer }
        let line = Array((record + "\n").utf8)
        let written = line.withUnsafeBytes { Glibc.write(pipe.input, $0.baseAddress, $0.count) }
        guard written == line.count else { return .noAnswer }  // EPIPE: the process is gone
        let ticket = pipe.sent
        pipe.sent += 1
        pipe.pending.append(record)
        while pipe.answers[ticket] == nil && !pipe.closed && !stopping {
            if !condition.wait(until: deadline) { break }
        }
        guard let answer = pipe.answers.removeValue(forKey: ticket) else {
            timeouts += 1
            return .noAnswer
        }
        if answer.hasPrefix("ack ") { return .ack }
        // "N is a follower: send appends to its primary, P"
        if let range = answer.range(of: "its primary, ") {
            return .error(namedPrimary: Int(answer[range.upperBound...].prefix { $0.isNumber }))
        }
        return .error(namedPrimary: nil)
    }
}
