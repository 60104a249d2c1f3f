import Foundation
@testable import ShipLogStorage

/// Looking inside segment files, for tests that damage them at a chosen batch.
extension ToolTests {
    /// Where each intact batch of a segment file starts, and where they end.
    func batchScan(_ path: String) throws -> (positions: [Int64], end: Int64) {
        var scanner = try SegmentScanner(file: PosixFileSystem().openFileForReading(path), from: Int64(Format.segmentHeaderBytes))
        var positions: [Int64] = []
        while true {
            switch try scanner.next() {
            case .batch(_, let position): positions.append(position)
            case .end(let position), .invalid(let position, _): return (positions, position)
            }
        }
    }

    /// Parses `--json` output.
    func json(_ run: Run) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any] ?? [:]
    }
}
