import Synchronization

/// The `now` the state machines take: monotonic time since the node started.
struct NodeClock: Sendable {
    let origin = ContinuousClock.now
    func now() -> Duration { ContinuousClock.now - origin }
}

/// Numbers connections across every listener and client of a process, so that a connection
/// id is never reused while a state machine may still remember it.
enum ConnectionNumbers {
    private static let last = Atomic<UInt64>(0)
    static func next() -> ConnectionID {
        ConnectionID(last.add(1, ordering: .relaxed).newValue)
    }
}

/// A random nonce for a handshake (32 bytes, format.md §11.2), from the system's generator.
func makeNonce() -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}
