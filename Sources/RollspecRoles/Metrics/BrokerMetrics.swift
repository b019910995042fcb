import RollspecBus
import RollspecClient

/// Everything the broker exports, as values: the workers' counters (per worker, restarts
/// folded in so every exported counter only grows) and the broker's own counts.
///
/// Workers send cumulative counters since their process started. A worker that restarts
/// sends a new `rollspec_process_start_time_seconds` and counts from zero again; the broker
/// then adds what it had from the old process to a base, and exports base + newest value.
/// A counter that goes down without a new start time is taken as a restart of that series.
public struct BrokerMetrics: Sendable {
    /// Upper bounds of the rollout latency histogram, seconds: CPU rollouts take from a
    /// fraction of a second to many minutes.
    public static let latencyBuckets: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000]

    /// A series a worker sent: family name and labels (sorted, without `worker`).
    typealias SeriesKey = MetricsSnapshot.SeriesKey

    struct WorkerSeries {
        var startTime: Double?
        /// Counters: what earlier processes (or earlier runs of a reset series) counted, and
        /// the newest value of the current one.
        var counters: [SeriesKey: (base: Double, last: Double)] = [:]
        var gauges: [SeriesKey: Double] = [:]
    }

    struct DeliveryKey: Hashable {
        var worker: String
        var policy: UInt64
        var draft: UInt64
    }

    private var workers: [String: WorkerSeries] = [:]
    private var rejections: [RejectionReason: UInt64] = [:]
    private var connectionEvents: [ConnectionEvent: UInt64] = [:]
    private var delivered: [DeliveryKey: UInt64] = [:]
    /// Per worker: trajectories of policy versions no longer exported one by one.
    private var deliveredOlder: [String: UInt64] = [:]
    private var latency: [String: Histogram] = [:]
    private var errorReplies: (sent: UInt64, suppressed: UInt64) = (0, 0)
    private var redelivered: UInt64 = 0
    private var resent: UInt64 = 0
    private var policyVersion: UInt64 = 0
    private var draftVersion: UInt64 = 0
    private var workersAlive = 0

    public init() {}

    /// Takes in a worker's snapshot.
    /// - Parameter worker: the sender id, exported as the `worker` label (a `worker` label the
    ///   worker sent itself is replaced).
    /// - Returns: names of the samples ignored: unknown families, or a kind that does not
    ///   match the family.
    @discardableResult
    public mutating func record(snapshot: MetricsSnapshot, worker: String) -> [String] {
        var ignored: [String] = []
        var parsed: [(key: SeriesKey, kind: MetricsSnapshot.Kind, value: Double)] = []
        for s in snapshot.samples {
            guard let kind = MetricName.fromWorkers[s.name], kind == s.kind, !s.value.isNaN else {
                ignored.append(s.name)
                continue
            }
            parsed.append((SeriesKey(name: s.name, labels: s.labels.filter { $0.name != "worker" }), kind, s.value))
        }
        var w = workers[worker] ?? WorkerSeries()
        let start = parsed.first { $0.key.name == MetricName.processStartTime && $0.key.labels.isEmpty }?.value
        if let start, let old = w.startTime, start != old {
            // A new process: everything counted so far belongs to the old one.
            for k in w.counters.keys { w.counters[k] = (w.counters[k]!.base + w.counters[k]!.last, 0) }
        }
        if let start { w.startTime = start }
        for p in parsed {
            switch p.kind {
            case .gauge:
                w.gauges[p.key] = p.value
            case .counter:
                var c = w.counters[p.key] ?? (0, 0)
                if p.value < c.last { c.base += c.last }
                c.last = p.value
                w.counters[p.key] = c
            }
        }
        Self.dropOldVersions(&w)
        workers[worker] = w
        return ignored
    }

    /// Drops a worker's series of policy versions older than the newest `policyVersionsKept`:
    /// the worker has folded their counts into its `policy_version="older"` series. What earlier
    /// processes of the worker counted under them (`base`) moves to the older series here, as
    /// no worker process will send it again.
    private static func dropOldVersions(_ w: inout WorkerSeries) {
        func policy(_ key: SeriesKey) -> UInt64? { key.labels.first { $0.name == "policy_version" }.flatMap { UInt64($0.value) } }
        let policies = Set(w.counters.keys.compactMap(policy)).sorted(by: >)
        guard policies.count > MetricName.policyVersionsKept else { return }
        let oldest = policies[MetricName.policyVersionsKept - 1]
        for (key, c) in w.counters {
            guard let p = policy(key), p < oldest else { continue }
            w.counters[key] = nil
            let older = SeriesKey(name: key.name, labels: key.labels.map {
                $0.name == "policy_version" || $0.name == "draft_version" ? MetricLabel($0.name, MetricName.olderVersions) : $0
            })
            w.counters[older, default: (0, 0)].base += c.base
        }
    }

    /// Counts a trajectory delivered to the client.
    /// - Parameter latencySeconds: time since its request was first dispatched (nil: unknown).
    public mutating func recordTrajectory(_ t: Trajectory, worker: String, latencySeconds: Double?) {
        if let latencySeconds {
            latency[worker, default: Histogram(upperBounds: Self.latencyBuckets)].observe(max(0, latencySeconds))
        }
        let key = DeliveryKey(worker: worker, policy: t.policyVersion, draft: t.draftVersion)
        let isNewSeries = delivered[key] == nil
        delivered[key, default: 0] += 1
        // As for workers' series: policy versions older than the newest kept fold together.
        // Only a new series can push the versions past the limit, so only then is it looked at
        // (on every trajectory it cost the broker a scan, a set and a sort per message).
        guard isNewSeries else { return }
        let policies = Set(delivered.keys.filter { $0.worker == worker }.map(\.policy)).sorted(by: >)
        if policies.count > MetricName.policyVersionsKept {
            let oldest = policies[MetricName.policyVersionsKept - 1]
            for (k, n) in delivered where k.worker == worker && k.policy < oldest {
                delivered[k] = nil
                deliveredOlder[worker, default: 0] += n
            }
        }
    }

    /// The broker's refusals so far (its `RejectionCounter` only grows).
    public mutating func recordRejections(_ counter: RejectionCounter) {
        for (reason, n) in counter.counts { rejections[reason] = max(rejections[reason] ?? 0, n) }
    }

    /// The broker's running totals of redelivered requests and resent trajectories.
    public mutating func setRedelivery(redelivered: Int, resent: Int) {
        self.redelivered = max(self.redelivered, UInt64(max(0, redelivered)))
        self.resent = max(self.resent, UInt64(max(0, resent)))
    }

    /// The broker's running totals of `error` replies sent and suppressed by the per-connection cap.
    public mutating func setErrorReplies(sent: Int, suppressed: Int) {
        errorReplies = (max(errorReplies.sent, UInt64(max(0, sent))), max(errorReplies.suppressed, UInt64(max(0, suppressed))))
    }

    public mutating func setVersions(policy: UInt64, draft: UInt64) {
        policyVersion = policy
        draftVersion = draft
    }

    public mutating func setWorkersAlive(_ n: Int) { workersAlive = n }

    /// The broker socket's connection events so far (`ConnectionMonitor`).
    public mutating func setConnectionEvents(_ counts: [ConnectionEvent: UInt64]) {
        for (event, n) in counts { connectionEvents[event] = max(connectionEvents[event] ?? 0, n) }
    }

    /// The exported value of a worker's series (tests, and the query's own checks).
    public func value(_ name: String, worker: String, labels: [MetricLabel] = []) -> Double? {
        let key = SeriesKey(name: name, labels: labels)
        if let c = workers[worker]?.counters[key] { return c.base + c.last }
        return workers[worker]?.gauges[key]
    }

    /// Every family, in `MetricName.catalog` order; series sorted by labels.
    public func families() -> [MetricFamily] {
        var samples: [String: [MetricSample]] = [:]
        for (worker, w) in workers {
            let workerLabel = MetricLabel("worker", worker)
            for (k, c) in w.counters {
                samples[k.name, default: []].append(MetricSample(name: k.name, labels: [workerLabel] + k.labels, value: c.base + c.last))
            }
            for (k, v) in w.gauges {
                samples[k.name, default: []].append(MetricSample(name: k.name, labels: [workerLabel] + k.labels, value: v))
            }
        }
        for (reason, n) in rejections {
            samples[MetricName.rejectedMessages, default: []].append(
                MetricSample(name: MetricName.rejectedMessages, labels: [MetricLabel("reason", reason.rawValue)], value: Double(n)))
        }
        for (event, n) in connectionEvents {
            samples[MetricName.connectionEvents, default: []].append(
                MetricSample(name: MetricName.connectionEvents, labels: [MetricLabel("event", event.rawValue)], value: Double(n)))
        }
        samples[MetricName.errorReplies] = [
            MetricSample(name: MetricName.errorReplies, labels: [MetricLabel("outcome", "sent")], value: Double(errorReplies.sent)),
            MetricSample(name: MetricName.errorReplies, labels: [MetricLabel("outcome", "suppressed")],
                         value: Double(errorReplies.suppressed)),
        ]
        for (k, n) in delivered {
            let labels = [MetricLabel("worker", k.worker)] + WorkerMetrics.labels(.versions(.init(policy: k.policy, draft: k.draft)))
            samples[MetricName.trajectoriesDelivered, default: []].append(
                MetricSample(name: MetricName.trajectoriesDelivered, labels: labels, value: Double(n)))
        }
        for (worker, n) in deliveredOlder {
            let labels = [MetricLabel("worker", worker)] + WorkerMetrics.labels(.older)
            samples[MetricName.trajectoriesDelivered, default: []].append(
                MetricSample(name: MetricName.trajectoriesDelivered, labels: labels, value: Double(n)))
        }
        func one(_ name: String, _ value: Double) { samples[name] = [MetricSample(name: name, value: value)] }
        one(MetricName.requestsRedelivered, Double(redelivered))
        one(MetricName.trajectoriesResent, Double(resent))
        one(MetricName.policyVersion, Double(policyVersion))
        one(MetricName.draftVersion, Double(draftVersion))
        one(MetricName.workersAlive, Double(workersAlive))

        var out: [MetricFamily] = []
        for (name, kind, help) in MetricName.catalog {
            if name == MetricName.rolloutLatency {
                guard !latency.isEmpty else { continue }
                let series = latency.sorted { $0.key < $1.key }.flatMap { $0.value.samples(name: name, labels: [MetricLabel("worker", $0.key)]) }
                out.append(MetricFamily(name: name, help: help, kind: kind, samples: series))
                continue
            }
            guard let s = samples[name] else { continue }
            out.append(MetricFamily(name: name, help: help, kind: kind, samples: s.sorted(by: Self.seriesOrder)))
        }
        return out
    }

    /// The exposition text (Prometheus text format 0.0.4).
    public func prometheusText() -> String { PrometheusTextEncoder.encode(families()) }

    /// By labels, numbers by value (so `position="10"` follows `"9"`).
    private static func seriesOrder(_ a: MetricSample, _ b: MetricSample) -> Bool {
        for (x, y) in zip(a.labels, b.labels) where x != y {
            if x.name != y.name { return x.name < y.name }
            if let i = Int(x.value), let j = Int(y.value) { return i < j }
            return x.value < y.value
        }
        return a.labels.count < b.labels.count
    }
}
