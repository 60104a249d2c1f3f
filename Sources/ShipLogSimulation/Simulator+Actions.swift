import ShipLogProtocol
import ShipLogStorage

/// Carrying out a machine's actions the way the NIO shell will: persists at once (the state
/// file is written and fsynced before anything else of the batch), frames onto the network, log
/// work onto the node's simulated disk, reports back as later events.
extension Simulator {
    func perform(_ index: Int, _ actions: [NodeMachine.Action], crashAfter: Int?) {
        let id = nodes[index].id
        var followUps: [(inout NodeMachine) -> [NodeMachine.Action]] = []
        for (position, action) in actions.enumerated() {
            if let limit = crashAfter, position >= limit {
                crash(index, powerLoss: false, cause: "in the middle of a batch, after \(limit) actions")
                return
            }
            switch action {
            case .persist(let state):
                persisted(index, state)
            case .send(let frame, let to):
                if case .ack(let ack) = frame, let session = nodes[index].machine?.followerReplicator {
                    let key = AckKey(follower: id, primary: to, epoch: session.knownEpoch)
                    let old = acksSent[key] ?? FollowerProgress(received: 0, written: 0, durable: 0)
                    acksSent[key] = FollowerProgress(received: max(old.received, ack.progress.received),
                                                     written: max(old.written, ack.progress.written),
                                                     durable: max(old.durable, ack.progress.durable))
                }
                send(frame, from: id, to: to)
            case .disconnect(let peer, let reason, let message):
                let pair = Pair(id, peer)
                if let link = pairs[pair], link.up, nodes[index].believed[peer] == link.generation {
                    note("\(id) closes its connection to \(peer): \(reason) \(message)")
                    breakLink(pair, notifyWithin: .milliseconds(2))
                }
            case .writeAppend(let append, let epoch, let sync):
                if primaries[epoch] != id {
                    fail("\(id) writes \(append) in epoch \(epoch), whose primary is \(primaries[epoch].map { "\($0)" } ?? "nobody")")
                }
                enqueueDisk(index, .writeAppend(append, epoch: epoch, sync: sync))
            case .appendBatches(let batches):
                enqueueDisk(index, .appendBatches(batches.map(\.bytes)))
            case .truncateLog(let offset):
                enqueueDisk(index, .truncate(offset))
            case .resetLog(let offset):
                enqueueDisk(index, .reset(offset))
            case .syncLog:
                enqueueDisk(index, .sync)
            case .ship(let to, let connection, let from, let maxBytes, let epoch, let commitOffset):
                let batches = nodes[index].log.read(from: from, maxBytes: maxBytes)
                var end = from
                var bytes = 0
                if let last = batches.last {
                    end = try! StoredBatch(bytes: last).header.nextOffset
                    bytes = batches.reduce(0) { $0 + $1.count }
                    send(.batches(.init(epoch: epoch, commitOffset: commitOffset, batches: batches)), from: id, to: to)
                }
                let now = self.now
                followUps.append { $0.shipped(connection, nextOffset: end, bytes: bytes, now: now) }
            case .acknowledge(let append):
                acknowledged(append.rawValue, by: id)
            case .fail(_, let error):
                outstanding -= 1
                statistics.appendsFailed += 1
                if case .notPrimary(let primary?) = error { clientTarget = primary }
                if case .switchoverInProgress(let target) = error { clientTarget = target }
            case .roleChanged(let change):
                note("\(id) is \(change.role) in epoch \(change.epoch), primary \(change.primary.map { "\($0)" } ?? "none")")
                if change.role == .primary { checkNewPrimary(index, epoch: change.epoch) }
            case .log(let event):
                logged(index, event)
            }
            if violation != nil { return }
        }
        for followUp in followUps { call(index, followUp) }
    }

    func persisted(_ index: Int, _ state: ElectionDurableState) {
        let id = nodes[index].id
        let previous = nodes[index].durable
        if state.epoch < previous.epoch { fail("\(id) persisted epoch \(state.epoch) after \(previous.epoch)") }
        if let vote = state.votedFor {
            if let earlier = votes[id]?[state.epoch], earlier != vote {
                fail("\(id) voted for \(earlier) and then \(vote) in epoch \(state.epoch)")
            }
            votes[id, default: [:]][state.epoch] = vote
        }
        nodes[index].durable = state
    }

    func logged(_ index: Int, _ event: NodeEvent) {
        let id = nodes[index].id
        switch event {
        case .election(.promoted(let epoch, _, _, _)):
            statistics.promotions += 1
            note("\(id) wins epoch \(epoch)")
            if let other = primaries[epoch], other != id { fail("two primaries in epoch \(epoch): \(other) and \(id)") }
            primaries[epoch] = id
        case .election(.steppedDown(let epoch, let reason)):
            note("\(id) steps down from epoch \(epoch): \(reason)")
        case .asyncWritesGivenUp(let previous, let previousEpoch, let offsets):
            note("\(id) gives up \(offsets) of \(previous)'s epoch \(previousEpoch)")
            lossReports.append((id, offsets))
            checkGivenUp(id, previous: previous, epoch: previousEpoch, offsets: offsets)
        case .divergentSuffixDiscarded(let offsets, let primary, let epoch):
            note("\(id) discards \(offsets) on the word of \(primary) (epoch \(epoch))")
            lossReports.append((id, offsets))
        default:
            break
        }
    }

    // MARK: - The simulated disk

    func enqueueDisk(_ index: Int, _ op: DiskOp) {
        nodes[index].disk.append(op)
        var latency = duration(.microseconds(100), .milliseconds(2))
        if chance(permille: 30) { latency = duration(.milliseconds(5), .milliseconds(40)) }
        let done = max(nodes[index].diskFreeAt, now) + latency
        nodes[index].diskFreeAt = done
        events.schedule(.diskDone(nodes[index].id, incarnation: nodes[index].incarnation), at: done)
    }

    func diskDone(_ index: Int, incarnation: UInt64) {
        guard nodes[index].incarnation == incarnation, nodes[index].machine != nil, !nodes[index].disk.isEmpty else { return }
        let id = nodes[index].id
        let op = nodes[index].disk.removeFirst()
        let now = self.now
        switch op {
        case .writeAppend(let append, let epoch, let sync):
            let bytes = SimLog.makeBatch(append: append.rawValue, first: nodes[index].log.nextOffset, epoch: epoch)
            let batch: SimBatch
            do {
                batch = try nodes[index].log.append(bytes)
            } catch {
                return fail("\(id)'s own append \(append) in epoch \(epoch) refused by its log: \(error)")
            }
            if sync { nodes[index].log.sync() }
            appends[append.rawValue]?.epoch = epoch
            appends[append.rawValue]?.first = batch.first
            appends[append.rawValue]?.next = batch.next
            placed(batch, append: append.rawValue, on: id)
            let log = nodes[index].log.nodeLog
            call(index) { $0.appendWritten(append, through: batch.next, log: log, now: now) }
        case .appendBatches(let batches):
            var failure: String?
            for bytes in batches {
                do {
                    let batch = try nodes[index].log.append(bytes)
                    placed(batch, append: nil, on: id)
                } catch {
                    failure = "\(error)"
                    break
                }
            }
            let log = nodes[index].log.nodeLog
            if let failure {
                call(index) { $0.batchesAppendFailed(failure, log: log, now: now) }
            } else {
                call(index) { $0.batchesAppended(log: log, now: now) }
            }
        case .truncate(let offset):
            removed(nodes[index].log.truncate(toNextOffset: offset), from: id, how: "truncated")
            let log = nodes[index].log.nodeLog
            call(index) { $0.logCut(log: log, now: now) }
        case .reset(let offset):
            removed(nodes[index].log.reset(startingAt: offset), from: id, how: "reset")
            let log = nodes[index].log.nodeLog
            call(index) { $0.logCut(log: log, now: now) }
        case .sync:
            nodes[index].log.sync()
            let log = nodes[index].log.nodeLog
            call(index) { $0.logSynced(log: log, now: now) }
        }
    }

    /// A batch landed in a log: at its (epoch, offset) there must never be two different ones.
    func placed(_ batch: SimBatch, append: UInt64?, on node: NodeID) {
        let position = Position(epoch: batch.epoch, first: batch.first)
        let id = append ?? Self.appendID(of: batch)
        if let existing = positions[position] {
            if existing != id {
                fail("\(node) holds append \(id) at offset \(batch.first) of epoch \(batch.epoch), where append \(existing) was written")
            }
        } else {
            positions[position] = id
        }
    }

    func removed(_ batches: [SimBatch], from node: NodeID, how: String) {
        for batch in batches {
            let id = Self.appendID(of: batch)
            if let record = appends[id], record.acknowledged, record.mode != .async {
                fail("\(node) \(how) away append \(id) (offsets \(batch.first)..<\(batch.next), epoch \(batch.epoch)), acknowledged in \(record.mode)")
            }
        }
    }

    /// The append a simulated batch carries (its first record's first 8 bytes).
    static func appendID(of batch: SimBatch) -> UInt64 {
        let payload = batch.bytes[(Format.batchHeaderBytes + Format.recordLengthPrefixBytes)...]
        var id: UInt64 = 0
        for (i, byte) in payload.prefix(8).enumerated() { id |= UInt64(byte) << (8 * UInt64(i)) }
        return id
    }
}
