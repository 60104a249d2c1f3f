import Metrics
import ShipLogProtocol
import Synchronization

/// The node's metrics through swift-metrics (exported for Prometheus by `shiplog serve`).
/// Every metric carries the node's id as a dimension, so several nodes in one process stay apart.
final class NodeMetrics: Sendable {
    let node: String
    let acknowledgements: Counter
    let bytesShipped: Counter
    let reconnects: Counter
    let fullResyncs: Counter
    let authenticationFailures: Counter
    private let closedByReason: Mutex<[CloseReason: Counter]> = Mutex([:])
    private let lagGauges: Mutex<[NodeID: LagGauges]> = Mutex([:])

    struct LagGauges: Sendable {
        var records: Gauge
        var bytes: Gauge
        var milliseconds: Gauge
    }

    init(node: NodeID) {
        self.node = String(node.rawValue)
        let dimensions = [("node", self.node)]
        acknowledgements = Counter(label: "shiplog_replication_acknowledgements_total", dimensions: dimensions)
        bytesShipped = Counter(label: "shiplog_replication_bytes_shipped_total", dimensions: dimensions)
        reconnects = Counter(label: "shiplog_replication_reconnects_total", dimensions: dimensions)
        fullResyncs = Counter(label: "shiplog_replication_full_resyncs_total", dimensions: dimensions)
        authenticationFailures = Counter(label: "shiplog_authentication_failures_total", dimensions: dimensions)
    }

    func closedConnection(reason: CloseReason) {
        let counter = closedByReason.withLock { counters in
            if let counter = counters[reason] { return counter }
            let counter = Counter(label: "shiplog_connections_closed_total",
                                  dimensions: [("node", node), ("reason", "\(reason)")])
            counters[reason] = counter
            return counter
        }
        counter.increment()
    }

    /// Records each follower's lag as the primary sees it.
    func recordLag(_ followers: [PrimaryReplicator.FollowerStatus]) {
        for follower in followers {
            let gauges = lagGauges.withLock { gauges in
                if let existing = gauges[follower.node] { return existing }
                let dimensions = [("node", node), ("follower", String(follower.node.rawValue))]
                let made = LagGauges(
                    records: Gauge(label: "shiplog_follower_lag_records", dimensions: dimensions),
                    bytes: Gauge(label: "shiplog_follower_lag_bytes", dimensions: dimensions),
                    milliseconds: Gauge(label: "shiplog_follower_lag_milliseconds", dimensions: dimensions))
                gauges[follower.node] = made
                return made
            }
            gauges.records.record(Double(follower.lagRecords))
            gauges.bytes.record(Double(follower.lagBytes))
            gauges.milliseconds.record(follower.lag.milliseconds)
        }
    }
}

extension Duration {
    /// The duration in milliseconds, fractional.
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
