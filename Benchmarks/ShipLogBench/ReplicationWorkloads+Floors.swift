import Foundation
import Histogram

/// The floors `replicate-sync` is judged beside: `replication-floor` (blocking sockets) and
/// `nio-echo-rtt` (SwiftNIO alone, and with the two writes), measured in the same run.
extension ReplicationWorkloads {
    // MARK: replication-floor

    /// What no replication design beats on this machine (`ReplicationFloor`), and what one
    /// hand-off between threads costs, for the "where the time goes" of `replicate-sync`.
    func floor() throws {
        let root = clusterRoot("replication-floor")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (replica, port) = try ReplicationFloor.startReplica(directory: root)
        defer { replica.stop() }
        let plain = try ReplicationFloor.appends(port: port, path: root + "/primary.dat", fsync: false, count: 20_000)
        Glibc.sync()
        let synced = try ReplicationFloor.appends(port: port, path: root + "/primary-fsync.dat", fsync: true, count: 2_000, warmUp: 100)
        let handOff = ReplicationFloor.threadHandOffRoundTrip()
        values["replication-floor-p50"] = Double(plain.valueAtPercentile(50)) / 1000
        values["replication-floor-p99"] = Double(plain.valueAtPercentile(99)) / 1000
        values["replication-floor-fsync-p50"] = Double(synced.valueAtPercentile(50)) / 1000
        let how = "1 KiB: local pwrite, send, replica pwrite, 32 B ack; 2 processes, blocking sockets, TCP_NODELAY, no event loop"
        try report("replication-floor", "p50_latency_us", values["replication-floor-p50"]!, "us", baseline: "loopback-rtt-p50",
                   note: "\(plain.totalCount) appends, \(how)")
        try report("replication-floor", "p99_latency_us", values["replication-floor-p99"]!, "us", baseline: "loopback-rtt-p99",
                   note: "\(plain.totalCount) appends, \(how)")
        try report("replication-floor", "p50_latency_fsync_us", values["replication-floor-fsync-p50"]!, "us",
                   baseline: "raw-fdatasync-p50-plus-rtt",
                   note: "\(synced.totalCount) appends, the same with fdatasync on both sides (the local one while the replica works)")
        let taskHop = try ReplicationFloor.taskToEventLoopRoundTrip()
        try report("replication-floor", "task_to_event_loop_round_trip_us", Double(taskHop.valueAtPercentile(50)) / 1000, "us",
                   note: "p50 of \(taskHop.totalCount): a task runs a closure on NIO's event loop and awaits its promise")
        let append = try ReplicationFloor.asyncAppend(path: root + "/async-append")
        try report("replication-floor", "async_append_p50_us", Double(append.valueAtPercentile(50)) / 1000, "us",
                   note: "p50 of \(append.totalCount): one 1 KiB record through SegmentLog's async append from a task, LZ4, os")
        try report("replication-floor", "thread_handoff_round_trip_us", Double(handOff.valueAtPercentile(50)) / 1000, "us",
                   note: "p50 of \(handOff.totalCount): one thread wakes another with a semaphore and is woken back (two hand-offs)")
    }

    // MARK: nio-echo-rtt

    /// The round trip through SwiftNIO on both sides (`NIOEcho`), against the blocking one of
    /// `loopback-rtt`: what the mandated stack costs before any replication work is done.
    func nioEcho() throws {
        let (server, port) = try NIOEcho.startServer()
        defer { server.stop() }
        let trips = try NIOEcho.roundTrips(port: port, requestBytes: NetworkBaselines.requestBytes,
                                           replyBytes: NetworkBaselines.replyBytes, count: 20_000)
        let how = "request 1024 B, reply 32 B, 2 processes, 127.0.0.1, TCP_NODELAY; SwiftNIO server handler on one loop, "
            + "SwiftNIO client channel on the singleton group"
        let micro = { (h: Histogram<UInt64>, p: Double) in Double(h.valueAtPercentile(p)) / 1000 }
        try report("nio-echo-rtt", "p50_latency_us", micro(trips.asyncCaller, 50), "us", baseline: "loopback-rtt-p50",
                   note: "\(trips.asyncCaller.totalCount) trips; a task on the global executor hands the request to the loop "
                       + "and awaits a continuation the loop resumes on the reply; \(how)")
        try report("nio-echo-rtt", "p99_latency_us", micro(trips.asyncCaller, 99), "us", baseline: "loopback-rtt-p99",
                   note: "the same trips")
        try report("nio-echo-rtt", "p50_latency_loop_executor_us", micro(trips.loopExecutor, 50), "us", baseline: "loopback-rtt-p50",
                   note: "\(trips.loopExecutor.totalCount) trips; the same task preferring the loop as executor (EventLoopTaskExecutor)")
        try report("nio-echo-rtt", "p50_latency_loop_to_loop_us", micro(trips.loopToLoop, 50), "us", baseline: "loopback-rtt-p50",
                   note: "\(trips.loopToLoop.totalCount) trips; NIO to NIO: the loop sends the next request from the reply's read")
        try nioReplicationFloor(micro: micro, how: how)
    }

    /// `nio-echo-rtt`'s `p50_latency_with_writes_us`: `replication-floor` on SwiftNIO from a plain
    /// task (a local pwrite, the round trip, the server's pwrite on its loop), the floor of
    /// `replicate-sync`'s p50 on the stack the issue mandates. Kept as `nio-replication-floor-p50`.
    private func nioReplicationFloor(micro: (Histogram<UInt64>, Double) -> Double, how: String) throws {
        let root = clusterRoot("nio-echo-writes")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (server, port) = try NIOEcho.startServer(writeFile: root + "/server.dat")
        defer { server.stop() }
        let (selfBefore, serverBefore) = (ResourceUsage.now().cpuSeconds, server.cpuSeconds)
        let appends = try NIOEcho.appendsWithWrites(port: port, localFile: root + "/client.dat",
                                                    requestBytes: NetworkBaselines.requestBytes,
                                                    replyBytes: NetworkBaselines.replyBytes, count: 20_000)
        values["nio-replication-floor-p50"] = micro(appends, 50)
        if let serverBefore, let serverAfter = server.cpuSeconds {
            let cpu = (ResourceUsage.now().cpuSeconds - selfBefore + serverAfter - serverBefore) * 1e6 / Double(appends.totalCount + 1_000)
            values["nio-replication-floor-cpu-us-per-append"] = cpu
            try report("nio-echo-rtt", "cpu_us_per_append_with_writes", cpu, "us",
                       note: "CPU µs (user + system) of both processes per append of the floor above (its 1,000 warm-up appends included)")
        }
        let note = "\(appends.totalCount) appends from a plain task: pwrite 1 KiB to a local file, then the round trip; "
            + "the server pwrites each request on its loop before answering; \(how)"
        try report("nio-echo-rtt", "p50_latency_with_writes_us", micro(appends, 50), "us", baseline: "loopback-rtt-p50", note: note)
        try report("nio-echo-rtt", "p50_latency_with_writes_us", micro(appends, 50), "us", baseline: "replication-floor-p50",
                   note: "the same appends, against the blocking floor")
        try report("nio-echo-rtt", "p99_latency_with_writes_us", micro(appends, 99), "us", baseline: "loopback-rtt-p99",
                   note: "the same appends")
        let onLoop = try NIOEcho.appendsWithWrites(port: port, localFile: root + "/client-loop.dat",
                                                   requestBytes: NetworkBaselines.requestBytes,
                                                   replyBytes: NetworkBaselines.replyBytes, count: 20_000, onLoopExecutor: true)
        try report("nio-echo-rtt", "p50_latency_with_writes_loop_executor_us", micro(onLoop, 50), "us", baseline: "loopback-rtt-p50",
                   note: "\(onLoop.totalCount) appends; the same from a task preferring the loop as executor")
        let rate = try NIOEcho.concurrentAppendsWithWrites(port: port, localFile: root + "/client-16.dat",
                                                           requestBytes: NetworkBaselines.requestBytes,
                                                           replyBytes: NetworkBaselines.replyBytes,
                                                           writers: Self.writers, perWriter: perWriter)
        values["nio-replication-floor-16-writers"] = rate
        let many = "\(Self.writers) plain tasks × \(perWriter) appends: pwrite 1 KiB to a local file, then the round trip on one "
            + "shared connection (requests reaching the loop together share a flush; replies resume callers in order); "
            + "the server pwrites each read's requests before answering; \(how)"
        try report("nio-echo-rtt", "appends_per_s_16_writers_with_writes", rate, "appends/s", note: many)
        try report("nio-echo-rtt", "appends_per_s_16_writers_with_writes", rate, "appends/s",
                   baseline: "redis-set-wait-16-clients", note: "the same appends, against Redis's 16 clients")
        try nioReplicationFloorWithLog(micro: micro, how: how)
    }

    /// The same floors with the log's append in place of the caller's pwrite, and the server
    /// checking a CRC32C over what it reads before its pwrite (`NIOEcho.LocalLogAppends`): SwiftNIO
    /// plus the work any replicated append on this log does, with no frame and no state machine.
    /// Kept as `nio-replication-floor-with-log-p50` and `-16-writers`, which `replicate-sync`
    /// is judged beside: the part of its time the replication protocol itself is left.
    private func nioReplicationFloorWithLog(micro: (Histogram<UInt64>, Double) -> Double, how: String) throws {
        let root = clusterRoot("nio-echo-log")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (server, port) = try NIOEcho.startServer(writeFile: root + "/server.dat", checksum: true)
        defer { server.stop() }
        let appends = try NIOEcho.appends(port: port, local: try NIOEcho.LocalLogAppends(directory: root + "/log", records: records),
                                          requestBytes: NetworkBaselines.requestBytes, replyBytes: NetworkBaselines.replyBytes,
                                          count: 20_000)
        values["nio-replication-floor-with-log-p50"] = micro(appends, 50)
        let what = "the log's append (one 1 KiB record, LZ4, CRC32C, os) instead of the pwrite, the server's CRC32C over each "
            + "read before its pwrite"
        try report("nio-echo-rtt", "p50_latency_with_log_us", micro(appends, 50), "us", baseline: "loopback-rtt-p50",
                   note: "\(appends.totalCount) appends from a plain task as p50_latency_with_writes_us, with \(what); \(how)")
        // The same from a task on the loop (`Node.appendExecutor`'s way): no hop to the loop
        // and back, the log's append on the loop thread.
        let onLoop = try NIOEcho.appends(port: port, local: try NIOEcho.LocalLogAppends(directory: root + "/log-loop", records: records),
                                         requestBytes: NetworkBaselines.requestBytes, replyBytes: NetworkBaselines.replyBytes,
                                         count: 20_000, onLoopExecutor: true)
        values["nio-replication-floor-with-log-loop-executor-p50"] = micro(onLoop, 50)
        try report("nio-echo-rtt", "p50_latency_with_log_loop_executor_us", micro(onLoop, 50), "us", baseline: "loopback-rtt-p50",
                   note: "\(onLoop.totalCount) appends; the same from a task preferring the loop as executor")
        let (selfBefore, serverBefore) = (ResourceUsage.now().cpuSeconds, server.cpuSeconds)
        let rate = try NIOEcho.concurrentAppends(port: port, local: try NIOEcho.LocalLogAppends(directory: root + "/log-16", records: records),
                                                 requestBytes: NetworkBaselines.requestBytes, replyBytes: NetworkBaselines.replyBytes,
                                                 writers: Self.writers, perWriter: perWriter)
        values["nio-replication-floor-16-writers-with-log"] = rate
        let many = "\(Self.writers) plain tasks × \(perWriter) appends as appends_per_s_16_writers_with_writes, with \(what)"
        try report("nio-echo-rtt", "appends_per_s_16_writers_with_log", rate, "appends/s", baseline: "redis-set-wait-16-clients", note: many)
        if let serverBefore, let serverAfter = server.cpuSeconds {
            let appendsMade = Double(Self.writers * (perWriter + 50))
            let cpu = (ResourceUsage.now().cpuSeconds - selfBefore + serverAfter - serverBefore) * 1e6 / appendsMade
            try report("nio-echo-rtt", "cpu_us_per_append_16_writers_with_log", cpu, "us",
                       note: "CPU µs (user + system) of both processes per append of the 16 writers above (warm-up included)")
        }
    }
}

extension ReplicationWorkloads {
    /// Catch-up's CPU per GiB (both processes) beside the floor's and the TCP stream's of the
    /// same run: on a machine of few cores a copy-bound transfer's rate is about cores / (CPU
    /// seconds per GiB), so this says how far a rate is set by the work per byte, which load
    /// hardly moves, rather than by waiting.
    func reportCatchUpCPU(primary: Double, follower: Double?) throws {
        guard let follower else { return }  // no /proc
        let total = primary + follower
        let split = String(format: "primary %.2f s (the bench's process: the node, and the status polls), follower %.2f s", primary, follower)
        if values["catch-up-floor-cpu-s-per-GiB"] != nil {
            try report("catch-up", "cpu_s_per_GiB", total, "s", baseline: "catch-up-floor-cpu-s-per-GiB",
                       note: "CPU seconds (user + system) of both processes per GiB caught up: " + split)
        }
        if network.value("loopback-tcp-stream-cpu-s-per-GiB") != nil {
            try report("catch-up", "cpu_s_per_GiB", total, "s", baseline: "loopback-tcp-stream-cpu-s-per-GiB", note: split)
        }
    }
}

extension ReplicationWorkloads {
    /// CPU seconds of the primary (this process) and of the follower process while `body` runs.
    func cpuPerAppend<T>(_ cluster: ReplicationCluster, _ body: () throws -> T) throws -> ((primary: Double, follower: Double?), T) {
        let (primaryBefore, followerBefore) = (ResourceUsage.now().cpuSeconds, cluster.follower.cpuSeconds)
        let result = try body()
        let follower = cluster.follower.cpuSeconds.flatMap { after in followerBefore.map { after - $0 } }
        return ((ResourceUsage.now().cpuSeconds - primaryBefore, follower), result)
    }

    /// CPU µs per sync append on each side: with the round trip, what a sync append costs is
    /// the time both processes work on it plus the time they wait for wake-ups and the network.
    func reportCPUPerAppend(_ cpu: (primary: Double, follower: Double?), appends: Int, figure: String, note: String) throws {
        guard let follower = cpu.follower else { return }  // no /proc
        let (primary, followerPer) = (cpu.primary * 1e6 / Double(appends), follower * 1e6 / Double(appends))
        try report("replicate-sync", figure, primary + followerPer, "us",
                   baseline: figure == "cpu_us_per_append" ? "nio-replication-floor-cpu-us-per-append" : nil,
                   note: "breakdown: CPU µs (user + system) of both processes per sync append over \(note): "
                       + String(format: "primary %.1f (the bench's process: node, writer tasks), follower %.1f", primary, followerPer))
    }
}
