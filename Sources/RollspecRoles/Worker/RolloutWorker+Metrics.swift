import Foundation
import RollspecBus
import RollspecClient
import RollspecSpeculation

/// The worker's share of the metrics: counts each request it generates, and sends the broker
/// a `MetricsSnapshot` with every heartbeat.
extension RolloutWorker {
    /// Every this many snapshots, all series are sent, not only the changed ones (see
    /// `WorkerMetrics`): a lost message then leaves a series stale for at most this long.
    static let fullSnapshotEvery = 30

    /// Adds one batch's samples to the counters.
    /// - Parameters:
    ///   - outputs: its samples, generated together (they share prefill and decode time, so
    ///     the batch's time is one sample's).
    ///   - requests: how many requests the samples belong to.
    func recordMetrics(_ outputs: [SpeculativeOutput], requests: Int, policyVersion: UInt64, draftVersion: UInt64) {
        let report = outputs.map(\.report).reduce(SpeculationReport(), +)
        let tokens = outputs.reduce(0) { $0 + $1.result.tokens.count }
        let seconds = outputs.first.map { $0.result.prefillSeconds + $0.result.decodeSeconds } ?? 0
        metrics.record(report: report, tokens: tokens, seconds: seconds, requests: requests,
                       versions: .init(policy: policyVersion, draft: draftVersion))
    }

    /// The snapshot to send now: changed series, and all of them every `fullSnapshotEvery`.
    func takeMetricsSnapshot(policyVersion: UInt64, draftVersion: UInt64) -> MetricsSnapshot {
        metrics.snapshot(full: metrics.snapshotsTaken % Self.fullSnapshotEvery == 0,
                                current: .init(policy: policyVersion, draft: draftVersion), rejections: rejections)
    }
}

/// One batch a worker generated: a JSON line in `<runDirectory>/worker-<index>.jsonl`, for
/// comparing the rollout speed inside a job with the engine's (`rollspec bench decode`).
public struct WorkerBatchRecord: Codable, Sendable, Equatable {
    public var event = "batch"
    /// Seconds since the worker started, when the batch finished.
    public var at: Double
    public var policyVersion: UInt64
    public var draftVersion: UInt64
    public var requests: Int
    /// Sequences generated side by side (the samples of all the batch's requests).
    public var sequences: Int
    public var promptTokens: Int
    public var generatedTokens: Int
    /// The prompts' prefill, then every decode step until the longest sequence ended.
    public var prefillSeconds: Double
    public var decodeSeconds: Double
    public var threads: Int
    /// Each decode step's live sequences, rows verified and seconds (`BatchStep`), in order: the
    /// batch's timeline, and what an engine would have had to do for it.
    public var stepSequences: [Int]
    public var stepRows: [Int]
    public var stepSeconds: [Double]
    /// Of each step's seconds, those spent drafting and those in the target's verify pass
    /// (the rest is acceptance and bookkeeping).
    public var stepDraftSeconds: [Double]
    public var stepVerifySeconds: [Double]
    /// generated / (prefill + decode).
    public var tokensPerSecond: Double
    /// generated / decode: the figure to hold against `bench decode` at `sequences` rows.
    public var decodeTokensPerSecond: Double
    /// Draft tokens verified and accepted over the batch's sequences.
    public var draftedTokens = 0
    public var acceptedTokens = 0
    /// When the batch began and ended, on this host's monotonic clock (`now()`, as the learner's
    /// step records and the policy logs give theirs).
    public var startedAt = 0.0
    public var endedAt = 0.0
    /// What the worker's rollout history held after the batch (0 when it keeps none).
    public var historyTokens = 0
    public var historyPrompts = 0

    public init(at: Double, policyVersion: UInt64, draftVersion: UInt64, requests: Int, sequences: Int,
                promptTokens: Int, generatedTokens: Int, prefillSeconds: Double, decodeSeconds: Double, threads: Int,
                timeline: [BatchStep]) {
        self.at = at
        self.policyVersion = policyVersion
        self.draftVersion = draftVersion
        self.requests = requests
        self.sequences = sequences
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.prefillSeconds = prefillSeconds
        self.decodeSeconds = decodeSeconds
        self.threads = threads
        stepSequences = timeline.map(\.sequences)
        stepRows = timeline.map(\.rows)
        let microseconds = { (seconds: Double) in (seconds * 1e6).rounded() / 1e6 }
        stepSeconds = timeline.map { microseconds($0.seconds) }
        stepDraftSeconds = timeline.map { microseconds($0.draftSeconds) }
        stepVerifySeconds = timeline.map { microseconds($0.verifySeconds) }
        let total = prefillSeconds + decodeSeconds
        tokensPerSecond = total > 0 ? Double(generatedTokens) / total : 0
        decodeTokensPerSecond = decodeSeconds > 0 ? Double(generatedTokens) / decodeSeconds : 0
    }
}
