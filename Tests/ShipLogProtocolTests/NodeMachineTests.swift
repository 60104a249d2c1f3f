import ShipLogStorage
import Testing
@testable import ShipLogProtocol

/// The composite node machine's cross-cutting decisions, one event at a time.
@Suite struct NodeMachineTests {
    static func configuration(_ adjust: (inout ReplicationConfiguration) -> Void = { _ in }) -> NodeMachineConfiguration {
        var replication = ReplicationConfiguration()
        adjust(&replication)
        return NodeMachineConfiguration(
            election: ElectionConfiguration(voters: [NodeID(1), NodeID(2), NodeID(3)],
                                            heartbeatInterval: .milliseconds(50), electionTimeout: .milliseconds(300)),
            replication: replication)
    }

    static func machine(_ id: UInt64, _ configuration: NodeMachineConfiguration = configuration()) -> NodeMachine {
        var machine = try! NodeMachine(configuration: configuration, nodeID: NodeID(id), durable: .initial, log: .empty,
                                       seed: id, now: .zero)
        _ = machine.start(now: .zero)
        for peer in [1, 2, 3] where peer != id { _ = machine.peerConnected(NodeID(UInt64(peer)), now: .zero) }
        return machine
    }

    static func frame(_ message: ElectionMessage) -> Frame { .election(ElectionMessageCodec.encode(message)) }

    /// Sent election messages of a batch, decoded.
    static func sent(_ actions: [NodeMachine.Action]) -> [(ElectionMessage, NodeID)] {
        actions.compactMap { action in
            guard case .send(.election(let bytes), let to) = action else { return nil }
            return (try! ElectionMessageCodec.decode(bytes), to)
        }
    }

    /// Drives node 1 through pre-vote and vote with node 2 granting both; returns the machine
    /// (primary) and the actions of the winning event.
    static func elected(_ configuration: NodeMachineConfiguration = configuration()) -> (NodeMachine, [NodeMachine.Action]) {
        var node = machine(1, configuration)
        var now = Duration.zero
        var winning: [NodeMachine.Action] = []
        func note(_ actions: [NodeMachine.Action]) -> [NodeMachine.Action] {
            if winning.isEmpty, actions.contains(where: { if case .roleChanged(let c) = $0 { c.role == .primary } else { false } }) {
                winning = actions
            }
            return actions
        }
        for _ in 0..<400 where node.role.role != .primary {
            now += .milliseconds(5)
            let ticked = note(node.tick(now: now))
            for (message, to) in sent(ticked) where to == NodeID(2) {
                guard case .voteRequest(let request) = message else { continue }
                let answered = note(node.received(frame(.voteResponse(.init(epoch: request.epoch, granted: true,
                                                                            preVote: request.preVote, reason: .granted,
                                                                            primary: nil))),
                                                  from: NodeID(2), now: now))
                for (again, _) in sent(answered) {
                    guard case .voteRequest(let vote) = again, !vote.preVote else { continue }
                    _ = note(node.received(frame(.voteResponse(.init(epoch: vote.epoch, granted: true, preVote: false,
                                                                     reason: .granted, primary: nil))),
                                           from: NodeID(2), now: now))
                }
            }
        }
        let actions = winning
        return (node, actions)
    }

    @Test func appendOnAFollowerFailsAtOnceNamingThePrimary() {
        var node = Self.machine(2)
        _ = node.received(Self.frame(.heartbeat(.init(epoch: 1, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: []))),
                          from: NodeID(1), now: .milliseconds(1))
        #expect(node.role == NodeRoleChange(role: .follower, epoch: 1, primary: NodeID(1)))
        let actions = node.append(AppendID(7), mode: .sync(quorum: 1), now: .milliseconds(2))
        #expect(actions == [.fail(AppendID(7), .notPrimary(primary: NodeID(1)))])
    }

    @Test func aVoteIsPersistedBeforeAnythingElseOfItsBatch() {
        var node = Self.machine(2)
        let request = ElectionMessage.voteRequest(.init(epoch: 1, logEnd: LogEnd(nextOffset: 0, lastEpoch: nil), preVote: false))
        let actions = node.received(Self.frame(request), from: NodeID(1), now: .milliseconds(400))
        #expect(actions.first == .persist(ElectionDurableState(epoch: 1, votedFor: NodeID(1))))
        #expect(actions.filter { if case .persist = $0 { true } else { false } }.count == 1)
        #expect(Self.sent(actions).contains { message, to in
            if case .voteResponse(let response) = message { response.granted && to == NodeID(1) } else { false }
        })
    }

    @Test func theElectedNodeAppendsInItsEpochAndStepDownFailsWaitingAppends() {
        let (elected, winning) = Self.elected(Self.configuration { $0.minSyncFollowersTimeout = .seconds(5) })
        var node = elected
        let epoch = node.epoch
        #expect(winning.contains(.roleChanged(NodeRoleChange(role: .primary, epoch: epoch, primary: NodeID(1)))))
        let now = Duration.seconds(2)
        #expect(node.append(AppendID(1), mode: .sync(quorum: 1), now: now) == [.writeAppend(AppendID(1), epoch: epoch, sync: false)])
        var epochs = EpochHistory()
        epochs.record(epoch: epoch, startOffset: 0)
        let log = NodeLog(firstOffset: 0, nextOffset: 2, epochs: epochs, durableNextOffset: 0)
        let waiting = node.appendWritten(AppendID(1), through: 2, log: log, now: now)
        #expect(!waiting.contains { if case .acknowledge = $0 { true } else if case .fail = $0 { true } else { false } })
        // A heartbeat of a newer epoch from node 3: step down, the waiting append fails naming it.
        let deposed = node.received(Self.frame(.heartbeat(.init(epoch: epoch + 1, commit: LogEnd(nextOffset: 0, lastEpoch: nil),
                                                                ranking: []))),
                                    from: NodeID(3), now: now)
        #expect(deposed.first == .persist(ElectionDurableState(epoch: epoch + 1, votedFor: nil)))
        #expect(deposed.contains(.fail(AppendID(1), .notPrimary(primary: NodeID(3)))))
        #expect(node.role == NodeRoleChange(role: .follower, epoch: epoch + 1, primary: NodeID(3)))
        #expect(node.append(AppendID(2), mode: .async, now: now) == [.fail(AppendID(2), .notPrimary(primary: NodeID(3)))])
    }

    @Test func anAppendWrittenAfterItsEpochEndedFails() {
        var (node, _) = Self.elected()
        let epoch = node.epoch
        _ = node.append(AppendID(1), mode: .async, now: .seconds(2))
        _ = node.received(Self.frame(.heartbeat(.init(epoch: epoch + 1, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: []))),
                          from: NodeID(3), now: .seconds(2))
        var epochs = EpochHistory()
        epochs.record(epoch: epoch, startOffset: 0)
        let actions = node.appendWritten(AppendID(1), through: 1, log: NodeLog(firstOffset: 0, nextOffset: 1, epochs: epochs,
                                                                              durableNextOffset: 0), now: .seconds(2))
        #expect(actions.contains(.fail(AppendID(1), .notPrimary(primary: NodeID(3)))))
        #expect(!actions.contains(.acknowledge(AppendID(1))))
    }
}
