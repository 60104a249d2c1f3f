import ArgumentParser
import Foundation
import ShipLogStorage

/// The `--threads` option of the subcommands that stream records.
struct StreamOptions: ParsableArguments {
    /// Optional, so that --help states the rule rather than this machine's value after it.
    @Option(name: .customLong("threads"), help: "Threads that decode and encode the streamed records (default: one per core, at most 8).")
    var requestedThreads: Int?

    /// One encoding thread per core, up to 8: beyond that the pipe and its reader are the
    /// limit, and each thread holds a few MiB of chunks.
    var threads: Int { requestedThreads ?? min(8, ProcessInfo.processInfo.activeProcessorCount) }

    func validate() throws {
        if !(1...64).contains(threads) { throw ValidationError("--threads must be between 1 and 64") }
    }
}

/// Streams records to a program as JSON lines or frames, decoding and encoding batches on
/// several threads while keeping their order.
///
/// The reading thread groups batches into jobs of about half a MiB of records; workers each
/// take a job, decompress and encode it into their own chunks, and post the regions they
/// wrote; a writer thread sends the jobs' regions to the pipe in job order. Decoding is most
/// of the work, so this is what lets replay go faster than one core decodes.
final class RecordStream: @unchecked Sendable {
    enum Encoding: Sendable { case jsonLines, frames }

    /// A batch and the offsets of it to write.
    private struct Part {
        let batch: StoredBatch
        let wanted: ClosedRange<UInt64>
    }

    private struct Job {
        let number: Int
        let parts: [Part]
    }

    private struct Output {
        var regions: [OutputRegion]
        var error: (any Error)?
    }

    private let encoding: Encoding
    private let sink: PipeSink
    private let pool: ChunkPool
    private let jobSectionBytes = 512 << 10
    private let jobsInFlightMax: Int

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queued: [Job] = []
    private var queuedHead = 0
    private var outputs: [Int: Output] = [:]
    private var dispatched = 0
    private var written = 0
    private var closed = false
    private var workersLeft: Int
    private var writerDone = false
    private var failure: (any Error)?

    // Owned by the reading thread.
    private var pending: [Part] = []
    private var pendingSectionBytes = 0

    /// Writes to `fd` (`destination` names it in errors) with `workers` encoding threads.
    init(fd: Int32, destination: String, encoding: Encoding, workers: Int) {
        precondition(workers >= 1)
        self.encoding = encoding
        sink = PipeSink(fd: fd, destination: destination)
        pool = ChunkPool(hugePages: sink.splicing)
        jobsInFlightMax = 2 * workers + 2
        workersLeft = workers
        for _ in 0..<workers { Thread.detachNewThread { [self] in work() } }
        Thread.detachNewThread { [self] in writeInOrder() }
    }

    /// Bytes written to the reader so far; final once `deliver` returns.
    var deliveredBytes: Int { sink.writtenBytes }

    /// Adds a batch, of which the records in `wanted` are written; throws once the stream has
    /// failed (a write or a decode).
    func submit(_ batch: StoredBatch, wanted: ClosedRange<UInt64>) throws {
        pending.append(Part(batch: batch, wanted: wanted))
        pendingSectionBytes += Int(batch.header.uncompressedBytes)
        if pendingSectionBytes >= jobSectionBytes { try dispatch() }
    }

    /// Runs `feed`, which submits batches, then finishes the stream: everything submitted
    /// before a failure (damage `feed` ran into, or the stream's own) is written before the
    /// first failure is thrown.
    func deliver(_ feed: () throws -> Void) throws {
        var failure: (any Error)?
        do { try feed() } catch { failure = error }
        do { try finish() } catch { failure = failure ?? error }
        if let failure { throw failure }
    }

    /// Sends what is left and waits until everything is written or the stream failed.
    func finish() throws {
        var dispatchFailure: (any Error)?
        do { try dispatch() } catch { dispatchFailure = error }
        condition.lock()
        closed = true
        condition.broadcast()
        while !writerDone || workersLeft > 0 { condition.wait() }
        let failure = self.failure
        condition.unlock()
        pool.drain()
        if let failure = failure ?? dispatchFailure { throw failure }
    }

    private func dispatch() throws {
        guard !pending.isEmpty else { return }
        let job = Job(number: dispatched, parts: pending)
        pending = []
        pendingSectionBytes = 0
        condition.lock()
        defer { condition.unlock() }
        while dispatched - written >= jobsInFlightMax && failure == nil { condition.wait() }
        if let failure { throw failure }
        queued.append(job)
        dispatched += 1
        condition.broadcast()
    }

    // MARK: Workers

    private func work() {
        var writer = ChunkWriter(pool: pool)
        var scratch: [UInt8] = []
        var large: [UInt8] = []
        while true {
            condition.lock()
            while queuedHead == queued.count && !closed { condition.wait() }
            guard queuedHead < queued.count else {
                workersLeft -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = queued[queuedHead]
            queued[queuedHead] = Job(number: -1, parts: [])
            queuedHead += 1
            if queuedHead > 64 && queuedHead * 2 > queued.count {
                queued.removeFirst(queuedHead)
                queuedHead = 0
            }
            let skip = failure != nil
            condition.unlock()

            var error: (any Error)?
            if !skip {
                do {
                    for part in job.parts {
                        try encode(part.batch, wanted: part.wanted, into: &writer, scratch: &scratch, large: &large)
                    }
                } catch let failure {
                    error = failure
                }
            }
            let output = Output(regions: writer.takeRegions(), error: error)
            condition.lock()
            assert(outputs[job.number] == nil && job.number >= written, "each job's output is posted once, before it is written")
            outputs[job.number] = output
            condition.broadcast()
            condition.unlock()
        }
    }

    private func encode(_ batch: StoredBatch, wanted: ClosedRange<UInt64>, into writer: inout ChunkWriter,
                        scratch: inout [UInt8], large: inout [UInt8]) throws {
        let header = batch.header
        switch encoding {
        case .frames where wanted.contains(header.firstOffset) && wanted.contains(header.lastOffset):
            // The record section is already a sequence of frames (format.md §4).
            let sectionBytes = Int(header.uncompressedBytes)
            if sectionBytes <= OutputChunk.bytes {
                let out = try writer.reserve(sectionBytes)
                try batch.decodeRecordSection(into: UnsafeMutableRawBufferPointer(start: out, count: sectionBytes))
                writer.commit(sectionBytes)
            } else {
                try batch.withRecordSection(scratch: &scratch) { try writer.append($0) }
            }
        case .frames:
            try batch.forEachRecord(scratch: &scratch) { offset, bytes in
                guard wanted.contains(offset) else { return }
                try withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { try writer.append($0) }
                try writer.append(bytes)
            }
        case .jsonLines:
            var line = RecordLine(header: header)
            try batch.forEachRecord(scratch: &scratch) { offset, bytes in
                guard wanted.contains(offset) else { return }
                let bound = RecordLine.maximumBytes(payloadBytes: bytes.count)
                if bound <= OutputChunk.bytes {
                    let out = try writer.reserve(bound)
                    writer.commit(line.encode(offset: offset, payload: bytes, into: out))
                } else {
                    large.removeAll(keepingCapacity: true)
                    line.append(offset: offset, payload: bytes, to: &large)
                    try large.withUnsafeBytes { try writer.append($0) }
                }
            }
        }
    }

    // MARK: Writer

    private func writeInOrder() {
        while true {
            condition.lock()
            while outputs[written] == nil && !(closed && written == dispatched) { condition.wait() }
            guard let output = outputs.removeValue(forKey: written) else {
                writerDone = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let failed = failure != nil
            assert(written < dispatched, "only dispatched jobs have outputs")
            condition.unlock()

            var error = output.error
            if !failed {
                do {
                    for region in output.regions { try sink.write(region) }
                } catch let writeError {
                    error = writeError
                }
            }
            if pool.hugePages { pool.prefill(upTo: 2) }
            condition.lock()
            if failure == nil, let error { failure = error }
            written += 1
            condition.broadcast()
            condition.unlock()
        }
    }
}
