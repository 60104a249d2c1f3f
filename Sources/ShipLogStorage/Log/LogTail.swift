/// Stored batches from an offset on, waiting for new appends at the end: the stream a
/// primary ships to its followers. Ends when the log closes or the task is cancelled; throws
/// `LogError.truncated` when a truncate removes records it delivered or the offset it waits at.
public struct LogTail: AsyncSequence, Sendable {
    public typealias Element = StoredBatch
    let log: SegmentLog
    let startOffset: UInt64

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Failure = any Error
        var cursor: BatchCursor

        /// Runs on the caller's actor (the main actor, say) without hopping to the global
        /// executor per element: reading a batch is short, and waiting suspends.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> StoredBatch? {
            while true {
                if Task.isCancelled { return nil }
                let batch: StoredBatch?
                do {
                    batch = try cursor.next(flushing: false)
                } catch LogError.closed {
                    return nil  // ends at close
                } catch is NeedsFlush {
                    do { try await cursor.log.flush() } catch LogError.closed { return nil }
                    continue
                }
                if let batch { return batch }
                let open = await cursor.log.waitForAppend(beyond: cursor.nextOffset, isolation: actor)
                if !open { return nil }
            }
        }

        public mutating func next() async throws -> StoredBatch? {
            try await next(isolation: nil)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(cursor: log.batches(from: startOffset, bufferBytes: 256 << 10))
    }
}

extension SegmentLog {
    /// Batches from the one holding `offset`, then each new batch as it is appended.
    public func tail(from offset: UInt64) -> LogTail {
        LogTail(log: self, startOffset: offset)
    }

    /// Suspends until the log holds an offset at or past `offset`; false once it is closed.
    func waitForAppend(beyond offset: UInt64, isolation actor: isolated (any Actor)? = #isolation) async -> Bool {
        let id = state.withLock { state -> Int in
            state.nextTailWaiterID += 1
            return state.nextTailWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.isClosed || state.nextOffset > offset || Task.isCancelled { return true }
                    state.tailWaiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            return state.withLock { !$0.isClosed }
        } onCancel: {
            let waiter = state.withLock { $0.tailWaiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
