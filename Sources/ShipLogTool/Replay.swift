import ArgumentParser
import CLinuxPipe
import Foundation
import ShipLogStorage

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy valid records into a fresh log (point-in-time restore), or stream them to a program.",
        discussion: """
            --into NEWDIR keeps offsets, epochs and timestamps; --exec 'CMD' writes records to the \
            program's standard input as JSON lines, or with --frames as u32 little-endian length + bytes \
            (format.md §10), decoding on --threads threads and keeping offset order.
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
        if let names = try? FileManager.default.contentsOfDirectory(atPath: into), !names.isEmpty {
            throw ToolFailure.usage("\(into) is not empty; replay writes into a new log only")
        }
        var options = LogOptions()
        options.initialOffset = filter.from ?? inspector.segmentBaseOffsets.first ?? 0
        options.durability = .buffered
        let target = try SegmentLog.open(directory: into, options: options)
        var copied = 0
        var scratch: [UInt8] = []
        do {
            try filter.forEachBatch(inspector, progress: progress) { batch in
                let h = batch.header
                if wanted.contains(h.firstOffset) && wanted.contains(h.lastOffset) {
                    try target.append(storedBatch: batch)
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
                    try target.append(storedBatch: partial)
                }
                copied += 1
                return true
            }
        } catch {
            try target.close()
            throw error
        }
        try target.sync()
        try target.close()
        let held = target.nextOffset > target.firstOffset ? offsetRange(target.firstOffset, target.nextOffset - 1) : "no records"
        let summary = "replayed \(copied) batches into \(into): \(held) (next offset \(target.nextOffset))"
        if common.json {
            printJSON(["into": into, "first_offset": String(target.firstOffset), "next_offset": String(target.nextOffset)])
        } else {
            print(summary)
        }
    }

    private func replay(_ inspector: LogInspector, exec command: String, progress: Progress?) throws {
        let wanted = filter.offsets
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        // A 1 MiB pipe (Linux F_SETPIPE_SZ) instead of 64 KiB: fewer switches between writer and reader.
        _ = fcntl(pipe.fileHandleForWriting.fileDescriptor, shiplog_F_SETPIPE_SZ, Int32(1 << 20))
        process.standardInput = pipe
        try process.run()
        signal(SIGPIPE, SIG_IGN)
        let input = pipe.fileHandleForWriting
        let stream = RecordStream(fd: input.fileDescriptor, destination: "'\(command)'",
                                  encoding: frames ? .frames : .jsonLines, workers: streamOptions.threads)
        do {
            // The program sees the end of its input and is waited for, whatever happened.
            defer {
                try? input.close()
                process.waitUntilExit()
            }
            try stream.deliver {
                let walk = try filter.forEachBatch(inspector, progress: progress) { batch in
                    try stream.submit(batch, wanted: wanted)
                    return true
                }
                try filter.checkOffsetsWereInTheLog(walk)
            }
        }
        guard process.terminationStatus == 0 else {
            throw ToolFailure.damaged("'\(command)' exited with status \(process.terminationStatus)")
        }
    }
}
