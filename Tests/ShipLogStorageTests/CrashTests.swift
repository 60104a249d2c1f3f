import Foundation
import Testing
@testable import ShipLogStorage

/// A child process appends with fsync durability and is killed with SIGKILL at random
/// moments; after each kill, every append it reported as returned must be present byte for
/// byte, and nothing it never wrote may appear.
@Suite struct CrashTests {
    static var writerPath: String {
        // The test bundle and the writer are built into the same directory.
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundle, bundle.deletingLastPathComponent(), bundle.deletingLastPathComponent().deletingLastPathComponent()]
        return candidates.map { $0.appendingPathComponent("ShipLogCrashWriter").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0].appendingPathComponent("ShipLogCrashWriter").path
    }

    @Test func sigkillDuringFsyncAppendsLosesNothingAcknowledged() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let writer = Self.writerPath
        try #require(FileManager.default.isExecutableFile(atPath: writer), "ShipLogCrashWriter not built at \(writer)")
        var acknowledged: Int64 = -1
        var generator = SystemRandomNumberGenerator()
        for round in 0..<8 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: writer)
            process.arguments = [dir.logPath, String(round)]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            try await Task.sleep(for: .milliseconds(Int.random(in: 30...250, using: &generator)))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if let last = printed.split(separator: "\n").last(where: { Int64($0) != nil }).flatMap({ Int64($0) }) {
                acknowledged = max(acknowledged, last)
            }
            var options = LogOptions()
            options.segmentBytes = 256 << 10
            let log = try SegmentLog.open(directory: dir.logPath, options: options)
            #expect(Int64(log.nextOffset) > acknowledged, "round \(round): acknowledged offset \(acknowledged) lost")
            let records = try allRecords(log)
            #expect(records.count == Int(log.nextOffset))
            for (offset, record) in records.enumerated() where record != CrashRecord.bytes(offset: UInt64(offset)) {
                Issue.record("round \(round): offset \(offset) holds bytes that were never written")
                break
            }
        }
        #expect(acknowledged > 0, "the writer made progress")
    }
}
