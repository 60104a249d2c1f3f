import CAppendFloor
import Foundation
import ShipLogStorage

/// The floor for `append-os-8` (`Benchmarks/CAppendFloor`): the same appends done by the
/// simplest correct C loop, one plain mutex around offset, CRC and pwrite. Measured beside
/// ShipLog in the same rounds, so its own 8-thread/1-thread ratio says what this machine
/// allows when 8 threads make one-record appends at `Durability.os`.
enum AppendOsFloor {
    /// `appends` appends of `pool`'s records from `threads` threads
    /// into a fresh file at `path`, which is checked afterwards to hold exactly those batches,
    /// readable by ShipLog, and then removed. Appends per second and usage per append.
    /// With `priorityInheritance` the loop's mutex is the kind `Synchronization.Mutex` is on
    /// Linux (see `append_floor_run`).
    static func run(threads: Int, appends: Int, pool: [[UInt8]], path: String, priorityInheritance: Bool = false) throws
        -> (rate: Double, usage: UsagePerAppend) {
        let flat = pool.flatMap { $0 }
        let starts = pool.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        let perThread = appends / threads
        var made = 0
        let (seconds, usage) = measureUsage {
            made = flat.withUnsafeBufferPointer { records in
                starts.withUnsafeBufferPointer { starts in
                    append_floor_run(path, Int32(threads), perThread * threads, records.baseAddress, starts.baseAddress,
                                     pool.count, Int64(LogOptions().segmentBytes), priorityInheritance ? 1 : 0)
                }
            }
        }
        defer { unlink(path) }
        guard made == perThread * threads else { throw BenchError.engine("minimal C append loop at \(path): errno \(errno)") }
        try verify(path: path, batches: made)
        return (Double(made) / seconds, UsagePerAppend(usage, appends: made))
    }

    /// Reads the file back through ShipLog's batch parser: `batches` batches of one record,
    /// offsets 0 up, each checksum correct, then zeroes. Proves the loop did the same work.
    private static func verify(path: String, batches: Int) throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var position = 0
        for offset in 0..<batches {
            guard position + Format.batchHeaderBytes <= data.count else { throw BenchError.engine("\(path): ends at batch \(offset)") }
            let stored = Int(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: position + 44, as: UInt32.self) })
            let end = position + Format.batchHeaderBytes + stored
            guard end <= data.count else { throw BenchError.engine("\(path): batch \(offset) runs past the end") }
            let batch = try StoredBatch(bytes: Array(data[position..<end]), file: path, position: Int64(position))
            guard batch.header.firstOffset == UInt64(offset), batch.header.recordCount == 1 else {
                throw BenchError.engine("\(path): batch at byte \(position) has offset \(batch.header.firstOffset), expected \(offset)")
            }
            position = end
        }
        guard data[position..<min(position + Format.batchHeaderBytes, data.count)].allSatisfy({ $0 == 0 }) else {
            throw BenchError.engine("\(path): bytes follow the last batch")
        }
    }
}
