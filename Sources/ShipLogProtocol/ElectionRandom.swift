/// SplitMix64 (Steele, Lea and Flood, 2014): the election's only source of randomness, seeded
/// at init, so that a simulator seed replays every jitter exactly.
public struct ElectionRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A duration uniformly in 0..<bound (zero when bound is not positive), at nanosecond grain.
    public mutating func duration(below bound: Duration) -> Duration {
        let (seconds, attoseconds) = bound.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        guard nanoseconds >= 1 else { return .zero }
        return .nanoseconds(Int64(next(upperBound: UInt64(nanoseconds))))
    }
}
