import Foundation
import ShipLogNode
import ShipLogProtocol
import ShipLogStorage
import Testing

/// Node.start refuses settings that cannot work, naming both values, before opening anything.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ConfigurationCheckTests {
    func startError(_ configure: (inout NodeConfiguration) -> Void) async throws -> NodeError? {
        let directory = try TemporaryDirectory()
        var configuration = NodeConfiguration(id: NodeID(1), logDirectory: directory.sub("1"), clusterKey: testKey, role: .primary)
        configure(&configuration)
        let node = Node(configuration: configuration)
        do {
            try await node.start()
            try await node.stop()
            return nil
        } catch let error as NodeError {
            return error
        }
    }

    @Test func aBatchLargerThanAFrameCanCarryIsRefused() async throws {
        let error = try await startError { $0.replication.maxFrameBytes = 1 << 20; $0.logOptions.maxBatchBytes = 1 << 20 }
        guard case .invalidConfiguration(let message)? = error else { Issue.record("started: \(String(describing: error))"); return }
        #expect(message.contains("\(1 << 20)") && message.contains("maxFrameBytes"))
    }

    @Test func aPrimaryTimeoutNotAboveTheHeartbeatIntervalIsRefused() async throws {
        let error = try await startError { $0.replication.primaryTimeout = .milliseconds(100) }
        guard case .invalidConfiguration(let message)? = error else { Issue.record("started: \(String(describing: error))"); return }
        #expect(message.contains("primaryTimeout"))
    }

    @Test func theDefaultsStart() async throws {
        #expect(try await startError { _ in } == nil)
    }
}
