import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// Which closed connections the election hears of: one that ended unannounced or with a clean
/// shutdown (what a dead or leaving primary looks like), not one whose primary said it stepped
/// down, nor one this node closed itself.
@Suite struct NodeMachineConnectionCloseTests {
    /// Node 2, following node 1 in epoch 1.
    func follower() -> NodeMachine {
        var node = NodeMachineTests.machine(2)
        _ = node.received(NodeMachineTests.frame(.heartbeat(.init(epoch: 1, commit: LogEnd(nextOffset: 0, lastEpoch: nil),
                                                                  ranking: []))),
                          from: NodeID(1), now: .milliseconds(1))
        #expect(node.role == NodeRoleChange(role: .follower, epoch: 1, primary: NodeID(1)))
        return node
    }

    func suspectsSoon(_ actions: [NodeMachine.Action]) -> Bool {
        actions.contains(.log(.election(.primaryConnectionClosed(NodeID(1), epoch: 1))))
    }

    @Test func anUnannouncedCloseOrACleanShutdownIsHeard() {
        var node = follower()
        #expect(suspectsSoon(node.peerDisconnected(NodeID(1), now: .milliseconds(2))))
        // A primary stopping cleanly says so before it closes: heard at the goodbye.
        var leaving = follower()
        #expect(suspectsSoon(leaving.received(.goodbye(.init(reason: .shutdown, message: "stopping")), from: NodeID(1),
                                              now: .milliseconds(2))))
    }

    @Test func aPrimaryThatSaysItSteppedDownIsNotSuspectedEarly() {
        var node = follower()
        _ = node.received(.goodbye(.init(reason: .notPrimary, message: "this node stopped being primary")),
                          from: NodeID(1), now: .milliseconds(2))
        #expect(!suspectsSoon(node.peerDisconnected(NodeID(1), now: .milliseconds(3))))
        // The goodbye belonged to that connection only: the next one's unannounced end is heard.
        _ = node.peerConnected(NodeID(1), now: .milliseconds(4))
        _ = node.received(NodeMachineTests.frame(.heartbeat(.init(epoch: 1, commit: LogEnd(nextOffset: 0, lastEpoch: nil),
                                                                  ranking: []))),
                          from: NodeID(1), now: .milliseconds(5))
        #expect(suspectsSoon(node.peerDisconnected(NodeID(1), now: .milliseconds(6))))
    }

    @Test func aConnectionThisNodeClosedItselfIsNotHeard() {
        var node = follower()
        let closing = node.received(.election([0xFF, 0xFF]), from: NodeID(1), now: .milliseconds(2))
        #expect(closing.contains { if case .disconnect(NodeID(1), .malformedFrame, _) = $0 { true } else { false } })
        // The shell reports the close it carried out.
        #expect(!suspectsSoon(node.peerDisconnected(NodeID(1), now: .milliseconds(3))))
    }
}
