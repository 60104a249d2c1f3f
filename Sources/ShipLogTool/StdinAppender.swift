import Foundation
import ShipLogNode
import ShipLogProtocol

/// `serve --stdin-appends MODE` (hidden, for tests and benchmarks that run the primary as a
/// process): each line of standard input becomes one record, appended in order and waited for
/// with `mode`; each is answered on standard output with "ack FIRST END" (offsets FIRST..<END)
/// or "error MESSAGE". The reader runs on a thread of its own, since reading blocks. The end of
/// standard input means the process that feeds it is gone (it exited, or crashed): the node
/// then stops as on SIGTERM, so a test that died mid-run leaves no node running behind it.
enum StdinAppender {
    static func start(node: Node, mode: ReplicationMode) {
        let thread = Thread {
            while let line = readLine(strippingNewline: true) {
                let record = Array(line.utf8)
                let answer = (try? runBlocking { () async -> String in
                    do {
                        let offsets = try await node.append([record], mode: mode)
                        return "ack \(offsets.lowerBound) \(offsets.upperBound)\n"
                    } catch {
                        return "error \(error)\n"
                    }
                }) ?? "error\n"
                FileHandle.standardOutput.write(Data(answer.utf8))
            }
            kill(getpid(), SIGTERM)
        }
        thread.start()
    }
}
