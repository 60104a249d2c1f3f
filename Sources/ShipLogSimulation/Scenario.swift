import ShipLogProtocol

/// A cluster shape and the faults it is exposed to.
public struct SimulationScenario: Sendable {
    public var name: String
    public var voters: [UInt64]
    public var witnesses: [UInt64]
    public var twoNodeSelfPromotion: Bool
    public var ackLevel: AckLevel
    /// Crashes may lose power (everything not fdatasynced). Only with ack level `durable`:
    /// at `written` an acknowledgement promises the kernel has it, which a power loss breaks.
    public var powerLoss: Bool

    public init(name: String, voters: [UInt64], witnesses: [UInt64] = [], twoNodeSelfPromotion: Bool = false,
                ackLevel: AckLevel, powerLoss: Bool) {
        self.name = name
        self.voters = voters
        self.witnesses = witnesses
        self.twoNodeSelfPromotion = twoNodeSelfPromotion
        self.ackLevel = ackLevel
        self.powerLoss = powerLoss
    }

    /// The shapes every run cycles through (seed % count).
    public static let all: [SimulationScenario] = [
        .init(name: "3 nodes, durable", voters: [1, 2, 3], ackLevel: .durable, powerLoss: true),
        .init(name: "5 nodes, durable", voters: [1, 2, 3, 4, 5], ackLevel: .durable, powerLoss: true),
        .init(name: "primary + standby + witness, durable", voters: [1, 2, 9], witnesses: [9], ackLevel: .durable, powerLoss: true),
        .init(name: "two nodes, durable", voters: [1, 2], twoNodeSelfPromotion: true, ackLevel: .durable, powerLoss: true),
        .init(name: "3 nodes, written, process crashes", voters: [1, 2, 3], ackLevel: .written, powerLoss: false),
        .init(name: "5 nodes, written, process crashes", voters: [1, 2, 3, 4, 5], ackLevel: .written, powerLoss: false),
    ]

    public static func forSeed(_ seed: UInt64) -> SimulationScenario { all[Int(seed % UInt64(all.count))] }
}

/// How long a run lasts and how hostile it is.
public struct SimulationOptions: Sendable {
    /// Steps of `stepDuration` simulated time; the guarantees are checked after each.
    public var steps: Int = 3_000
    public var stepDuration: Duration = .milliseconds(5)
    /// Every this many steps (and at the end) faults stop, partitions heal, crashed nodes
    /// restart, and the cluster must converge within `convergenceSteps`.
    public var quiescenceEvery: Int = 1_500
    public var convergenceSteps: Int = 4_000
    /// Trace lines kept for a violation report.
    public var traceLines: Int = 80
    public init() {}
}

/// A broken guarantee: when, what, and the events that led there.
public struct SimulationViolation: Error, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var scenario: String
    public var step: Int
    public var time: Duration
    public var message: String
    public var trace: [String]
    public var description: String {
        "VIOLATION seed \(seed) (\(scenario)) at step \(step), t=\(time): \(message)\n" + trace.map { "  " + $0 }.joined(separator: "\n")
    }
}

/// What a run did, for the summary (and to show the checks were not vacuous).
public struct SimulationStatistics: Sendable {
    public var promotions = 0
    public var syncAcknowledged = 0
    public var asyncAcknowledged = 0
    public var appendsFailed = 0
    public var crashes = 0
    public var partitions = 0
    public var quiescences = 0
    public var asyncLost = 0
    public init() {}
    public mutating func add(_ other: SimulationStatistics) {
        promotions += other.promotions
        syncAcknowledged += other.syncAcknowledged
        asyncAcknowledged += other.asyncAcknowledged
        appendsFailed += other.appendsFailed
        crashes += other.crashes
        partitions += other.partitions
        quiescences += other.quiescences
        asyncLost += other.asyncLost
    }
}
