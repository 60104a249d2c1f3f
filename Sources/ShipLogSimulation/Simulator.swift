import ShipLogProtocol
import ShipLogStorage

/// A deterministic cluster simulator (FoundationDB's and TigerBeetle's simulation testing are the
/// model): several `NodeMachine`s with in-memory logs and election state files, a simulated
/// network (delay, reordering, duplication, broken connections, partitions and healing, per
/// link), a simulated clock and disks, crashes (process kills and power losses) with restarts
/// from what is durable, and a random workload of sync and async appends, all drawn from one
/// seed (SplitMix64), so a failing seed replays exactly. The guarantees of issue 10 are checked
/// after every step (`Simulator+Checks`).
public final class Simulator {
    public let seed: UInt64
    public let scenario: SimulationScenario
    public let options: SimulationOptions
    let configuration: NodeMachineConfiguration
    var random: ElectionRandom
    var now: Duration = .zero
    var step = 0
    var events = EventQueue<SimEvent>()
    var nodes: [SimNode] = []
    var pairs: [Pair: Link] = [:]
    var pairList: [Pair] = []
    var partitioned: Set<Pair> = []
    var faultsOn = true
    var workloadOn = true

    // The workload and what the checks remember.
    var nextAppend: UInt64 = 1
    var clientTarget: NodeID?
    var appends: [UInt64: AppendRecord] = [:]
    var outstanding = 0
    var primaries: [UInt64: NodeID] = [:]
    var positions: [Position: UInt64] = [:]
    var committed: [UInt64] = []
    var asyncAcknowledged: [UInt64] = []
    var lossReports: [(node: NodeID, offsets: Range<UInt64>)] = []
    var crashLost: Set<UInt64> = []
    var acksSent: [AckKey: FollowerProgress] = [:]
    var votes: [NodeID: [UInt64: NodeID]] = [:]
    var trace: [String] = []
    public internal(set) var violation: SimulationViolation?
    public internal(set) var statistics = SimulationStatistics()

    public init(seed: UInt64, scenario: SimulationScenario? = nil, options: SimulationOptions = SimulationOptions()) {
        self.seed = seed
        let scenario = scenario ?? .forSeed(seed)
        self.scenario = scenario
        self.options = options
        random = ElectionRandom(seed: seed ^ 0x5348_4950_4C4F_4721)
        var election = ElectionConfiguration(
            voters: Set(scenario.voters.map(NodeID.init)), witnesses: Set(scenario.witnesses.map(NodeID.init)),
            heartbeatInterval: .milliseconds(50), electionTimeout: .milliseconds(300),
            twoNodeSelfPromotion: scenario.twoNodeSelfPromotion)
        if seed % 7 == 3 { election.detector = .phiAccrual(PhiAccrualSettings()) }
        var replication = ReplicationConfiguration()
        replication.ackLevel = scenario.ackLevel
        replication.heartbeatInterval = .milliseconds(50)
        replication.syncTimeout = .seconds(2)
        replication.inSyncLagTimeout = .seconds(1)
        replication.maxShipBytes = 600
        replication.maxInFlightBytesPerFollower = 2_000
        configuration = NodeMachineConfiguration(election: election, replication: replication)
        for id in scenario.voters.sorted() {
            nodes.append(SimNode(id: NodeID(id), isWitness: scenario.witnesses.contains(id)))
        }
        for a in scenario.voters.sorted() {
            for b in scenario.voters.sorted() where a < b {
                let pair = Pair(NodeID(a), NodeID(b))
                pairs[pair] = Link()
                pairList.append(pair)
            }
        }
    }

    /// Runs every step (stopping at the first violation) and returns it, if any.
    @discardableResult
    public func run() -> SimulationViolation? {
        for index in nodes.indices { boot(index) }
        for pair in pairList { scheduleReconnect(pair) }
        while step < options.steps, violation == nil {
            step += 1
            advance(by: options.stepDuration)
            if workloadOn { workload() }
            if faultsOn { faults() }
            if violation == nil, step % options.quiescenceEvery == 0 || step == options.steps { quiesce() }
        }
        return violation
    }

    /// Processes every event due within `duration`, then ticks every running node.
    func advance(by duration: Duration) {
        let end = now + duration
        while violation == nil, let next = events.nextTime, next <= end {
            let (time, event) = events.pop()!
            now = time
            handle(event)
        }
        now = end
        for index in nodes.indices where nodes[index].machine != nil && violation == nil {
            call(index) { $0.tick(now: self.now) }
        }
    }

    func handle(_ event: SimEvent) {
        switch event {
        case .deliver(let from, let to, let generation, let bytes): deliver(from: from, to: to, generation: generation, bytes)
        case .notifyDown(let node, let peer, let generation): notifyDown(node, peer: peer, generation: generation)
        case .linkUp(let pair): linkUp(pair)
        case .diskDone(let node, let incarnation): diskDone(index(node), incarnation: incarnation)
        case .restart(let node): restart(index(node))
        }
    }

    /// Starts (or restarts) a node's machine from its durable state.
    func boot(_ index: Int) {
        let node = nodes[index]
        let machine = try! NodeMachine(configuration: configuration, nodeID: node.id, durable: node.durable,
                                       log: node.isWitness ? nil : node.log.nodeLog,
                                       seed: seed &* 31 &+ node.id.rawValue &* 1_000_003 &+ node.incarnation, now: now)
        nodes[index].machine = machine
        call(index) { $0.start(now: self.now) }
    }

    /// Delivers an event to a running node's machine and carries out what it returns.
    func call(_ index: Int, crashAfter: Int? = nil, _ event: (inout NodeMachine) -> [NodeMachine.Action]) {
        guard nodes[index].machine != nil else { return }
        let actions = event(&nodes[index].machine!)
        var crashAfter = crashAfter
        // Now and then the node dies in the middle of a batch that persists its vote or epoch.
        if crashAfter == nil, faultsOn, actions.count > 1, case .persist = actions[0], chance(permille: 15) {
            crashAfter = 1 + uniform(actions.count - 1)
        }
        perform(index, actions, crashAfter: crashAfter)
    }

    /// The last trace lines (for reports, and to show a seed replays exactly).
    public var traceLines: [String] { Array(trace.suffix(options.traceLines)) }

    func index(_ id: NodeID) -> Int { nodes.firstIndex { $0.id == id }! }

    func note(_ line: String) {
        trace.append("t=\(now) step \(step): \(line)")
        if trace.count > options.traceLines * 2 { trace.removeFirst(trace.count - options.traceLines) }
    }

    func fail(_ message: String) {
        guard violation == nil else { return }
        violation = SimulationViolation(seed: seed, scenario: scenario.name, step: step, time: now, message: message,
                                        trace: Array(trace.suffix(options.traceLines)))
    }

    // MARK: - Randomness

    func chance(permille: UInt64) -> Bool { random.next(upperBound: UInt64(1000)) < permille }
    func uniform(_ bound: Int) -> Int { Int(random.next(upperBound: UInt64(bound))) }
    func duration(_ low: Duration, _ high: Duration) -> Duration { low + random.duration(below: high - low) }
}

/// One node as the simulator keeps it: the machine (nil while down) and what survives a crash.
struct SimNode {
    var id: NodeID
    var isWitness: Bool
    var machine: NodeMachine?
    var incarnation: UInt64 = 0
    var log = SimLog()
    var durable = ElectionDurableState.initial
    var disk: [DiskOp] = []
    var diskFreeAt: Duration = .zero
    /// The connection generation the machine believes is up, per peer.
    var believed: [NodeID: UInt64] = [:]

    init(id: NodeID, isWitness: Bool) {
        self.id = id
        self.isWitness = isWitness
    }
}

enum DiskOp {
    case writeAppend(AppendID, epoch: UInt64, sync: Bool)
    case appendBatches([[UInt8]])
    case truncate(UInt64)
    case reset(UInt64)
    case sync
}

enum SimEvent {
    case deliver(from: NodeID, to: NodeID, generation: UInt64, bytes: [UInt8])
    case notifyDown(node: NodeID, peer: NodeID, generation: UInt64)
    case linkUp(Pair)
    case diskDone(NodeID, incarnation: UInt64)
    case restart(NodeID)
}

/// An unordered pair of nodes (a < b): one connection between them.
struct Pair: Hashable {
    let a: NodeID
    let b: NodeID
    init(_ x: NodeID, _ y: NodeID) {
        a = min(x, y)
        b = max(x, y)
    }
}

struct Link {
    var generation: UInt64 = 0
    var up = false
    var reconnectScheduled = false
    /// The latest delivery time per direction (a→b, b→a), so a connection stays FIFO.
    var lastDelivery: [Duration] = [.zero, .zero]
}

/// A batch's place in history: two different batches there mean two writers in one epoch.
struct Position: Hashable {
    var epoch: UInt64
    var first: UInt64
}

struct AckKey: Hashable {
    var follower: NodeID
    var primary: NodeID
    var epoch: UInt64
}

struct AppendRecord {
    var node: NodeID
    var mode: ReplicationMode
    var epoch: UInt64?
    var first: UInt64?
    var next: UInt64?
    var acknowledged = false
}
