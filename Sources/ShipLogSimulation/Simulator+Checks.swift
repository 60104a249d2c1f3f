import ShipLogProtocol

/// The guarantees of issue 10, checked as the run goes:
/// - at most one primary per epoch ever, and only that primary writes batches of its epoch
///   (`logged`, `perform`), never two different batches at one (epoch, offset) (`placed`);
/// - a sync append acknowledged with a majority quorum is, at that moment, on that many
///   followers at the ack level (their own logs say so), is in the log of every later primary
///   when it takes office, and is never cut from any log;
/// - after the network heals and crashed nodes restart, every log equals the primary's
///   (`quiesce`), and an acknowledged async append missing from it was reported lost (given up
///   by a new primary, discarded by a cut) or died with a power loss on every node that had it;
/// - what a new primary gives up starts at or after what it had acknowledged to the old one.
extension Simulator {
    func acknowledged(_ id: UInt64, by node: NodeID) {
        outstanding -= 1
        guard var record = appends[id], let first = record.first, let next = record.next, let epoch = record.epoch else {
            return fail("\(node) acknowledged append \(id), which it never wrote")
        }
        record.acknowledged = true
        appends[id] = record
        switch record.mode {
        case .async:
            statistics.asyncAcknowledged += 1
            asyncAcknowledged.append(id)
        case .sync, .syncAll:
            let quorum: Int = if case .sync(let q) = record.mode { q } else { nodes.filter { !$0.isWitness }.count - 1 }
            statistics.syncAcknowledged += 1
            committed.append(id)
            let holders = nodes.filter { other in
                guard other.id != node, let batch = other.log.batch(at: first), batch.first == first, batch.epoch == epoch else {
                    return false
                }
                return scenario.ackLevel == .durable ? other.log.durableNextOffset >= next : other.log.nextOffset >= next
            }.count
            if holders < quorum {
                fail("\(node) acknowledged append \(id) (\(first)..<\(next), epoch \(epoch), sync \(quorum)) held by \(holders) followers")
            }
        }
    }

    /// A node starting to serve as primary holds every append acknowledged with a majority.
    func checkNewPrimary(_ index: Int, epoch: UInt64) {
        let node = nodes[index]
        for id in committed {
            guard let record = appends[id], let first = record.first else { continue }
            if !holds(node.log, record) {
                return fail("\(node.id), primary of epoch \(epoch), lacks append \(id) (offset \(first), epoch \(record.epoch!)), acknowledged in sync mode by \(record.node)")
            }
        }
    }

    func holds(_ log: SimLog, _ record: AppendRecord) -> Bool {
        guard let first = record.first, let batch = log.batch(at: first) else { return false }
        return batch.first == first && batch.epoch == record.epoch
    }

    /// What a new primary gives up starts at or after what it acknowledged to the old primary.
    func checkGivenUp(_ node: NodeID, previous: NodeID, epoch: UInt64, offsets: Range<UInt64>) {
        guard let acked = acksSent[AckKey(follower: node, primary: previous, epoch: epoch)] else { return }
        let level = scenario.ackLevel == .durable ? acked.durable : acked.written
        if offsets.lowerBound < level {
            fail("\(node) gives up \(offsets) of \(previous)'s epoch \(epoch) after acknowledging up to \(level)")
        }
    }

    /// Faults and the workload stop, partitions heal, crashed nodes restart; within a bound the
    /// cluster must have one primary that every other log-keeping node follows with an equal log.
    func quiesce() {
        statistics.quiescences += 1
        let wasFaulty = faultsOn
        faultsOn = false
        workloadOn = false
        note("quiescence: heal, restart, converge")
        heal()
        for index in nodes.indices where nodes[index].machine == nil { restart(index) }
        var converged: Int?
        for extra in 0..<options.convergenceSteps where violation == nil {
            advance(by: options.stepDuration)
            if extra % 10 == 0, let primary = convergedPrimary() {
                converged = primary
                break
            }
        }
        guard violation == nil else { return }
        guard let primaryIndex = converged else {
            let roles = nodes.map { n in "\(n.id): \(n.machine.map { "\($0.role)" } ?? "down") log \(n.log.firstOffset)..<\(n.log.nextOffset)" }
            return fail("no convergence within \(options.convergenceSteps) steps after healing: \(roles.joined(separator: "; "))")
        }
        let history = nodes[primaryIndex].log
        for node in nodes where !node.isWitness {
            guard node.log.batches.count == history.batches.count, node.log.firstOffset == history.firstOffset,
                  zip(node.log.batches, history.batches).allSatisfy({ $0.bytes == $1.bytes }) else {
                return fail("\(node.id)'s log differs from primary \(nodes[primaryIndex].id)'s after catching up")
            }
        }
        for id in committed where !holds(history, appends[id]!) {
            return fail("append \(id), acknowledged in sync mode, is missing after convergence")
        }
        var stillAcknowledged: [UInt64] = []
        for id in asyncAcknowledged {
            let record = appends[id]!
            if holds(history, record) { stillAcknowledged.append(id); continue }
            statistics.asyncLost += 1
            let reported = lossReports.contains { $0.offsets.contains(record.first!) } || crashLost.contains(id)
            if !reported {
                return fail("async append \(id) (offset \(record.first!), epoch \(record.epoch!)) was lost without a report")
            }
        }
        asyncAcknowledged = stillAcknowledged
        note("converged on \(nodes[primaryIndex].id): \(history.batches.count) batches")
        faultsOn = wasFaulty
        workloadOn = true
    }

    /// The index of the primary every other running log-keeping node follows with an equal,
    /// settled log; nil while that is not so.
    func convergedPrimary() -> Int? {
        let running = nodes.indices.filter { nodes[$0].machine != nil && !nodes[$0].isWitness }
        let leaders = running.filter { nodes[$0].machine!.role.role == .primary }
        guard running.count == nodes.filter({ !$0.isWitness }).count, let leader = leaders.max(by: {
            nodes[$0].machine!.epoch < nodes[$1].machine!.epoch
        }) else { return nil }
        let log = nodes[leader].log
        for index in running where index != leader {
            let node = nodes[index]
            guard node.machine!.role.role == .follower, node.machine!.role.primary == nodes[leader].id,
                  node.machine!.followerReplicator?.isStreaming == true, node.disk.isEmpty,
                  node.log.nextOffset == log.nextOffset, node.log.batches.last?.bytes == log.batches.last?.bytes else {
                return nil
            }
        }
        return nodes[leader].disk.isEmpty ? leader : nil
    }
}
