import ArgumentParser
import Foundation
import ShipLogStorage

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy valid records into a fresh log (point-in-time restore), or stream them to a program.",
        discussion: """
            --into NEWDIR keeps offsets, epochs and timestamps; the copy is built as .NEWDIR.partial \
            beside it and renamed to NEWDIR only when complete, so NEWDIR never holds part of a copy. \
            With --since it starts at the first batch written at or after that time and keeps every \
            batch from there on (a log has no holes). \
            --exec 'CMD' writes records to the program's standard input as JSON lines, or with --frames \
            as u32 little-endian length + bytes (format.md §10), decoding on --threads threads and \
            keeping offset order; if the program fails, shiplog exits 3 and reports its status.
            Examples: shiplog replay /var/lib/app/log --into /tmp/restored --until 2026-11-26T03:00:00Z
                      shiplog replay /var/lib/app/log --exec 'wc -l'
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var filter: RecordFilter

    @Option(help: "A new log directory to copy into (must not exist, or be empty).")
    var into: String?

    @Option(help: "A shell command that reads the records on its standard input.")
    var exec: String?

    @Flag(help: "With --exec: length-prefixed frames instead of JSON lines.")
    var frames = false

    @OptionGroup var streamOptions: StreamOptions

    func validate() throws {
        if (into == nil) == (exec == nil) { throw ValidationError("give exactly one of --into and --exec") }
    }

    func run() throws {
        let inspector = try common.inspector()
        let progress = Progress.make(label: "replay", totalBytes: totalSegmentBytes(inspector), quiet: common.quiet)
        defer { progress?.finish() }
        if let into { try replay(inspector, into: into, progress: progress) } else { try replay(inspector, exec: exec!, progress: progress) }
    }

    private func replay(_ inspector: LogInspector, into: String, progress: Progress?) throws {
        let wanted = filter.offsets
        let target = try ReplayTarget(destination: into)
        // --since selects where the copy starts, not batches here and there: a batch with an
        // older timestamp after it (clocks step back) is kept, or the copy would have a hole.
        let sinceMs = try filter.milliseconds(filter.since, "--since")
        var scan = filter
        scan.since = nil
        var started = sinceMs == nil
        var scratch: [UInt8] = []
        var damage: ToolFailure?
        do {
            do {
                try scan.forEachBatch(inspector, progress: progress) { batch in
                    let h = batch.header
                    if !started, let sinceMs, h.timestampMs < sinceMs { return true }
                    started = true
                    if wanted.contains(h.firstOffset) && wanted.contains(h.lastOffset) {
                        try target.append(batch)
                    } else {
                        // The batch straddles the range: keep its wanted records under the same offsets.
                        var kept: [[UInt8]] = []
                        var first: UInt64?
                        try batch.forEachRecord(scratch: &scratch) { offset, bytes in
                            if wanted.contains(offset) { first = first ?? offset; kept.append(Array(bytes)) }
                        }
                        guard let first, !kept.isEmpty else { return true }
                        var partial = StoredBatch(encoding: kept, codec: h.codec == .none ? .none : .lz4)
                        partial.seal(firstOffset: first, leaderEpoch: h.leaderEpoch, timestampMs: h.timestampMs)
                        try target.append(partial)
                    }
                    return true
                }
            } catch let failure as ToolFailure where failure.code == 1 {
                damage = failure  // the source's damage: the valid prefix before it is still a copy worth keeping
            }
            let offsets = try target.complete(emptyAt: filter.from ?? inspector.segmentBaseOffsets.first ?? 0)
            if common.json {
                printJSON(["into": target.destination, "first_offset": String(offsets.lowerBound),
                           "next_offset": String(offsets.upperBound)])
            } else {
                let held = offsets.isEmpty ? "no records" : offsetRange(offsets.lowerBound, offsets.upperBound - 1)
                print("replayed \(target.appendedBatches) batches into \(target.destination): \(held) (next offset \(offsets.upperBound))")
            }
        } catch {
            let left = target.abandon()
            throw ToolFailure.damaged("replay into \(target.destination) failed after \(target.appendedBatches) batches: \(error); \(left)")
        }
        if let damage { throw damage }
    }

    private func replay(_ inspector: LogInspector, exec command: String, progress: Progress?) throws {
        let wanted = filter.offsets
        // A program that stops reading makes our writes fail with EPIPE instead of killing us,
        // so that its exit status can be reported.
        signal(SIGPIPE, SIG_IGN)
        let program = try SpawnedProgram(shellCommand: command, pipeBytes: 1 << 20)
        let stream = RecordStream(fd: program.input, destination: "'\(command)'",
                                  encoding: frames ? .frames : .jsonLines, workers: streamOptions.threads)
        var delivery: (any Error)?
        do {
            try stream.deliver {
                let walk = try filter.forEachBatch(inspector, progress: progress) { batch in
                    try stream.submit(batch, wanted: wanted)
                    return true
                }
                try filter.checkOffsetsWereInTheLog(walk)
            }
        } catch {
            delivery = error
        }
        // The program sees the end of its input and is waited for, whatever happened.
        let end = program.wait()
        let readerClosed = (delivery as? ToolFailure)?.readerClosedInput == true
        let ending = "'\(command)' \(end) after reading \(stream.deliveredBytes) bytes"
        if !end.succeeded {
            // A broken pipe is only the echo of the program's end: report the program.
            guard let delivery, !readerClosed else { throw ToolFailure.programFailed(ending) }
            // Damage or a read error comes first; the program may have failed because of it.
            FileHandle.standardError.write(Data("shiplog: \(ending)\n".utf8))
            throw delivery
        }
        if readerClosed {
            // It chose to stop reading (`head`, say) and says it succeeded: that is its call.
            FileHandle.standardError.write(Data("shiplog: \(ending), before the last record; the rest was not delivered\n".utf8))
            return
        }
        if let delivery { throw delivery }
    }
}
