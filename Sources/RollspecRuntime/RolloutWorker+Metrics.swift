import Foundation
import RollspecBus
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
