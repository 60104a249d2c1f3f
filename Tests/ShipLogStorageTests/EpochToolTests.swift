import Foundation
import Testing
@testable import ShipLogStorage

/// `shiplog verify` and `shiplog repair` on the epoch checkpoint (format.md §12).
@Suite struct EpochToolTests {
    func shiplog(_ arguments: String...) throws -> ToolTests.Run {
        try ToolTests.run(ToolTests.toolPath, arguments)
    }

    /// A closed log over several segments: epoch 1 from 0, 2 from 40, 5 from 100.
    func makeLog(_ dir: TemporaryDirectory) throws -> EpochHistory {
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 2048, compression: .none))
        try appendBatches(log, epochs: [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 5, 5])
        let epochs = log.epochHistory
        try log.close()
        #expect(epochs == history([(1, 0), (2, 40), (5, 100)]))
        return epochs
    }

    enum Damage: String, CaseIterable { case missing, corrupted, wrongInTheMiddle }

    @Test(arguments: Damage.allCases)
    func verifyReportsADamagedCheckpointAndRepairRebuildsIt(damage: Damage) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let expected = try makeLog(dir)
        #expect(try shiplog("verify", dir.logPath).status == 0)
        let path = dir.logPath + "/" + Format.epochCheckpointName
        switch damage {
        case .missing: try FileManager.default.removeItem(atPath: path)
        case .corrupted: writeFileBytes(path, Array(fileBytes(path).dropLast(3)))
        case .wrongInTheMiddle: writeFileBytes(path, EpochCheckpoint.encoded(history([(1, 0), (2, 50), (5, 100)])))
        }
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 1, "\(damage): \(verify.output)")
        #expect(verify.output.contains("PROBLEM \(path)"), "\(verify.output)")
        let json = try shiplog("verify", dir.logPath, "--json")
        #expect(json.status == 1)
        #expect(json.output.contains("epoch checkpoint"))
        let dryRun = try shiplog("repair", dir.logPath)
        #expect(dryRun.status == 1)
        #expect(dryRun.output.contains("would rebuild \(path)"), "\(dryRun.output)")
        let repair = try shiplog("repair", dir.logPath, "--apply")
        #expect(repair.status == 0, "\(repair.output) \(repair.errors)")
        #expect(checkpointFile(dir.logPath) == expected)
        #expect(try shiplog("verify", dir.logPath).status == 0)
        // The clean-shutdown marker was kept (no data changed), and open trusts the file.
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 2048, compression: .none))
        #expect(log.recoveryReport.cleanShutdown)
        #expect(log.recoveryReport.epochCheckpoint == .matched)
        #expect(log.epochHistory == expected)
        try log.close()
    }

    /// A checkpoint ahead of the log (a crash after an epoch change whose batch was lost) is
    /// what open reconciles: verify does not call it damage.
    @Test func aCheckpointAheadOfTheLogIsHealthy() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var ahead = try makeLog(dir)
        ahead.record(epoch: 6, startOffset: 120)
        writeFileBytes(dir.logPath + "/" + Format.epochCheckpointName, EpochCheckpoint.encoded(ahead))
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 0, "\(verify.output)")
    }

    /// A repair that cuts a torn tail rewrites the checkpoint for the records it keeps.
    @Test func repairingATornTailRewritesTheCheckpointForWhatIsKept() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let last = dir.logPath + "/" + segmentFiles(dir.logPath).last!
        var bytes = fileBytes(last)
        let cutAt = bytes.count - 5
        bytes[cutAt] ^= 0xFF  // the last batch's payload: a CRC mismatch at the end
        writeFileBytes(last, bytes)
        try FileManager.default.removeItem(atPath: dir.logPath + "/" + Format.cleanMarkerName)
        let repair = try shiplog("repair", dir.logPath, "--apply")
        #expect(repair.status == 0, "\(repair.output) \(repair.errors)")
        let log = try SegmentLog.open(directory: dir.logPath, options: smallOptions(segmentBytes: 2048, compression: .none))
        #expect(log.nextOffset == 110)
        #expect(checkpointFile(dir.logPath) == history([(1, 0), (2, 40), (5, 100)]))
        #expect(log.epochHistory == history([(1, 0), (2, 40), (5, 100)]))
        try log.close()
        #expect(try shiplog("verify", dir.logPath).status == 0)
    }
}
