import Foundation
import Testing
@testable import ShipLogStorage

/// Readers notice damage between batches as well as inside them: segments that do not join
/// up, and a batch whose checksum matches but whose records do not. They deliver the records
/// before it, then exit 1, the code for damage, whoever found it (the tool or the library).
extension ToolTests {
    /// What an interrupted repair used to leave (issue 8): the kept prefix, a missing
    /// segment, and the newest ones.
    @Test func dumpAndReplayStopAtAHoleBetweenSegments() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let records = try makeLog(dir)
        let names = segmentFiles(dir.logPath)
        let gone = Int(Format.baseOffset(ofSegmentName: names[2])!)
        let resumes = Int(Format.baseOffset(ofSegmentName: names[3])!)
        try FileManager.default.removeItem(atPath: dir.logPath + "/" + names[2])
        try FileManager.default.removeItem(atPath: dir.logPath + "/" + Format.indexName(baseOffset: UInt64(gone)))

        let dump = try shiplog("dump", dir.logPath)
        #expect(dump.status == 1)
        let lines = dump.output.split(separator: "\n")
        #expect(lines.count == gone, "every record before the hole, and none after it")
        let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any] ?? [:]
        #expect(last["offset"] as? Int == gone - 1)
        #expect(dump.errors.contains("a hole") && dump.errors.contains("offsets \(gone)...\(resumes - 1) are missing"), "\(dump.errors)")
        let replay = try shiplog("replay", dir.logPath, "--exec", "wc -l")
        #expect(replay.status == 1 && replay.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(gone)", "\(replay.errors)")
        #expect(replay.errors.contains("a hole"))
        let frames = dir.path + "/frames"
        #expect(try shiplog("replay", dir.logPath, "--frames", "--exec", "cat > '\(frames)'").status == 1)
        #expect(fileBytes(frames).count == records[..<gone].reduce(0) { $0 + 4 + $1.count })
        // Around the hole, as asked: it is not in the way; into it, it is.
        #expect(try shiplog("dump", dir.logPath, "--from", "\(resumes)").status == 0)
        #expect(try shiplog("dump", dir.logPath, "--to", "\(gone - 1)").status == 0)
        let into = try shiplog("dump", dir.logPath, "--to", "\(gone + 1)")
        #expect(into.status == 1 && into.output.split(separator: "\n").count == gone && into.errors.contains("a hole"), "\(into.errors)")
        let verify = try shiplog("verify", dir.logPath)
        #expect(verify.status == 1 && verify.output.contains("a hole"), "\(verify.output)")
    }

    /// A batch whose checksum is right but whose header claims one record more than its
    /// section holds (as a writer's bug could make): the library's decoder finds it.
    @Test func damageTheLibraryFindsExitsOneInEveryReader() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = try makeLog(dir)
        let last = dir.logPath + "/" + segmentFiles(dir.logPath).last!
        let position = Int(try batchScan(last).positions.last!)
        var bytes = fileBytes(last)
        bytes.withUnsafeMutableBytes { raw in
            let batch = UnsafeMutableRawBufferPointer(rebasing: raw[position...])
            let count = UnsafeRawBufferPointer(batch).getLittleEndian(at: 12, as: UInt32.self)
            batch.setLittleEndian(count + 1, at: 12)
            let stored = Int(UnsafeRawBufferPointer(batch).getLittleEndian(at: 44, as: UInt32.self))
            let crc = BatchHeader.checksum(header: UnsafeRawBufferPointer(batch),
                                           payload: UnsafeRawBufferPointer(rebasing: batch[Format.batchHeaderBytes..<(Format.batchHeaderBytes + stored)]))
            batch.setLittleEndian(crc, at: 4)
        }
        writeFileBytes(last, bytes)

        let dump = try shiplog("dump", dir.logPath)
        #expect(dump.status == 1, "\(dump.errors)")
        #expect(dump.output.split(separator: "\n").count == 297)
        #expect(dump.errors.contains("record framing"), "\(dump.errors)")
        let replay = try shiplog("replay", dir.logPath, "--exec", "wc -l")
        #expect(replay.status == 1 && replay.output.trimmingCharacters(in: .whitespacesAndNewlines) == "297", "\(replay.errors)")
        let verify = try shiplog("verify", dir.logPath, "--json")
        #expect(verify.status == 1, "verify decodes the records dump would stop at: \(verify.output)")
        let problem = (try json(verify)["problems"] as? [[String: Any]])?.first
        #expect(problem?["position"] as? Int == position && problem?["offset"] as? Int == 297)
        #expect(try shiplog("stats", dir.logPath).status == 1)
    }
}
