import ShipLogProtocol

/// A tiny cluster of `Election` instances with a network the test controls: messages wait in a
/// queue until delivered (in order, or picked by the test), links can be cut, nodes crash and
/// restart from the state they persisted. Time is a number the test advances. It records every
/// promotion, and flags two primaries in one epoch or a vote changed within an epoch.
struct ElectionCluster {
    struct Envelope: Equatable {
        var from: NodeID
        var to: NodeID
        var message: ElectionMessage
    }

    var configuration: ElectionConfiguration
    var nodes: [NodeID: Election] = [:]
    /// The last state each node persisted: what survives a crash.
    var durable: [NodeID: ElectionDurableState] = [:]
    var logEnds: [NodeID: LogEnd] = [:]
    var queue: [Envelope] = []
    var now: Duration = .zero
    var down: Set<NodeID> = []
    /// Directed links that drop everything.
    var cut: Set<[NodeID]> = []
    /// Every `becomePrimary` ever: epoch → node.
    var primaries: [UInt64: NodeID] = [:]
    var violations: [String] = []
    /// Every action each node emitted, in order (for tests that look at logs).
    var history: [NodeID: [Election.Action]] = [:]
    /// Every vote each node persisted, across restarts: epoch → candidate.
    var votes: [NodeID: [UInt64: NodeID]] = [:]
    var seed: UInt64

    init(voters: [UInt64], witnesses: [UInt64] = [], seed: UInt64 = 1, _ adjust: (inout ElectionConfiguration) -> Void = { _ in }) {
        var configuration = ElectionConfiguration(
            voters: Set(voters.map(NodeID.init)), witnesses: Set(witnesses.map(NodeID.init)))
        adjust(&configuration)
        self.configuration = configuration
        self.seed = seed
        for id in voters.map(NodeID.init) {
            durable[id] = .initial
            logEnds[id] = LogEnd(nextOffset: 0, lastEpoch: nil)
            start(id)
        }
    }

    var ids: [NodeID] { configuration.voters.sorted() }

    /// Nodes that are up and primary, newest epoch last.
    var currentPrimaries: [NodeID] {
        ids.filter { !down.contains($0) && nodes[$0]?.role == .primary }.sorted { nodes[$0]!.epoch < nodes[$1]!.epoch }
    }

    mutating func start(_ id: NodeID) {
        seed &+= 0x9E37_79B9
        let logEnd = configuration.witnesses.contains(id) ? nil : logEnds[id]
        var election = try! Election(
            configuration: configuration, nodeID: id, durable: durable[id]!, logEnd: logEnd, seed: seed, now: now)
        let actions = election.start(now: now)
        nodes[id] = election
        apply(actions, at: id)
    }

    /// Carries out a batch. With `crashAfter`, the node dies after that many actions: persists
    /// before it are durable, sends before it are on the wire, nothing after happens.
    mutating func apply(_ actions: [Election.Action], at id: NodeID, crashAfter: Int? = nil) {
        for (index, action) in actions.enumerated() {
            if let limit = crashAfter, index >= limit {
                crash(id)
                return
            }
            history[id, default: []].append(action)
            switch action {
            case .persist(let state):
                if let previous = durable[id], state.epoch < previous.epoch {
                    violations.append("\(id) persisted epoch \(state.epoch) after \(previous.epoch)")
                }
                if let vote = state.votedFor {
                    if let earlier = votes[id]?[state.epoch], earlier != vote {
                        violations.append("\(id) voted for \(earlier) then \(vote) in epoch \(state.epoch)")
                    }
                    votes[id, default: [:]][state.epoch] = vote
                }
                durable[id] = state
            case .send(let message, let to):
                if !cut.contains([id, to]) { queue.append(Envelope(from: id, to: to, message: message)) }
            case .becomePrimary(let epoch):
                if durable[id]?.epoch != epoch { violations.append("\(id) primary in \(epoch) not persisted") }
                if let other = primaries[epoch], other != id {
                    violations.append("two primaries in epoch \(epoch): \(other) and \(id)")
                }
                primaries[epoch] = id
            case .becomeFollower, .stepDown, .pauseAppends, .resumeAppends, .log:
                break
            }
        }
    }

    mutating func crash(_ id: NodeID) {
        down.insert(id)
        nodes[id] = nil
        queue.removeAll { $0.to == id }
    }

    mutating func restart(_ id: NodeID) {
        down.remove(id)
        start(id)
    }

    /// Delivers one queued message (the first, or the one at `index`).
    mutating func deliver(at index: Int = 0, crashAfter: Int? = nil) {
        let envelope = queue.remove(at: index)
        guard !down.contains(envelope.to), !cut.contains([envelope.from, envelope.to]),
            var node = nodes[envelope.to]
        else { return }
        let actions = node.received(envelope.message, from: envelope.from, now: now)
        nodes[envelope.to] = node
        apply(actions, at: envelope.to, crashAfter: crashAfter)
    }

    /// Delivers until the queue is empty (bounded: a livelock fails the test instead of hanging).
    mutating func deliverAll() {
        var steps = 0
        while !queue.isEmpty && steps < 10_000 {
            deliver()
            steps += 1
        }
        if !queue.isEmpty { violations.append("queue never drained") }
    }

    mutating func tick(_ id: NodeID) {
        guard !down.contains(id), var node = nodes[id] else { return }
        let actions = node.tick(now: now)
        nodes[id] = node
        apply(actions, at: id)
    }

    /// Runs `duration` in steps of `step`: every node ticks, then the network drains.
    mutating func run(for duration: Duration, step: Duration = .milliseconds(5)) {
        let end = now + duration
        while now < end {
            now += step
            for id in ids { tick(id) }
            deliverAll()
        }
    }

    /// Runs until `condition` holds (checked after each step), at most `limit`; the time it took.
    @discardableResult
    mutating func run(until condition: (ElectionCluster) -> Bool, limit: Duration = .seconds(30), step: Duration = .milliseconds(5)) -> Duration? {
        let start = now
        while now - start < limit {
            if condition(self) { return now - start }
            run(for: step, step: step)
        }
        return condition(self) ? now - start : nil
    }

    mutating func isolate(_ id: NodeID) {
        for other in ids where other != id {
            cut.insert([id, other])
            cut.insert([other, id])
        }
    }

    /// Cuts the link between `a` and `b`, both ways.
    mutating func cutLink(_ a: NodeID, _ b: NodeID) {
        cut.insert([a, b])
        cut.insert([b, a])
    }

    mutating func heal() { cut = [] }

    mutating func call(_ id: NodeID, _ event: (inout Election) -> [Election.Action]) {
        guard var node = nodes[id] else { return }
        let actions = event(&node)
        nodes[id] = node
        apply(actions, at: id)
    }

    func logs(_ id: NodeID) -> [Election.ElectionEvent] {
        (history[id] ?? []).compactMap { if case .log(let event) = $0 { event } else { nil } }
    }

    func campaigned(_ id: NodeID) -> Bool {
        logs(id).contains { if case .campaignStarted = $0 { true } else { false } }
    }
}

func node(_ id: UInt64) -> NodeID { NodeID(id) }
