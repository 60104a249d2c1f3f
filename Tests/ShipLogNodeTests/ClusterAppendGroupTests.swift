import Foundation
@testable import ShipLogNode
import ShipLogStorage
import Testing

/// The cluster path's group commit (`ClusterAppendGroup`): members written in order, one
/// fdatasync for all, and a failed fdatasync failing every member.
struct ClusterAppendGroupTests {
    /// A log already holding offset 0 in epoch 1, so the members' writes start no segment and
    /// no epoch (each of which has fsyncs of its own).
    func openLog(_ directory: TemporaryDirectory, _ fileSystem: Review10FaultyFileSystem) throws -> SegmentLog {
        var options = LogOptions()
        options.fileSystem = fileSystem
        let log = try SegmentLog.open(directory: directory.sub("log"), options: options)
        try log.append([Array("first".utf8)], epoch: 1, durability: .fsync)
        return log
    }

    func member(_ tag: String, epoch: UInt64 = 1, sync: Bool) -> ClusterAppendGroup.Member {
        ClusterAppendGroup.Member(records: [Array(tag.utf8)], epoch: epoch, sync: sync)
    }

    @Test func membersAreWrittenInOrderWithOneFdatasyncAndTheirBatchesKept() throws {
        let directory = try TemporaryDirectory()
        let fileSystem = Review10FaultyFileSystem()
        let log = try openLog(directory, fileSystem)
        defer { try? log.close() }
        let group = ClusterAppendGroup()
        for i in 0..<8 { #expect(group.join(member("record \(i)", sync: i % 2 == 0)) == i) }
        let syncsBefore = fileSystem.syncs.withLock { $0 }
        let outcomes = ClusterAppendGroup.write(group.take(), to: log)
        #expect(fileSystem.syncs.withLock { $0 } - syncsBefore == 1)
        #expect(group.join(member("late", sync: false)) == nil, "a started group takes no more members")
        #expect(outcomes.count == 8)
        for (i, outcome) in outcomes.enumerated() {
            let written = try outcome.get()
            #expect(written.offsets == UInt64(i + 1)..<UInt64(i + 2))
            let stored = try #require(written.stored)
            #expect(try StoredBatch(bytes: stored).header.firstOffset == UInt64(i + 1))
        }
        #expect(log.durableNextOffset == 9)
        #expect(try log.record(at: 6).bytes == Array("record 5".utf8))
    }

    /// The log cuts itself back to its durable end, so even a member that asked for no sync is gone.
    @Test func aFailedFdatasyncFailsEveryMember() throws {
        let directory = try TemporaryDirectory()
        let fileSystem = Review10FaultyFileSystem()
        let log = try openLog(directory, fileSystem)
        defer { try? log.close() }
        let group = ClusterAppendGroup()
        _ = group.join(member("os before", sync: false))
        _ = group.join(member("synced", sync: true))
        _ = group.join(member("os after", sync: false))
        fileSystem.failSyncs.withLock { $0 = true }
        let outcomes = ClusterAppendGroup.write(group.take(), to: log)
        for outcome in outcomes { #expect(throws: (any Error).self) { try outcome.get() } }
        #expect(log.durableNextOffset == 1)
        #expect(log.nextOffset == 1, "the log keeps only what was durable")
        #expect(throws: (any Error).self, "the log refuses writes after a failed fdatasync") {
            try log.append([Array("next".utf8)], epoch: 1, durability: .os)
        }
    }

    @Test func aGroupWithoutSyncedMembersDoesNotFdatasync() throws {
        let directory = try TemporaryDirectory()
        let fileSystem = Review10FaultyFileSystem()
        let log = try openLog(directory, fileSystem)
        defer { try? log.close() }
        let group = ClusterAppendGroup()
        _ = group.join(member("a", sync: false))
        _ = group.join(member("b", sync: false))
        let syncsBefore = fileSystem.syncs.withLock { $0 }
        let outcomes = ClusterAppendGroup.write(group.take(), to: log)
        #expect(fileSystem.syncs.withLock { $0 } == syncsBefore)
        #expect(try outcomes.map { try $0.get().offsets } == [1..<2, 2..<3])
        #expect(log.durableNextOffset == 1)
    }
}
