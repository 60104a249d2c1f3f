import Foundation

/// Issue 10's `failover` workload: three `shiplog serve --role automatic` processes
/// (`FailoverCluster`) under a writer appending in sync(quorum: 1) (`FailoverWriter`). Each
/// round kills the primary with kill -9 by its pid; MTTR is the time from the kill to the first
/// append acknowledged by another node; the killed node is restarted (same directory, same
/// port) and the next round waits until all three agree on the primary and have caught up.
/// At the end every node's log is read and every acknowledged append looked up in each.
///
/// Figures per setting (suffixed as `FailoverPeers.Settings.suffix` says): `mttr_ms_min`,
/// `mttr_ms_median`, `mttr_ms_max` against `detection-timeout-ms` (and median/max against
/// the etcd and Redis Sentinel figures of `failover-peers` when measured earlier in the run),
/// `lost_acked_appends`, `availability` and `availability_nines` for `mtbfDays`.
final class FailoverWorkload {
    static let workloads = ["failover"]
    static let quickRounds = 5
    static let fullRounds = 20
    /// Bounds per round: the failover itself, and the restarted node's rejoining.
    static let failoverLimit = Duration.seconds(10)
    static let rejoinLimit = Duration.seconds(30)

    let directory: String
    let reporter: Reporter
    let peers: FailoverPeers
    var rounds = FailoverWorkload.fullRounds
    var settings: [FailoverPeers.Settings] = [.fast, .defaults]
    var mtbfDays = 30.0
    /// Keep each setting's directory (logs and serve logs) afterwards: the bench's `--keep`.
    var keepDirectories = false

    init(directory: String, reporter: Reporter, peers: FailoverPeers) {
        self.directory = directory
        self.reporter = reporter
        self.peers = peers
    }

    func run(_ name: String) throws {
        guard name == "failover" else { throw BenchError.usage("unknown failover workload \(name)") }
        // The writer writes to pipes of processes it kills: a write there is EPIPE, not death.
        signal(SIGPIPE, SIG_IGN)
        for setting in settings { try measure(setting) }
    }

    /// One measured round.
    struct Round {
        var killed: Int
        var newPrimary: Int
        var mttrMilliseconds: Double
        /// From the new primary's serve log: its detector's silence and its election.
        var detection: String
        var promotion: String
    }

    func measure(_ setting: FailoverPeers.Settings) throws {
        let cluster = try FailoverCluster(root: directory + "/failover-" + UUID().uuidString, setting: setting)
        defer {
            cluster.stopAll()
            if !keepDirectories { try? FileManager.default.removeItem(atPath: cluster.root) }
        }
        for id in FailoverCluster.nodes { try cluster.start(id) }
        let first = try cluster.waitCaughtUp(timeout: .seconds(30))
        let writer = FailoverWriter(nodes: FailoverCluster.nodes, recordPrefix: "failover \(setting.suffix) \(UUID().uuidString)",
                                    initialTarget: first)
        try cluster.attach(writer)
        writer.start()
        defer { writer.stop(drain: .zero) }
        guard writer.firstAck(from: 0, after: .now - .seconds(1), timeout: .seconds(10)) != nil else {
            throw BenchError.engine("failover: the writer had no append acknowledged within 10 s of starting")
        }

        var done: [Round] = []
        var failure: String?
        for _ in 0..<rounds {
            do { done.append(try round(cluster, writer)) } catch {
                failure = "stopped after \(done.count) rounds: \(error)"
                break
            }
        }
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
        writer.stop(drain: .seconds(2))
        if failure == nil { _ = try? cluster.waitCaughtUp(timeout: Self.rejoinLimit) }
        cluster.stopAll()
        let lost = lostAppends(writer.acknowledged, try cluster.records())
        report(setting, done, lost: lost, counts: writer.counts, load: load, failure: failure)
    }

    private func round(_ cluster: FailoverCluster, _ writer: FailoverWriter) throws -> Round {
        let victim = try cluster.waitCaughtUp(timeout: Self.rejoinLimit)
        // Kill while the writer is appending to the primary: one acknowledgement from it first.
        let cursor = writer.ackCount
        guard writer.firstAck(from: cursor, after: .now, timeout: .seconds(5), by: { $0 == victim }) != nil else {
            throw BenchError.engine("the writer was not appending on primary \(victim) before the kill")
        }
        let from = writer.ackCount
        let killedAt = cluster.kill9(victim)
        guard let ack = writer.firstAck(from: from, after: killedAt, timeout: Self.failoverLimit, by: { $0 != victim }) else {
            throw BenchError.engine("no append acknowledged within \(Self.failoverLimit) of killing primary \(victim)")
        }
        let mttr = ack.at - killedAt
        try cluster.start(victim)
        let primary = try cluster.waitCaughtUp(timeout: Self.rejoinLimit)
        let epoch = cluster.status(primary)?.epoch
        let (detection, promotion) = Self.promotionTimes(log: cluster.serveLog(ack.node), epoch: epoch)
        return Round(killed: victim, newPrimary: ack.node, mttrMilliseconds: mttr.failoverMilliseconds,
                     detection: detection, promotion: promotion)
    }

    /// Acknowledged appends that some node's log does not hold at their offset with their bytes.
    private func lostAppends(_ acks: [AcknowledgedAppend], _ logs: [Int: [UInt64: [UInt8]]]) -> (count: Int, note: String) {
        var missing = 0
        var perNode: [Int: Int] = [:]
        for ack in acks {
            precondition(ack.offsets.count == 1, "one record per append")
            let bytes = Array(ack.record.utf8)
            var lostSomewhere = false
            for (id, records) in logs where records[ack.offsets.lowerBound] != bytes {
                perNode[id, default: 0] += 1
                lostSomewhere = true
            }
            if lostSomewhere { missing += 1 }
        }
        let sizes = logs.keys.sorted().map { "node \($0): \(logs[$0]!.count) records" }.joined(separator: ", ")
        let identical = Set(logs.values.map { $0.count }).count == 1 && logs.values.dropFirst().allSatisfy { $0 == logs.values.first! }
        let note = "\(acks.count) acknowledged appends looked up in every node's log (\(sizes); logs identical: \(identical))"
            + (perNode.isEmpty ? "" : "; missing per node: " + perNode.sorted { $0.key < $1.key }.map { "node \($0.key): \($0.value)" }.joined(separator: ", "))
        return (missing, note)
    }

    /// "detection=… promotion=…" of the "promoted to primary in epoch E" line in a serve log.
    static func promotionTimes(log path: String, epoch: UInt64?) -> (String, String) {
        guard let epoch, let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").last(where: { $0.contains("promoted to primary in epoch \(epoch) ") }) else { return ("?", "?") }
        func field(_ name: String) -> String {
            guard let start = line.range(of: name + "=") else { return "?" }
            let rest = line[start.upperBound...]
            // Duration prints as "0.312 seconds"; keep the number only, in ms.
            let number = rest.prefix { $0.isNumber || $0 == "." || $0 == "e" || $0 == "-" }
            guard let seconds = Double(number) else { return String(rest.prefix { $0 != " " }) }
            return String(format: "%.0f", seconds * 1000)
        }
        return (field("detection"), field("promotion"))
    }

    private func report(_ setting: FailoverPeers.Settings, _ rounds: [Round], lost: (count: Int, note: String),
                        counts: (acks: Int, errors: Int, timeouts: Int), load: String, failure: String?) {
        let suffix = setting.suffix
        let mttrs = rounds.map(\.mttrMilliseconds)
        let sorted = mttrs.sorted()
        let median = sorted.isEmpty ? nil : (sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2)
        let timeout = Double(setting.detectionTimeoutMilliseconds)
        var note = "3 shiplog serve --role automatic (\(setting)), writer in sync(quorum: 1) through --stdin-appends, "
            + "\(FailoverWriter.requestTimeoutMilliseconds) ms request timeout then the named primary or the next node; "
            + "kill -9 of the primary; \(rounds.count) rounds (load \(load) after); rounds (ms): "
            + rounds.map { String(format: "%.0f", $0.mttrMilliseconds) }.joined(separator: ", ")
            + "; detection/promotion per round from the new primary's log (ms): "
            + rounds.map { "\($0.detection)/\($0.promotion)" }.joined(separator: ", ")
            + "; writer: \(counts.acks) acks, \(counts.errors) error answers, \(counts.timeouts) timeouts"
        if let failure { note += "; " + failure }
        let detection = "detection-timeout-ms" + suffix
        func figure(_ name: String, _ value: Double?, _ unit: String, _ baseline: String?, _ baselineValue: Double?, note: String? = note) {
            reporter.report(Figure(workload: "failover", figure: name + suffix, value: value, unit: unit,
                                   baseline: baseline, baselineValue: baselineValue, note: note))
        }
        figure("mttr_ms_min", sorted.first, "ms", detection, timeout)
        figure("mttr_ms_median", median, "ms", detection, timeout)
        figure("mttr_ms_max", sorted.last, "ms", detection, timeout)
        for (name, value, peer) in [("mttr_ms_median", median, "etcd-mttr-ms-median"), ("mttr_ms_max", sorted.last, "etcd-mttr-ms-max"),
                                    ("mttr_ms_median", median, "redis-sentinel-mttr-ms")] {
            if let peerValue = peers.value(peer + suffix) { figure(name, value, "ms", peer + suffix, peerValue, note: nil) }
        }
        figure("lost_acked_appends", Double(lost.count), "appends", nil, nil, note: lost.note)
        let mtbf = mtbfDays * 86_400_000
        let availability = median.map { mtbf / (mtbf + $0) }
        let how = String(format: "A = MTBF / (MTBF + median MTTR), MTBF %g days", mtbfDays)
        figure("availability", availability, "fraction", nil, nil, note: how)
        figure("availability_nines", availability.map { -log10(1 - $0) }, "nines", nil, nil, note: how)
    }
}

extension Duration {
    /// This duration in milliseconds, as a Double.
    var failoverMilliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
