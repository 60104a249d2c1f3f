import Foundation

/// The `failover-peers` workload: what issue 10's `failover` figures are compared against, in
/// the same run. For each detection setting (heartbeat interval, detection timeout), a Redis
/// master + replica + three Sentinels (`SentinelFailover`) and a three-member etcd 3.4 cluster
/// (`EtcdFailover`) are each killed (`kill -9` of the master / leader) `rounds` times under a
/// writer; MTTR = the kill to the first write acknowledged afterwards. The figures, also kept
/// under the same names for `value(_:)` (suffixed as `Settings.suffix` says):
///
/// | name | what |
/// |---|---|
/// | `redis-sentinel-mttr-ms` | Sentinel's median MTTR (min, max and every round in the note) |
/// | `redis-sentinel-promotion-ms` | the kill to the replica accepting a write sent to it directly, median |
/// | `etcd-mttr-ms-median`, `etcd-mttr-ms-max` | etcd's median and maximum MTTR (min and every round in the note) |
/// | `etcd-split-vote-rounds` | rounds whose election took more than one raft term |
///
/// A peer that is not installed is reported with a null value and a note saying so.
final class FailoverPeers {
    static let workloads = ["failover-peers"]
    static let quickRounds = 3
    static let fullRounds = 20

    /// A failure detection setting: the heartbeat interval and the timeout after which the
    /// primary is declared down (Sentinel's down-after-milliseconds, etcd's election timeout;
    /// Sentinel has no heartbeat setting of its own: it pings every second or every timeout).
    struct Settings: Equatable, Sendable, CustomStringConvertible {
        var heartbeatMilliseconds: Int
        var detectionTimeoutMilliseconds: Int

        /// Issue 10's benchmark setting, and its defaults (figures suffixed `_default`).
        static let fast = Settings(heartbeatMilliseconds: 50, detectionTimeoutMilliseconds: 300)
        static let defaults = Settings(heartbeatMilliseconds: 100, detectionTimeoutMilliseconds: 1000)

        /// What figure names end in: nothing at 50/300, `_default` at 100/1000, else `_HB-TOms`.
        var suffix: String {
            switch self {
            case .fast: return ""
            case .defaults: return "_default"
            default: return "_\(heartbeatMilliseconds)-\(detectionTimeoutMilliseconds)ms"
            }
        }

        var description: String { "heartbeat \(heartbeatMilliseconds) ms, detection timeout \(detectionTimeoutMilliseconds) ms" }

        /// "50/300" (heartbeat/timeout in ms); nil unless 0 < heartbeat < timeout.
        init?(parsing text: Substring) {
            let parts = text.split(separator: "/")
            guard parts.count == 2, let heartbeat = Int(parts[0]), let timeout = Int(parts[1]),
                  heartbeat > 0, timeout > heartbeat, timeout <= 60_000 else { return nil }
            self.init(heartbeatMilliseconds: heartbeat, detectionTimeoutMilliseconds: timeout)
        }

        init(heartbeatMilliseconds: Int, detectionTimeoutMilliseconds: Int) {
            self.heartbeatMilliseconds = heartbeatMilliseconds
            self.detectionTimeoutMilliseconds = detectionTimeoutMilliseconds
        }
    }

    let directory: String
    let reporter: Reporter
    /// Kills per peer and setting (ShipLogBench sets `quickRounds` in the quick suite).
    var rounds = FailoverPeers.fullRounds
    var settings: [Settings] = [.fast, .defaults]
    /// Keep each cluster's directory (its servers' logs) afterwards: the bench's `--keep`.
    var keepDirectories = false
    private var values: [String: Double] = [:]

    init(directory: String, reporter: Reporter) {
        self.directory = directory
        self.reporter = reporter
    }

    /// A figure measured earlier in this run, by its name with its suffix
    /// (`redis-sentinel-mttr-ms_default`); nil if it has not run or its peer was skipped.
    func value(_ name: String) -> Double? { values[name] }

    func run(_ name: String) throws {
        guard name == "failover-peers" else { throw BenchError.usage("unknown failover peers workload \(name)") }
        for setting in settings { try measure(setting) }
    }

    /// Both peers at one setting (issue 10's `failover` may call it for a setting of its own).
    func measure(_ setting: Settings) throws {
        try sentinel(setting)
        try etcd(setting)
    }

    private func report(_ figure: String, _ setting: Settings, _ value: Double?, _ unit: String, note: String) {
        let name = figure + setting.suffix
        values[name] = value
        reporter.report(Figure(workload: "failover-peers", figure: name, value: value, unit: unit,
                               baseline: value == nil ? nil : "detection-timeout-ms",
                               baselineValue: value == nil ? nil : Double(setting.detectionTimeoutMilliseconds), note: note))
    }

    private func root(_ peer: String) -> String { directory + "/failover-\(peer)-" + UUID().uuidString }

    /// Runs `round` up to `rounds` times; a failure ends the series, and is returned beside the
    /// rounds done so that those are still reported (the note says what failed).
    private func series<R>(_ round: () throws -> R) -> (done: [R], failure: String?) {
        var done: [R] = []
        for _ in 0..<rounds {
            do { done.append(try round()) } catch { return (done, "stopped after \(done.count) rounds: \(error)") }
        }
        return (done, nil)
    }

    /// "min 1200, median 1250, max 1300 ms over 20 rounds (load 0.5); rounds: …"
    private static func spread(_ mttrs: [Double], failure: String?) -> String {
        let sorted = mttrs.sorted()
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first ?? "?"
        var text = sorted.isEmpty ? "no round finished" : String(format: "min %.0f, median %.0f, max %.0f ms over %ld rounds",
                                                                  sorted[0], median(sorted), sorted[sorted.count - 1], sorted.count)
        text += " (load \(load) after); rounds: " + mttrs.map { String(format: "%.0f", $0) }.joined(separator: ", ")
        if let failure { text += "; " + failure }
        return text
    }

    private static func median(_ sorted: [Double]) -> Double {
        sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    // MARK: Redis Sentinel

    func sentinel(_ setting: Settings) throws {
        guard let server = RedisPair.findServer() else {
            for name in ["redis-sentinel-mttr-ms", "redis-sentinel-promotion-ms"] {
                report(name, setting, nil, "ms", note: "skipped: redis-server (Sentinel mode) not installed")
            }
            return
        }
        let cluster = try SentinelCluster(server: server, root: root("sentinel"), detectionMilliseconds: setting.detectionTimeoutMilliseconds)
        cluster.keepDirectory = keepDirectories
        defer { cluster.stop() }
        var failover = SentinelFailover(cluster: cluster)
        let (rounds, failure) = series { try failover.round() }
        let mttrs = rounds.map(\.mttrMilliseconds)
        let sorted = mttrs.sorted()
        let how = "Redis master + 1 replica + 3 Sentinels (quorum 2, down-after-milliseconds \(setting.detectionTimeoutMilliseconds), "
            + "failover-timeout \(cluster.failoverTimeoutMilliseconds)), no persistence; writer: SET 1 KiB, kill -9 of the master, "
            + "then get-master-addr-by-name and SET with \(SentinelFailover.requestTimeoutMilliseconds) ms timeouts, "
            + "\(SentinelFailover.retryPauseMilliseconds) ms between tries; median; "
        let unplanned = cluster.failoversLogged() - rounds.count
        report("redis-sentinel-mttr-ms", setting, sorted.isEmpty ? nil : Self.median(sorted), "ms",
               note: how + Self.spread(mttrs, failure: failure) + "; failovers Sentinel made on its own: \(unplanned)")
        let promotions = rounds.map(\.promotionMilliseconds)
        report("redis-sentinel-promotion-ms", setting, promotions.isEmpty ? nil : Self.median(promotions.sorted()), "ms",
               note: "kill -9 to the first SET the surviving node acknowledged when written to directly (before Sentinel names it); "
                   + Self.spread(promotions, failure: failure))
    }

    // MARK: etcd

    func etcd(_ setting: Settings) throws {
        let names = ["etcd-mttr-ms-median", "etcd-mttr-ms-max", "etcd-split-vote-rounds"]
        guard let executable = EtcdCluster.findServer() else {
            for name in names {
                report(name, setting, nil, name.hasSuffix("rounds") ? "rounds" : "ms", note: "skipped: etcd not installed (Debian: etcd-server)")
            }
            return
        }
        let cluster = try EtcdCluster(executable: executable, root: root("etcd"), heartbeatMilliseconds: setting.heartbeatMilliseconds,
                                      electionMilliseconds: setting.detectionTimeoutMilliseconds)
        cluster.keepDirectory = keepDirectories
        defer { cluster.stop() }
        var failover = EtcdFailover(cluster: cluster)
        var (leader, term) = try cluster.waitHealthy(timeoutSeconds: 60)
        let (rounds, failure) = series { () throws -> EtcdFailover.Round in
            let result = try failover.round(leader: leader, term: term)
            (leader, term) = (result.leader, result.term)
            return result.round
        }
        let mttrs = rounds.map(\.mttrMilliseconds)
        let sorted = mttrs.sorted()
        let how = "etcd 3.4, 3 members (heartbeat-interval \(setting.heartbeatMilliseconds), election-timeout "
            + "\(setting.detectionTimeoutMilliseconds), other flags default: no pre-vote); writer: put of 1 KiB through the v3 JSON "
            + "gateway, \(EtcdFailover.requestTimeoutMilliseconds) ms timeout then the next member; kill -9 of the leader; "
        let spread = Self.spread(mttrs, failure: failure)
        report("etcd-mttr-ms-median", setting, sorted.isEmpty ? nil : Self.median(sorted), "ms", note: how + spread)
        report("etcd-mttr-ms-max", setting, sorted.last, "ms", note: how + spread)
        let split = rounds.filter { $0.terms > 1 }.count
        reporter.report(Figure(workload: "failover-peers", figure: "etcd-split-vote-rounds" + setting.suffix,
                               value: rounds.isEmpty ? nil : Double(split), unit: "rounds", baseline: nil, baselineValue: nil,
                               note: "rounds whose election took more than one raft term, of \(rounds.count); terms per round: "
                                   + rounds.map { String($0.terms) }.joined(separator: ", ")))
        values["etcd-split-vote-rounds" + setting.suffix] = rounds.isEmpty ? nil : Double(split)
    }
}
