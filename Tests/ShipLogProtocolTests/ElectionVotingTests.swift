import Testing
import ShipLogProtocol

/// One voter, messages handed to it by hand: the voting rules one at a time.
@Suite struct ElectionVotingTests {
    static let configuration = ElectionConfiguration(voters: [NodeID(1), NodeID(2), NodeID(3)])

    static let start = ElectionDurableState(epoch: 3, votedFor: nil)

    static func voter(_ durable: ElectionDurableState = start, log: LogEnd = LogEnd(nextOffset: 10, lastEpoch: 3)) -> Election {
        var election = try! Election(configuration: configuration, nodeID: NodeID(1), durable: durable, logEnd: log, seed: 7, now: .zero)
        _ = election.start(now: .zero)
        return election
    }

    static func request(_ epoch: UInt64, next: UInt64 = 10, last: UInt64? = 3, preVote: Bool = false) -> ElectionMessage {
        .voteRequest(.init(epoch: epoch, logEnd: LogEnd(nextOffset: next, lastEpoch: last), preVote: preVote))
    }

    static func answer(_ actions: [Election.Action]) -> ElectionMessage.VoteResponse? {
        for case .send(.voteResponse(let response), _) in actions { return response }
        return nil
    }

    static func persists(_ actions: [Election.Action]) -> [ElectionDurableState] {
        actions.compactMap { if case .persist(let state) = $0 { state } else { nil } }
    }

    @Test func oneVotePerEpochWhateverTheOrderAndDuplicates() {
        var voter = Self.voter()
        let first = voter.received(Self.request(5), from: NodeID(2), now: .seconds(2))
        #expect(Self.answer(first)?.granted == true)
        #expect(Self.persists(first) == [ElectionDurableState(epoch: 5, votedFor: NodeID(2))])
        // The persist comes before the answer: the shell makes it durable first.
        #expect(first.firstIndex { if case .persist = $0 { true } else { false } }!
            < first.firstIndex { if case .send = $0 { true } else { false } }!)
        let rival = voter.received(Self.request(5, next: 99), from: NodeID(3), now: .seconds(2))
        #expect(Self.answer(rival) == .init(epoch: 5, granted: false, preVote: false, reason: .alreadyVoted, primary: nil))
        #expect(Self.persists(rival).isEmpty)
        let duplicate = voter.received(Self.request(5), from: NodeID(2), now: .seconds(2))
        #expect(Self.answer(duplicate)?.granted == true, "a repeated request gets the same answer")
        #expect(Self.persists(duplicate).isEmpty)
        // A reordered, older request is stale.
        let old = voter.received(Self.request(4), from: NodeID(3), now: .seconds(2))
        #expect(Self.answer(old)?.reason == .staleEpoch && Self.answer(old)?.epoch == 5)
        // The next epoch is a fresh vote.
        let next = voter.received(Self.request(6), from: NodeID(3), now: .seconds(2))
        #expect(Self.answer(next)?.granted == true && voter.durable == ElectionDurableState(epoch: 6, votedFor: NodeID(3)))
    }

    @Test func votesOnlyForALogAtLeastAsUpToDate() {
        // The voter's log: next offset 10, last epoch 3.
        let cases: [(next: UInt64, last: UInt64?, granted: Bool)] = [
            (100, 2, false),  // longer but from an older epoch
            (9, 3, false),  // same epoch, shorter
            (10, 3, true),  // equal
            (11, 3, true),
            (0, 4, true),  // newer last epoch wins whatever the length
            (5, nil, false),  // no batch at all
        ]
        for (index, c) in cases.enumerated() {
            for preVote in [true, false] {
                var voter = Self.voter()
                let actions = voter.received(Self.request(UInt64(10 + index), next: c.next, last: c.last, preVote: preVote), from: NodeID(2), now: .seconds(2))
                let response = Self.answer(actions)
                #expect(response?.granted == c.granted, "case \(index) preVote \(preVote)")
                if !c.granted { #expect(response?.reason == .logBehind) }
                if preVote { #expect(voter.durable == Self.start, "a pre-vote changes nothing") }
            }
        }
    }

    @Test func olderEpochsAreNeverAcceptedNorGranted() {
        var voter = Self.voter(ElectionDurableState(epoch: 5, votedFor: nil))
        let heartbeat = voter.received(.heartbeat(.init(epoch: 4, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: [])), from: NodeID(2), now: .seconds(1))
        #expect(heartbeat == [.send(.heartbeatResponse(.init(epoch: 5, logEnd: LogEnd(nextOffset: 10, lastEpoch: 3))), to: NodeID(2))])
        #expect(voter.primary == nil)
        #expect(Self.answer(voter.received(Self.request(4), from: NodeID(2), now: .seconds(1)))?.reason == .staleEpoch)
        #expect(Self.answer(voter.received(Self.request(5, preVote: true), from: NodeID(2), now: .seconds(1)))?.reason == .staleEpoch)
        #expect(voter.received(.timeoutNow(.init(epoch: 4)), from: NodeID(2), now: .seconds(1)).isEmpty)
        // A newer epoch is adopted and persisted before the node acts on it.
        let newer = voter.received(.heartbeat(.init(epoch: 8, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: [])), from: NodeID(3), now: .seconds(1))
        guard case .persist(ElectionDurableState(epoch: 8, votedFor: nil)) = newer.first else {
            Issue.record("first action should persist epoch 8: \(newer)")
            return
        }
        #expect(voter.primary == NodeID(3) && voter.epoch == 8)
    }

    @Test func aRestartedVoterRemembersItsVoteThroughTheStateFile() throws {
        var voter = Self.voter()
        let actions = voter.received(Self.request(7), from: NodeID(2), now: .seconds(2))
        let state = try #require(Self.persists(actions).last)
        // Crash: all that survives is the file.
        let file = ElectionStateFile.encode(state)
        var restarted = Self.voter(try ElectionStateFile.decode(file))
        let rival = restarted.received(Self.request(7, next: 50), from: NodeID(3), now: .seconds(3))
        #expect(Self.answer(rival)?.reason == .alreadyVoted)
        let same = restarted.received(Self.request(7), from: NodeID(2), now: .seconds(3))
        #expect(Self.answer(same)?.granted == true)
        #expect(restarted.durable == ElectionDurableState(epoch: 7, votedFor: NodeID(2)))
    }

    @Test func aLogNewerThanTheStateFileCountsItsEpochAsVoted() {
        var election = try! Election(
            configuration: Self.configuration, nodeID: NodeID(1), durable: .initial,
            logEnd: LogEnd(nextOffset: 10, lastEpoch: 4), seed: 1, now: .zero)
        let actions = election.start(now: .zero)
        #expect(actions.first == .persist(ElectionDurableState(epoch: 4, votedFor: NodeID(1))))
        #expect(Self.answer(election.received(Self.request(4), from: NodeID(2), now: .seconds(2)))?.reason == .alreadyVoted)
    }

    @Test func aVoterThatHearsThePrimaryRefusesWithoutAdoptingTheEpoch() {
        var voter = Self.voter()
        _ = voter.received(.heartbeat(.init(epoch: 4, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: [])), from: NodeID(2), now: .milliseconds(1000))
        for preVote in [true, false] {
            let actions = voter.received(Self.request(5, next: 99, preVote: preVote), from: NodeID(3), now: .milliseconds(1150))
            #expect(Self.answer(actions) == .init(epoch: 4, granted: false, preVote: preVote, reason: .primaryAlive, primary: NodeID(2)))
            #expect(voter.epoch == 4)
        }
        // Two heartbeat intervals of silence later, it grants.
        let later = voter.received(Self.request(5, next: 99, preVote: true), from: NodeID(3), now: .milliseconds(1200))
        #expect(Self.answer(later)?.granted == true)
        // A switchover's election waives the lease.
        _ = voter.received(.heartbeat(.init(epoch: 4, commit: LogEnd(nextOffset: 0, lastEpoch: nil), ranking: [])), from: NodeID(2), now: .milliseconds(1300))
        let transfer = voter.received(.voteRequest(.init(epoch: 5, logEnd: LogEnd(nextOffset: 10, lastEpoch: 3), preVote: false, leadershipTransfer: true)), from: NodeID(3), now: .milliseconds(1310))
        #expect(Self.answer(transfer)?.granted == true)
    }

    @Test func messagesFromStrangersAreIgnored() {
        var voter = Self.voter()
        let actions = voter.received(Self.request(9), from: NodeID(42), now: .seconds(1))
        #expect(actions.count == 1 && voter.durable == Self.start)
    }
}
