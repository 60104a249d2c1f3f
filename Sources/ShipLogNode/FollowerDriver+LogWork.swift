import Logging
import NIOCore
import NIOPosix
import ShipLogProtocol
import ShipLogStorage

/// The follower's log work: appends, truncations and resets run one after another on the
/// thread pool (or a task) in the order the machine asked, an fdatasync beside them, and each
/// result comes back to the machine as an event on the loop. Reading from the primary pauses
/// while too many received bytes wait for the log (`FollowerReadPause`).
extension FollowerDriver {
    func truncated(_ result: Result<LogEnd, any Error>, what: String) {
        switch result {
        case .success(let end):
            feed { $0.truncated(logEnd: end, now: $1) }
        case .failure(let error):
            // The machine has no event for a failed cut (the log is failed then, see
            // SegmentLog.truncate): stop replicating into it and say why.
            localFailure("\(what) failed: \(error)")
        }
    }

    /// A log operation failed in a way the machine has no event for: replication into this log
    /// stops (the machine still waits for that operation), the connection closes with the reason.
    func localFailure(_ message: String) {
        logger.error("replication stopped: \(message)", metadata: ["primary": "\(primaryID)"])
        failedLocally = true
        guard let primary else { return }
        metrics.closedConnection(reason: .localFailure)
        primary.channel.writeAndFlush(Frame.goodbye(.init(reason: .localFailure, message: message)), promise: nil)
        primary.channel.close(promise: nil)
    }

    func startSync() {
        guard !syncing else { return }
        syncing = true
        // On the pool for the same reason as appends (see enqueueAppend).
        pool.runIfActive(eventLoop: loop) { [log] in
            try log.sync()
            return log.durableNextOffset
        }.whenComplete { [self] result in
            syncing = false
            guard !stopped else { return }
            switch result {
            case .success(let durable): feed { $0.synced(durableNextOffset: durable, now: $1) }
            case .failure(let error): localFailure("fdatasync of the log: \(error)")
            }
        }
    }

    /// Queues one log write for the pending batches, taken when it starts: appends that arrive
    /// while earlier log work runs share one trip to a task and back instead of one each.
    func enqueueAppend() {
        let loop = self.loop
        logWorkInFlight += 1
        let result = logWork.flatMap { [self] () -> EventLoopFuture<(Result<LogEnd, any Error>, Int)> in
            let (batches, count) = (pendingBatches, pendingAppends)
            (pendingBatches, pendingAppends) = ([], 0)
            // Reading goes on: the next frames are received while this write runs.
            if readPause.taken(), let primary { primary.channel.setReading(true) }
            // The blocking append on the thread pool, not the async one in a task: handing work
            // to a pool thread and back costs a few µs here, a task woken from the event loop
            // tens of µs (Swift's global executor on Linux), on every batch a sync append waits for.
            return pool.runIfActive(eventLoop: loop) { [log] in
                do {
                    // One write for all of them (a roll still goes between two writes). The
                    // machine checked each CRC (`StoredBatch` remembers it): not checked again.
                    _ = try log.append(storedBatches: batches, durability: .os)
                    return (.success(Self.logEnd(log)), count)
                } catch {
                    return (.failure(error), count)
                }
            }.recover { error in (.failure(error), count) }  // the pool is shut down: each append fails
        }
        result.whenComplete { [self] _ in logWorkInFlight -= 1 }
        result.whenSuccess { [self] outcome, count in
            guard !stopped else { return }
            for _ in 0..<count {
                switch outcome {
                case .success(let end): feed { $0.appended(logEnd: end, now: $1) }
                case .failure(let error): feed { $0.appendFailed("appending batches from \(self.primaryID): \(error)", now: $1) }
                }
            }
        }
        logWork = result.map { _ in }.recover { _ in }
    }

    /// Runs `work` after every log write queued before it, then `then` on the loop.
    func enqueueLogWork<T: Sendable>(_ work: @escaping @Sendable () async throws -> T,
                                             then: @escaping @Sendable (Result<T, any Error>) -> Void) {
        let loop = self.loop
        logWorkInFlight += 1
        let result = logWork.flatMap { loop.makeFutureWithTask(work) }
        result.whenComplete { [self] outcome in
            logWorkInFlight -= 1
            guard !stopped else { return }
            then(outcome)
        }
        logWork = result.map { _ in }.recover { _ in }
    }
}
