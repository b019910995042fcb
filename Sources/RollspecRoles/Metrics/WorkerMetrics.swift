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

    /// The weights a series counts under: one pair of versions, or every version older than the
    /// newest `MetricName.policyVersionsKept` policies, folded together.
    public enum Era: Hashable, Sendable {
        case versions(Versions)
        case older

        var policy: UInt64? { if case .versions(let v) = self { v.policy } else { nil } }
    }

    public struct ProposerKey: Hashable, Sendable {
        public var proposer: ProposerKind
        public var era: Era
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
    public private(set) var generation: [Era: Generation] = [:]
    /// Unix time this process started; a new one tells the broker that counting restarted.
    public let startTimeUnixSeconds: Double
    /// Snapshots taken so far.
    public private(set) var snapshotsTaken = 0
    private var changedSpeculation: Set<ProposerKey> = []
    private var changedGeneration: Set<Era> = []

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
        let era = Era.versions(versions)
        for (proposer, stats) in report.byProposer {
            add(stats, to: ProposerKey(proposer: proposer, era: era))
        }
        add(Generation(requests: requests, tokens: tokens, seconds: max(0, seconds)), to: era)
        foldOldVersions()
    }

    private mutating func add(_ stats: SpecDecodeStats, to key: ProposerKey) {
        speculation[key] = (speculation[key] ?? SpecDecodeStats()) + stats
        changedSpeculation.insert(key)
    }

    private mutating func add(_ g: Generation, to era: Era) {
        generation[era, default: Generation()].requests += g.requests
        generation[era]!.tokens += g.tokens
        generation[era]!.seconds += g.seconds
        changedGeneration.insert(era)
    }

    /// Moves the counts of policy versions older than the newest `policyVersionsKept` into the
    /// `.older` series: each count only grows, and the sum over all series is unchanged.
    private mutating func foldOldVersions() {
        let policies = Set(generation.keys.compactMap(\.policy)).sorted(by: >)
        guard policies.count > MetricName.policyVersionsKept else { return }
        let oldest = policies[MetricName.policyVersionsKept - 1]
        for (key, stats) in speculation where (key.era.policy ?? .max) < oldest {
            speculation[key] = nil
            changedSpeculation.remove(key)
            add(stats, to: ProposerKey(proposer: key.proposer, era: .older))
        }
        for (era, g) in generation where (era.policy ?? .max) < oldest {
            generation[era] = nil
            changedGeneration.remove(era)
            add(g, to: .older)
        }
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
            let labels = [MetricLabel("proposer", key.proposer.rawValue)] + Self.labels(key.era)
            add(MetricName.drafts, labels, .counter, Double(s.drafts))
            add(MetricName.draftTokens, labels, .counter, Double(s.draftTokens))
            add(MetricName.acceptedTokens, labels, .counter, Double(s.acceptedTokens))
            for (i, n) in s.acceptedAtPosition.enumerated() {
                add(MetricName.acceptedPerPosition, labels + [MetricLabel("position", String(i + 1))], .counter, Double(n))
            }
        }
        let gen = full ? Array(generation.keys) : Array(changedGeneration)
        for era in gen.sorted(by: Self.order) {
            let g = generation[era]!
            let labels = Self.labels(era)
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

    static func labels(_ era: Era) -> [MetricLabel] {
        switch era {
        case .versions(let v):
            [MetricLabel("policy_version", String(v.policy)), MetricLabel("draft_version", String(v.draft))]
        case .older:
            [MetricLabel("policy_version", MetricName.olderVersions), MetricLabel("draft_version", MetricName.olderVersions)]
        }
    }

    /// Older first, then by versions.
    private static func order(_ a: Era, _ b: Era) -> Bool {
        switch (a, b) {
        case (.older, .older), (.versions, .older): false
        case (.older, .versions): true
        case let (.versions(x), .versions(y)): (x.policy, x.draft) < (y.policy, y.draft)
        }
    }

    private static func order(_ a: ProposerKey, _ b: ProposerKey) -> Bool {
        a.era != b.era ? order(a.era, b.era) : a.proposer < b.proposer
    }
}
