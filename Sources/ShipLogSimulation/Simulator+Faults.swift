import ShipLogProtocol

/// The random workload and the faults, all drawn from the run's seed.
extension Simulator {
    /// A client appends now and then, to the node it believes is primary (learned from
    /// refusals) or to any running node; most appends wait for a majority, some are async.
    func workload() {
        guard outstanding < 24, chance(permille: 350) else { return }
        var target = clientTarget.flatMap { id in nodes.firstIndex { $0.id == id && $0.machine != nil } }
        if target == nil || chance(permille: 100) {
            let candidates = nodes.indices.filter { nodes[$0].machine != nil && !nodes[$0].isWitness }
            guard !candidates.isEmpty else { return }
            target = candidates[uniform(candidates.count)]
        }
        let index = target!
        let id = nextAppend
        nextAppend += 1
        let mode: ReplicationMode = chance(permille: 700) ? configuration.majorityQuorum : .async
        appends[id] = AppendRecord(node: nodes[index].id, mode: mode)
        outstanding += 1
        call(index) { $0.append(AppendID(id), mode: mode, now: self.now) }
    }

    func faults() {
        if chance(permille: 4) {
            let running = nodes.indices.filter { nodes[$0].machine != nil }
            if !running.isEmpty {
                let index = running[uniform(running.count)]
                crash(index, powerLoss: scenario.powerLoss && chance(permille: 500), cause: "at random")
            }
        }
        if chance(permille: 5) {
            if chance(permille: 300) {
                let node = nodes[uniform(nodes.count)].id
                for pair in pairList where pair.a == node || pair.b == node { partition(pair) }
            } else {
                partition(pairList[uniform(pairList.count)])
            }
            statistics.partitions += 1
        }
        if chance(permille: 10) { heal() }
        if chance(permille: 5) {
            let pair = pairList[uniform(pairList.count)]
            if pairs[pair]!.up {
                note("connection \(pair.a)–\(pair.b) breaks")
                breakLink(pair, notifyWithin: .milliseconds(50))
            }
        }
        if chance(permille: 2), let primary = nodes.firstIndex(where: { $0.machine?.role.role == .primary }) {
            let candidates = configuration.election.candidates
            let target = candidates[uniform(candidates.count)]
            note("switchover from \(nodes[primary].id) to \(target) requested")
            call(primary) { $0.transferLeadership(to: target, now: self.now) }
        }
    }

    /// The node dies: its machine, its pending disk work and (on power loss) what it had not
    /// fdatasynced are gone; its connections break; it restarts later from what is durable.
    func crash(_ index: Int, powerLoss: Bool, cause: String) {
        guard nodes[index].machine != nil else { return }
        let id = nodes[index].id
        statistics.crashes += 1
        nodes[index].machine = nil
        nodes[index].incarnation += 1
        nodes[index].disk = []
        nodes[index].diskFreeAt = now
        nodes[index].believed = [:]
        var lost: [SimBatch] = []
        if powerLoss {
            let extra = nodes[index].log.batches.count - nodes[index].log.durableCount
            lost = nodes[index].log.losePower(keepingExtra: extra > 0 ? uniform(extra + 1) : 0)
            for batch in lost { crashLost.insert(Self.appendID(of: batch)) }
        }
        note("\(id) crashes \(cause)\(powerLoss ? " with power loss (\(lost.count) batches lost)" : "")")
        for pair in pairList where pair.a == id || pair.b == id {
            breakLink(pair, notifyWithin: powerLoss ? .milliseconds(300) : .milliseconds(5))
        }
        if faultsOn || workloadOn {
            events.schedule(.restart(id), at: now + duration(.milliseconds(20), .milliseconds(1500)))
        }
    }

    func restart(_ index: Int) {
        guard nodes[index].machine == nil else { return }
        note("\(nodes[index].id) restarts: epoch \(nodes[index].durable.epoch), log \(nodes[index].log.firstOffset)..<\(nodes[index].log.nextOffset)")
        boot(index)
        for pair in pairList where pair.a == nodes[index].id || pair.b == nodes[index].id { scheduleReconnect(pair) }
    }
}
