import Foundation
import RollspecBus
import RollspecClient
import RollspecSpeculation

/// A worker's cumulative counters since it started, by the weight versions (and proposer) that
/// produced them — raw counts only; `snapshot` turns them into the `MetricsSnapshot` the
/// broker aggregates.
///
/// Counts never go down, so a snapshot can carry only the series that changed since the last
/// one: the broker keeps the newest value of every series it has seen. A series of an old
/// version stops changing after a swap, so snapshots stay small however many versions a run
/// goes through; `full` snapshots now and then restore anything a lost message left stale.
public struct WorkerMetrics: Sendable, Equatable {
    public struct Versions: Hashable, Sendable {
        public var policy: UInt64
        public var draft: UInt64

        public init(policy: UInt64, draft: UInt64) {
            self.policy = policy
            self.draft = draft
        }
    }

    public struct ProposerKey: Hashable, Sendable {
        public var proposer: ProposerKind
        public var versions: Versions
    }

    /// Whole requests, whatever proposers they used.
    public struct Generation: Equatable, Sendable {
        public var requests = 0
        /// Tokens of all samples.
        public var tokens = 0
        /// Wall time of prefill and decode.
        public var seconds: Double = 0
    }

    public private(set) var speculation: [ProposerKey: SpecDecodeStats] = [:]
    public private(set) var generation: [Versions: Generation] = [:]
    /// Unix time this process started; a new one tells the broker that counting restarted.
    public let startTimeUnixSeconds: Double
    /// Snapshots taken so far.
    public private(set) var snapshotsTaken = 0
    private var changedSpeculation: Set<ProposerKey> = []
    private var changedGeneration: Set<Versions> = []

    public init(startTimeUnixSeconds: Double = Date().timeIntervalSince1970) {
        self.startTimeUnixSeconds = startTimeUnixSeconds
    }

    /// Adds the statistics of `requests` requests generated together.
    /// - Parameters:
    ///   - report: the speculation report of all their samples together.
    ///   - tokens: tokens generated over all their samples.
    ///   - seconds: wall time of their generation.
    public mutating func record(report: SpeculationReport, tokens: Int, seconds: Double, requests: Int = 1,
                                versions: Versions) {
        for (proposer, stats) in report.byProposer {
            let key = ProposerKey(proposer: proposer, versions: versions)
            speculation[key] = (speculation[key] ?? SpecDecodeStats()) + stats
            changedSpeculation.insert(key)
        }
        generation[versions, default: Generation()].requests += requests
        generation[versions]!.tokens += tokens
        generation[versions]!.seconds += max(0, seconds)
        changedGeneration.insert(versions)
    }

    /// The counters as a snapshot, and forgets what changed.
    /// - Parameters:
    ///   - full: every series, not only those changed since the last snapshot.
    ///   - current: the versions loaded now (gauges).
    ///   - rejections: the worker's refused bus messages.
    public mutating func snapshot(full: Bool, current: Versions, rejections: RejectionCounter,
                                  at date: Date = Date()) -> MetricsSnapshot {
        var samples: [MetricsSnapshot.Sample] = []
        func add(_ name: String, _ labels: [MetricLabel], _ kind: MetricsSnapshot.Kind, _ value: Double) {
            samples.append(.init(name: name, labels: labels, kind: kind, value: value))
        }
        add(MetricName.processStartTime, [], .gauge, startTimeUnixSeconds)
        add(MetricName.workerPolicyVersion, [], .gauge, Double(current.policy))
        add(MetricName.workerDraftVersion, [], .gauge, Double(current.draft))
        for (reason, n) in rejections.counts.sorted(by: { $0.key < $1.key }) {
            add(MetricName.rejectedMessages, [MetricLabel("reason", reason.rawValue)], .counter, Double(n))
        }
        let spec = full ? Array(speculation.keys) : Array(changedSpeculation)
        for key in spec.sorted(by: Self.order) {
            // Plain steps are recorded under a proposer too; a series of nothing but zeros is noise.
            guard let s = speculation[key], s.drafts > 0 else { continue }
            let labels = [MetricLabel("proposer", key.proposer.rawValue)] + Self.labels(key.versions)
            add(MetricName.drafts, labels, .counter, Double(s.drafts))
            add(MetricName.draftTokens, labels, .counter, Double(s.draftTokens))
            add(MetricName.acceptedTokens, labels, .counter, Double(s.acceptedTokens))
            for (i, n) in s.acceptedAtPosition.enumerated() {
                add(MetricName.acceptedPerPosition, labels + [MetricLabel("position", String(i + 1))], .counter, Double(n))
            }
        }
        let gen = full ? Array(generation.keys) : Array(changedGeneration)
        for versions in gen.sorted(by: { ($0.policy, $0.draft) < ($1.policy, $1.draft) }) {
            let g = generation[versions]!
            let labels = Self.labels(versions)
            add(MetricName.generationRequests, labels, .counter, Double(g.requests))
            add(MetricName.generatedTokens, labels, .counter, Double(g.tokens))
            add(MetricName.generationSeconds, labels, .counter, g.seconds)
        }
        changedSpeculation.removeAll()
        changedGeneration.removeAll()
        snapshotsTaken += 1
        let nanos = UInt64(max(0, date.timeIntervalSince1970) * 1e9)
        return MetricsSnapshot(timestampUnixNanos: nanos, samples: samples)
    }

    static func labels(_ v: Versions) -> [MetricLabel] {
        [MetricLabel("policy_version", String(v.policy)), MetricLabel("draft_version", String(v.draft))]
    }

    private static func order(_ a: ProposerKey, _ b: ProposerKey) -> Bool {
        (a.versions.policy, a.versions.draft, a.proposer) < (b.versions.policy, b.versions.draft, b.proposer)
    }
}
