import ShipLogProtocol

/// The simulated network: one connection per pair of nodes, FIFO like TCP unless a fault
/// reorders or duplicates a frame. A broken connection (a lost packet, a partition, a crash, or
/// a node's own `.disconnect`) drops what is in flight; each end learns it after its own delay,
/// and sends into the void meanwhile. Connections come back after a delay once both nodes run
/// and no partition separates them.
extension Simulator {
    func send(_ frame: Frame, from: NodeID, to: NodeID) {
        let pair = Pair(from, to)
        guard let link = pairs[pair], link.up, nodes[index(from)].believed[to] == link.generation else { return }
        if faultsOn && chance(permille: 1) {
            note("connection \(from)–\(to) breaks (a lost packet)")
            breakLink(pair, notifyWithin: .milliseconds(20))
            return
        }
        let bytes = FrameCodec.encode(frame)
        let direction = from == pair.a ? 0 : 1
        var delay = duration(.microseconds(50), .milliseconds(2))
        if chance(permille: 20) { delay = duration(.milliseconds(5), .milliseconds(40)) }
        var at = now + delay
        let reorder = faultsOn && chance(permille: 3)
        if !reorder { at = max(at, link.lastDelivery[direction]) }
        pairs[pair]!.lastDelivery[direction] = max(link.lastDelivery[direction], at)
        events.schedule(.deliver(from: from, to: to, generation: link.generation, bytes: bytes), at: at)
        if faultsOn && chance(permille: 3) {
            events.schedule(.deliver(from: from, to: to, generation: link.generation, bytes: bytes),
                            at: at + duration(.zero, .milliseconds(5)))
        }
    }

    func deliver(from: NodeID, to: NodeID, generation: UInt64, _ bytes: [UInt8]) {
        let target = index(to)
        guard let link = pairs[Pair(from, to)], link.up, link.generation == generation,
              nodes[target].believed[from] == generation, nodes[target].machine != nil else { return }
        switch FrameCodec.decode(bytes, maxFrameBytes: configuration.replication.maxFrameBytes) {
        case .frame(let frame, let consumed):
            precondition(consumed == bytes.count)
            call(target) { $0.received(frame, from: from, now: self.now) }
        case .needMoreBytes, .invalid:
            fail("\(to) could not decode a frame \(from) encoded")
        }
    }

    /// The connection breaks: frames in flight are lost; each end is told within `notifyWithin`.
    func breakLink(_ pair: Pair, notifyWithin: Duration) {
        guard let link = pairs[pair], link.up else { return }
        pairs[pair]!.up = false
        for (node, peer) in [(pair.a, pair.b), (pair.b, pair.a)] where nodes[index(node)].believed[peer] == link.generation {
            events.schedule(.notifyDown(node: node, peer: peer, generation: link.generation),
                            at: now + duration(.zero, notifyWithin))
        }
        scheduleReconnect(pair)
    }

    func notifyDown(_ node: NodeID, peer: NodeID, generation: UInt64) {
        let target = index(node)
        guard nodes[target].believed[peer] == generation else { return }
        nodes[target].believed[peer] = nil
        call(target) { $0.peerDisconnected(peer, now: self.now) }
    }

    func scheduleReconnect(_ pair: Pair) {
        guard let link = pairs[pair], !link.reconnectScheduled else { return }
        pairs[pair]!.reconnectScheduled = true
        events.schedule(.linkUp(pair), at: now + duration(.milliseconds(2), .milliseconds(40)))
    }

    /// A new connection, when both nodes run and no partition separates them (else it is tried
    /// again when that changes).
    func linkUp(_ pair: Pair) {
        pairs[pair]!.reconnectScheduled = false
        guard let link = pairs[pair], !link.up, !partitioned.contains(pair),
              nodes[index(pair.a)].machine != nil, nodes[index(pair.b)].machine != nil else { return }
        // An end that has not yet noticed the old connection's end learns it first.
        for (node, peer) in [(pair.a, pair.b), (pair.b, pair.a)] {
            if let old = nodes[index(node)].believed[peer] { notifyDown(node, peer: peer, generation: old) }
        }
        guard nodes[index(pair.a)].machine != nil, nodes[index(pair.b)].machine != nil, !(pairs[pair]!.up) else { return }
        pairs[pair]!.generation += 1
        pairs[pair]!.up = true
        let generation = pairs[pair]!.generation
        nodes[index(pair.a)].believed[pair.b] = generation
        nodes[index(pair.b)].believed[pair.a] = generation
        call(index(pair.a)) { $0.peerConnected(pair.b, now: self.now) }
        if pairs[pair]!.up && pairs[pair]!.generation == generation {
            call(index(pair.b)) { $0.peerConnected(pair.a, now: self.now) }
        }
    }

    func partition(_ pair: Pair) {
        guard !partitioned.contains(pair) else { return }
        partitioned.insert(pair)
        note("partition \(pair.a) | \(pair.b)")
        // The network died silently: each end notices only when its connection times out.
        breakLink(pair, notifyWithin: .milliseconds(300))
    }

    func heal() {
        guard !partitioned.isEmpty else { return }
        note("heal all partitions")
        partitioned = []
        for pair in pairList { scheduleReconnect(pair) }
    }
}
