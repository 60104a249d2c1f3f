#if canImport(Glibc)
import Glibc  // exp and log10 only
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides whether a peer that should send heartbeats has gone quiet. Pure: every heartbeat
/// and every question carries the time (monotonic, from an arbitrary origin), so a test or the
/// simulator drives it without sleeping.
public enum FailureDetectorKind: Equatable, Sendable {
    /// Suspect the peer once nothing arrived for `timeout`.
    case fixedTimeout(Duration)
    /// Suspect the peer once phi (Hayashibara et al., as in Akka and Cassandra) reaches `threshold`.
    case phiAccrual(PhiAccrualSettings)
}

public struct PhiAccrualSettings: Equatable, Sendable {
    /// Phi at which the peer is suspected: 8 is Akka's default (about one false suspicion in 10^8 heartbeats
    /// when arrivals are normal), lower reacts faster.
    public var threshold: Double = 8
    /// Inter-arrival times remembered.
    public var maxSampleCount: Int = 200
    /// A floor on the standard deviation, so perfectly regular heartbeats do not make phi explode on the first jitter.
    public var minStandardDeviation: Duration = .milliseconds(20)
    /// Pauses up to this long are not held against the peer (GC, scheduling).
    public var acceptableHeartbeatPause: Duration = .zero
    /// The interval assumed before the first samples arrive.
    public var firstHeartbeatEstimate: Duration = .milliseconds(100)
    public init() {}
}

public struct FailureDetector: Sendable {
    public let kind: FailureDetectorKind
    private(set) var lastHeartbeat: Duration?
    /// The latest other proof of life (`alive`), which is no interval sample.
    private(set) var lastAlive: Duration?
    /// The latest proof of life of either kind: silence counts from here.
    var lastHeard: Duration? { lastHeartbeat.map { max($0, lastAlive ?? $0) } }
    private var intervals: IntervalWindow

    public init(_ kind: FailureDetectorKind) {
        self.kind = kind
        let capacity: Int
        if case .phiAccrual(let settings) = kind {
            precondition(settings.maxSampleCount > 0 && settings.threshold > 0)
            capacity = settings.maxSampleCount
        } else {
            capacity = 1
        }
        intervals = IntervalWindow(capacity: capacity)
    }

    /// A heartbeat (or any frame that proves the peer alive) arrived at `now`.
    public mutating func heartbeat(now: Duration) {
        if let last = lastHeartbeat {
            precondition(now >= last, "time went backwards: \(now) after \(last)")
            intervals.add(milliseconds(now - last))
        } else if case .phiAccrual(let settings) = kind {
            // Seed the window as Akka does: the first estimate with a spread of a quarter of it.
            let estimate = milliseconds(settings.firstHeartbeatEstimate)
            intervals.add(estimate - estimate / 4)
            intervals.add(estimate + estimate / 4)
        }
        lastHeartbeat = now
    }

    /// Proof of life outside the regular heartbeats (a primary's replication frame): silence
    /// counts from `now` again, but the arrival is no sample of the heartbeat interval (such
    /// frames come at the load's pace, not the heartbeats'). Ignored before the detector starts.
    public mutating func alive(now: Duration) {
        guard lastHeartbeat != nil else { return }
        lastAlive = max(lastAlive ?? now, now)
    }

    /// Forgets the heartbeat history (a new primary, a new connection). The peer is not
    /// suspected until `timeout` after `now` (fixed) or the history refills (phi).
    public mutating func reset(now: Duration) {
        lastHeartbeat = nil
        lastAlive = nil
        intervals = IntervalWindow(capacity: intervals.capacity)
        heartbeat(now: now)
    }

    /// Phi at `now`: minus log10 of the probability that a heartbeat this late is still coming.
    /// For the fixed timeout: 0 before the timeout, infinity after.
    public func phi(now: Duration) -> Double {
        guard let last = lastHeard else { return 0 }
        let sinceLast = milliseconds(max(.zero, now - last))
        switch kind {
        case .fixedTimeout(let timeout):
            return sinceLast >= milliseconds(timeout) ? .infinity : 0
        case .phiAccrual(let settings):
            let mean = intervals.mean + milliseconds(settings.acceptableHeartbeatPause)
            let deviation = max(intervals.standardDeviation, milliseconds(settings.minStandardDeviation))
            return Self.phi(sinceLast: sinceLast, mean: mean, standardDeviation: deviation)
        }
    }

    /// Whether the peer is suspected at `now`. A peer never heard from is not suspected here:
    /// the caller starts the detector (`reset`) when it begins expecting heartbeats.
    public func isSuspected(now: Duration) -> Bool {
        switch kind {
        case .fixedTimeout: return phi(now: now) == .infinity
        case .phiAccrual(let settings): return phi(now: now) >= settings.threshold
        }
    }

    /// Akka's logistic approximation of the normal CDF's tail (error under 0.01%), in a form
    /// that stays finite far into the tail.
    static func phi(sinceLast: Double, mean: Double, standardDeviation: Double) -> Double {
        let y = (sinceLast - mean) / standardDeviation
        let e = exp(-y * (1.5976 + 0.070566 * y * y))
        return sinceLast > mean ? -log10(e / (1 + e)) : -log10(1 - 1 / (1 + e))
    }
}

private func milliseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1000 + Double(attoseconds) / 1e15
}

/// The last `capacity` inter-arrival times with their running sums, in milliseconds.
private struct IntervalWindow: Sendable {
    let capacity: Int
    private var samples: [Double] = []
    private var next = 0
    private var sum = 0.0
    private var sumOfSquares = 0.0

    init(capacity: Int) { self.capacity = capacity }

    mutating func add(_ sample: Double) {
        if samples.count < capacity {
            samples.append(sample)
        } else {
            let old = samples[next]
            sum -= old
            sumOfSquares -= old * old
            samples[next] = sample
            next = (next + 1) % capacity
        }
        sum += sample
        sumOfSquares += sample * sample
        // Running sums drift after many subtractions: start them afresh once per lap.
        if next == 0, samples.count == capacity {
            sum = samples.reduce(0, +)
            sumOfSquares = samples.reduce(0) { $0 + $1 * $1 }
        }
    }

    var mean: Double { samples.isEmpty ? 0 : sum / Double(samples.count) }
    var standardDeviation: Double {
        guard !samples.isEmpty else { return 0 }
        let m = mean
        return (max(0, sumOfSquares / Double(samples.count) - m * m)).squareRoot()
    }
}
