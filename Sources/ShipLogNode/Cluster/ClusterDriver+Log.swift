import NIOCore
import ShipLogProtocol
import ShipLogStorage

/// The driver's log actions: appends written (in groups, `ClusterAppendGroup`), cuts, and ships
/// of stored batches to followers, from memory or read in the log's line of operations.
extension ClusterDriver {
    func writeAppend(_ id: AppendID, epoch: UInt64, sync: Bool) {
        guard let logWork, let records = held.removeValue(forKey: id) else {
            preconditionFailure("writeAppend of \(id) without its records (a witness, or reported twice)")
        }
        let member = ClusterAppendGroup.Member(records: records, epoch: epoch,
                                               sync: sync || logWork.log.options.durability == .fsync)
        logWork.enqueueAppend(member, written: { [self] result in
            if case .success(let written) = result, let stored = written.stored, machine.primary?.epoch == epoch {
                recent.insert(stored, first: written.offsets.lowerBound, nextOffset: written.offsets.upperBound)
            }
        }) { [self] result, log in
            switch result {
            case .success(let written):
                waiting[id]?.offsets = written.offsets
                feed { $0.appendWritten(id, through: written.offsets.upperBound, log: log, now: $1) }
            case .failure(let error):
                feed { $0.appendFailed(id, message: "\(error)", log: log, now: $1) }
                failIfPoisoned(error, "appending in epoch \(epoch)")
            }
        }
    }

    /// A log that refuses every write (`LogError.failed`: an fdatasync failed, or a write could
    /// not be cut back) never recovers without a reopen. Staying in the cluster with it would
    /// leave a primary that heartbeats but can never acknowledge (so nobody fails over), or a
    /// follower that votes on a log end it cannot extend: fail-stop, as for a failed fdatasync
    /// of `syncLog`. A refused write that left the log sound (ENOSPC, cut back) is only an
    /// append's failure.
    func failIfPoisoned(_ error: any Error, _ what: String) {
        if case LogError.failed = error { fail("\(what): the log refuses writes: \(error)") }
    }

    func cut(_ result: Result<Void, any Error>, _ log: NodeLog, _ what: String) {
        recent.removeAll()
        switch result {
        case .success: feed { $0.logCut(log: log, now: $1) }
        // The machine has no event for a failed cut, and the log is failed then: stop here.
        case .failure(let error): fail("\(what) failed: \(error)")
        }
    }

    /// Sends stored batches from `from`: from memory when this node just appended them, else
    /// read in the log's line of operations; never past the log end the machine knows.
    func ship(to peer: NodeID, on connection: ConnectionID?, _ machineConnection: ConnectionID, from: UInt64,
                      maxBytes: Int, epoch: UInt64, commitOffset: UInt64) {
        guard connection != nil, mesh.connection(to: peer) == connection, let logWork else { return }
        // Backpressure: a follower that does not read costs no more than its connection's buffer.
        guard mesh.isWritable(peer) else {
            deferredShips[peer] = { [self] in
                ship(to: peer, on: connection, machineConnection, from: from, maxBytes: maxBytes, epoch: epoch, commitOffset: commitOffset)
            }
            return
        }
        let limit = machine.log.nextOffset
        let send = { [self] (read: ShipRead) in
            guard mesh.connection(to: peer) == connection else { return }
            if read.batchCount > 0 {
                mesh.send(read, epoch: epoch, commitOffset: commitOffset, to: peer, on: connection)
            }
            feed { $0.shipped(machineConnection, nextOffset: read.nextOffset, bytes: read.bytes, now: $1) }
        }
        let allocator = ByteBufferAllocator()
        if let read = recent.read(from: from, maxBytes: maxBytes, below: limit, allocator: allocator) { return send(read) }
        logWork.enqueue({ log in try ShipReader(log: log, allocator: allocator).read(from: from, maxBytes: maxBytes, below: limit) }) { [self] result, _ in
            guard !halted else { return }
            switch result {
            case .success(let read):
                send(read)
            case .failure(let error):
                // Retention removed `from` (or the log failed): the follower starts over on a new connection.
                guard mesh.connection(to: peer) == connection else { return }
                mesh.disconnect(peer, reason: .localFailure, message: "reading offsets from \(from) to ship to \(peer): \(error)")
                feed { $0.peerDisconnected(peer, now: $1) }
            }
        }
    }
}
