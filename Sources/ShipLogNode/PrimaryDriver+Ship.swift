import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage

/// Carrying out the machine's `ship`: stored batches read from memory (`RecentBatches`) or off
/// the loop on the thread pool, one read ahead, and sent as one `batches` frame each.
extension PrimaryDriver {
    /// Reads stored batches off the loop and sends them as one `batches` frame, unless the
    /// channel's buffer is full: then the ship waits until it drains (`sessionWritable`), so a
    /// slow follower costs the primary no memory beyond its socket buffer, one frame being
    /// written and one read ahead.
    func startShip(_ connection: ConnectionID, _ ship: Ship) {
        guard let session = sessions[connection] else { return }
        guard session.channel.isWritable else {
            sessions[connection]?.deferredShip = ship
            return
        }
        let limit = reportedNextOffset
        let ahead = session.readAhead
        sessions[connection]?.readAhead = nil
        // A follower that is caught up wants what was just appended: no read, no hop to the pool.
        if let read = recent.read(from: ship.from, maxBytes: ship.maxBytes, below: limit, allocator: session.channel.allocator) {
            if ahead != nil { replaceReader(connection) }
            send(read, of: ship, to: connection, session.channel)
            return
        }
        let read: EventLoopFuture<ShipRead>
        if let ahead, ahead.from == ship.from {
            read = ahead.read
        } else {
            // A read ahead for another offset may still be running on the old reader.
            if ahead != nil { replaceReader(connection) }
            read = readOnPool(connection, from: ship.from, maxBytes: ship.maxBytes, below: limit)
        }
        read.whenComplete { [self] result in
            guard !stopped, let session = sessions[connection] else { return }
            switch result {
            case .success(var read):
                read.trim(toAbout: ship.maxBytes)
                // Most likely the machine asks next for what follows: read it while this is written.
                if read.batchCount > 0, read.nextOffset < reportedNextOffset {
                    let ahead = readOnPool(connection, from: read.nextOffset, maxBytes: ship.maxBytes, below: reportedNextOffset)
                    sessions[connection]?.readAhead = (read.nextOffset, ahead)
                }
                send(read, of: ship, to: connection, session.channel)
            case .failure(let error):
                noteRetained(bytesRemoved: 0)  // a read below the first offset: retention ran
                close(connection, reason: .localFailure, message: "reading offsets from \(ship.from) to ship to \(session.peer): \(error)")
            }
        }
    }

    private func readOnPool(_ connection: ConnectionID, from: UInt64, maxBytes: Int, below limit: UInt64) -> EventLoopFuture<ShipRead> {
        guard let reader = sessions[connection]?.reader else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        return pool.runIfActive(eventLoop: loop) { try reader.read(from: from, maxBytes: maxBytes, below: limit) }
    }

    private func replaceReader(_ connection: ConnectionID) {
        guard let session = sessions[connection] else { return }
        sessions[connection]?.reader = ShipReader(log: log, allocator: session.channel.allocator)
    }

    private func send(_ read: ShipRead, of ship: Ship, to connection: ConnectionID, _ channel: any Channel) {
        if read.batchCount > 0 {
            let (head, batches) = read.frame(epoch: ship.epoch, commitOffset: ship.commitOffset, allocator: channel.allocator)
            channel.writeEncodedFrame(head, batches)
            metrics.bytesShipped.increment(by: Int64(read.bytes))
        }
        reportShipped(connection, nextOffset: read.nextOffset, bytes: read.bytes)
    }
}
