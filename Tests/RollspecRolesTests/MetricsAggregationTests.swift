import Foundation
import RollspecBus
import RollspecClient
import RollspecRoles
import RollspecSpeculation
import Testing

/// Worker counters → snapshot → broker aggregation → exposition text → parser → query rows,
/// with every figure checked by hand.
@Suite struct MetricsAggregationTests {
    typealias Versions = WorkerMetrics.Versions

    /// Policy v1 / draft v1: "draft" verifies (4 drafted, 4 accepted), (4, 2), (4, 0), (3, 1)
    /// and one plain step; "suffix" verifies (2, 2), (2, 0). 40 tokens in 2 s.
    /// Policy v2 / draft v1: "draft" verifies (4, 4). 10 tokens in 1 s.
    static func worker() -> (WorkerMetrics, SpeculationReport) {
        var m = WorkerMetrics(startTimeUnixSeconds: 1000)
        var first = SpeculationReport()
        for (d, a) in [(4, 4), (4, 2), (4, 0), (3, 1), (0, 0)] { first.record(proposer: .draft, drafted: d, accepted: a) }
        for (d, a) in [(2, 2), (2, 0)] { first.record(proposer: .suffix, drafted: d, accepted: a) }
        m.record(report: first, tokens: 40, seconds: 2, versions: Versions(policy: 1, draft: 1))
        var second = SpeculationReport()
        second.record(proposer: .draft, drafted: 4, accepted: 4)
        m.record(report: second, tokens: 10, seconds: 1, versions: Versions(policy: 2, draft: 1))
        return (m, first + second)
    }

    static func scraped(_ broker: BrokerMetrics) throws -> [MetricFamily] {
        try PrometheusTextParser.parse(broker.prometheusText())
    }

    @Test func acceptanceFiguresByPolicyVersionAndProposer() throws {
        var (worker, report) = Self.worker()
        var broker = BrokerMetrics()
        let ignored = broker.record(snapshot: worker.snapshot(full: false, current: Versions(policy: 2, draft: 1), rejections: .init()),
                                    worker: "worker-0")
        #expect(ignored.isEmpty)
        let families = try Self.scraped(broker)

        let byPolicy = MetricsQuery.rows(families, by: .policyVersion)
        #expect(byPolicy.map(\.key) == ["1", "2"])
        let v1 = byPolicy[0].stats
        // draft: 4 drafts, 15 drafted, 7 accepted; suffix: 2 drafts, 4 drafted, 2 accepted.
        #expect(v1.drafts == 6 && v1.draftTokens == 19 && v1.acceptedTokens == 9)
        #expect(abs(v1.acceptanceRate - 9.0 / 19.0) < 1e-12)
        #expect(abs(v1.meanAcceptanceLength - (1 + 9.0 / 6.0)) < 1e-12)
        // Position 1: (4,4) (4,2) (3,1) (2,2) = 4; 2: (4,4) (4,2) (2,2) = 3; 3 and 4: (4,4) = 1.
        #expect(v1.acceptedAtPosition == [4, 3, 1, 1])
        let sixths: [Double] = [4, 3, 1, 1].map { $0 / 6 }
        #expect(v1.perPositionAcceptance == sixths)
        #expect(byPolicy[0].generatedTokens == 40 && byPolicy[0].requests == 1 && byPolicy[0].tokensPerSecond == 20)
        #expect(byPolicy[1].stats.meanAcceptanceLength == 5 && byPolicy[1].tokensPerSecond == 10)

        let byProposer = MetricsQuery.rows(families, by: .proposer)
        #expect(byProposer.map(\.key) == ["draft", "suffix"])
        #expect(byProposer[0].stats.drafts == 5 && byProposer[0].stats.acceptedTokens == 11)
        #expect(byProposer[0].stats.acceptedAtPosition == [4, 3, 2, 2])
        // A request mixes proposers: its tokens and time belong to no single one.
        #expect(byProposer[0].generatedTokens == nil && byProposer[0].tokensPerSecond == nil)

        // The total agrees with the requests' own reports (what trajectories carry).
        let total = MetricsQuery.total(families)
        #expect(total.stats.drafts == report.overall.drafts)
        #expect(total.stats.draftTokens == report.overall.draftTokens)
        #expect(total.stats.acceptedTokens == report.overall.acceptedTokens)
        #expect(total.stats.acceptedAtPosition == report.overall.acceptedAtPosition)
        #expect(total.generatedTokens == 50 && total.generationSeconds == 3)

        let table = AcceptanceTable.text(byPolicy, total: total, by: .policyVersion)
        #expect(table.contains("p4") && table.contains("0.474") && table.contains("2.50") && table.contains("20.0"), "\(table)")
        let json = try AcceptanceTable.json(byProposer, total: total, by: .proposer)
        #expect(json.contains(#""by" : "proposer""#) && json.contains(#""meanAcceptanceLength" : 3.2"#), "\(json)")
    }

    @Test func snapshotsCarryChangedSeriesAndTheBrokerKeepsTheRest() throws {
        var (worker, _) = Self.worker()
        var broker = BrokerMetrics()
        let v = Versions(policy: 2, draft: 1)
        broker.record(snapshot: worker.snapshot(full: false, current: v, rejections: .init()), worker: "w")
        // Nothing changed: only the gauges travel, and the broker still exports every series.
        let quiet = worker.snapshot(full: false, current: v, rejections: .init())
        #expect(quiet.samples.allSatisfy { $0.kind == .gauge })
        broker.record(snapshot: quiet, worker: "w")
        #expect(MetricsQuery.total(try Self.scraped(broker)).stats.drafts == 7)
        // A full snapshot carries everything again.
        var fresh = Self.worker().0
        #expect(worker.snapshot(full: true, current: v, rejections: .init()).samples.count
                == fresh.snapshot(full: false, current: v, rejections: .init()).samples.count)
    }

    @Test func countersStayMonotoneAcrossWorkerRestarts() {
        let labels = [MetricLabel("proposer", "draft"), MetricLabel("policy_version", "1"), MetricLabel("draft_version", "0")]
        func snapshot(start: Double?, drafts value: Double) -> MetricsSnapshot {
            var samples = [MetricsSnapshot.Sample(name: MetricName.drafts, labels: labels, kind: .counter, value: value)]
            if let start { samples.append(.init(name: MetricName.processStartTime, kind: .gauge, value: start)) }
            return MetricsSnapshot(timestampUnixNanos: 0, samples: samples)
        }
        var broker = BrokerMetrics()
        var exported: [Double] = []
        for (start, value) in [(100.0, 10.0), (100, 15), (200, 3), (200, 5), (200, 2), (nil, 4)] as [(Double?, Double)] {
            broker.record(snapshot: snapshot(start: start, drafts: value), worker: "worker-0")
            exported.append(broker.value(MetricName.drafts, worker: "worker-0", labels: labels) ?? -1)
        }
        // 15 from the first process; the second counts 3, 5; then a series that went down
        // (2) without a new start time is a reset too: 15 + 5 + 2, then + 2 more.
        #expect(exported == [10, 15, 18, 20, 22, 24])
        // A restarted process that has not touched a series yet keeps it where it was.
        broker.record(snapshot: snapshot(start: 300, drafts: 0), worker: "worker-0")
        #expect(broker.value(MetricName.drafts, worker: "worker-0", labels: labels) == 24)
        #expect(broker.value(MetricName.processStartTime, worker: "worker-0") == 300)
    }

    @Test func foreignSamplesAreIgnoredAndWorkerLabelsAreTheBrokers() {
        var broker = BrokerMetrics()
        let ignored = broker.record(snapshot: MetricsSnapshot(timestampUnixNanos: 0, samples: [
            .init(name: "rollspec_unknown_total", kind: .counter, value: 1),
            .init(name: MetricName.drafts, kind: .gauge, value: 1),  // wrong kind
            .init(name: MetricName.generatedTokens,
                  labels: [MetricLabel("worker", "someone-else"), MetricLabel("policy_version", "1"), MetricLabel("draft_version", "0")],
                  kind: .counter, value: 7),
        ]), worker: "worker-3")
        #expect(ignored.count == 2)
        let text = broker.prometheusText()
        #expect(text.contains(#"rollspec_generated_tokens_total{worker="worker-3",draft_version="0",policy_version="1"} 7"#), "\(text)")
        #expect(!text.contains("someone-else"))
    }

    /// 100 policy versions, and a worker restart half-way: the exported series stay within the
    /// newest `policyVersionsKept` versions plus one folded `older` series, and the totals after
    /// every step are exactly what was recorded (counted here, not by the code under test).
    @Test func seriesStayBoundedOverManyPolicyVersionsAndTotalsAreExact() throws {
        var worker = WorkerMetrics(startTimeUnixSeconds: 1)
        var broker = BrokerMetrics()
        var drafts = 0, tokens = 0
        for version in 1...100 as ClosedRange<UInt64> {
            if version == 50 { worker = WorkerMetrics(startTimeUnixSeconds: 2) }  // the worker restarts
            var report = SpeculationReport()
            report.record(proposer: .draft, drafted: 3, accepted: 2)
            report.record(proposer: .suffix, drafted: 2, accepted: 1)
            let v = Versions(policy: version, draft: version / 3)
            worker.record(report: report, tokens: 7, seconds: 0.1, versions: v)
            drafts += 2
            tokens += 7
            broker.record(snapshot: worker.snapshot(full: version % 10 == 0, current: v, rejections: .init()), worker: "w")
            let t = Trajectory(requestID: "r\(version)", groupID: "g", sampleIndex: 0, promptTokens: [1], responseTokens: [2],
                               logprobs: [-1], finishReason: .stop, policyVersion: version, draftVersion: version / 3)
            broker.recordTrajectory(t, worker: "w", latencySeconds: nil)
            let families = try Self.scraped(broker)
            let total = MetricsQuery.total(families)
            #expect(total.stats.drafts == drafts && total.generatedTokens == tokens, "v\(version): \(total.stats.drafts) drafts, \(total.generatedTokens ?? -1) tokens")
            let delivered = families.first { $0.name == MetricName.trajectoriesDelivered }?.samples.map(\.value).reduce(0, +)
            #expect(delivered == Double(version))
        }
        let families = try Self.scraped(broker)
        let kept = MetricName.policyVersionsKept
        for name in [MetricName.drafts, MetricName.generatedTokens, MetricName.trajectoriesDelivered] {
            let samples = try #require(families.first { $0.name == name }).samples
            let policies = Set(samples.compactMap { $0[label: "policy_version"] })
            #expect(policies.count == kept + 1 && policies.contains(MetricName.olderVersions), "\(name): \(policies.sorted())")
        }
        #expect(MetricsQuery.rows(families, by: .policyVersion).last?.key == MetricName.olderVersions)
    }

    @Test func brokerExpositionGolden() {
        var broker = BrokerMetrics()
        var rejections = RejectionCounter()
        rejections.record(.checksum)
        rejections.record(.checksum)
        rejections.record(.sequenceReplayed)
        broker.recordRejections(rejections)
        broker.setRedelivery(redelivered: 2, resent: 1)
        broker.setErrorReplies(sent: 3, suppressed: 1)
        broker.setVersions(policy: 3, draft: 2)
        broker.setWorkersAlive(1)
        let t = Trajectory(requestID: "r", groupID: "g", sampleIndex: 0, promptTokens: [1], responseTokens: [2],
                           logprobs: [-1], finishReason: .stop, policyVersion: 3, draftVersion: 2)
        broker.recordTrajectory(t, worker: "worker-0", latencySeconds: 0.3)
        broker.recordTrajectory(t, worker: "worker-0", latencySeconds: 42)
        var worker = WorkerMetrics(startTimeUnixSeconds: 1_700_000_000)
        var report = SpeculationReport()
        report.record(proposer: .draft, drafted: 2, accepted: 1)
        worker.record(report: report, tokens: 2, seconds: 0.5, versions: .init(policy: 3, draft: 2))
        var workerRejections = RejectionCounter()
        workerRejections.record(.chunkDuplicate)
        broker.record(snapshot: worker.snapshot(full: false, current: .init(policy: 3, draft: 2), rejections: workerRejections),
                      worker: "worker-0")
        let expected = #"""
            # HELP rollspec_spec_decode_drafts_total Verifications of a non-empty draft.
            # TYPE rollspec_spec_decode_drafts_total counter
            rollspec_spec_decode_drafts_total{worker="worker-0",draft_version="2",policy_version="3",proposer="draft"} 1
            # HELP rollspec_spec_decode_draft_tokens_total Draft tokens proposed for verification.
            # TYPE rollspec_spec_decode_draft_tokens_total counter
            rollspec_spec_decode_draft_tokens_total{worker="worker-0",draft_version="2",policy_version="3",proposer="draft"} 2
            # HELP rollspec_spec_decode_accepted_tokens_total Draft tokens accepted by the policy.
            # TYPE rollspec_spec_decode_accepted_tokens_total counter
            rollspec_spec_decode_accepted_tokens_total{worker="worker-0",draft_version="2",policy_version="3",proposer="draft"} 1
            # HELP rollspec_spec_decode_accepted_tokens_per_position_total Drafts whose first `position` tokens were all accepted.
            # TYPE rollspec_spec_decode_accepted_tokens_per_position_total counter
            rollspec_spec_decode_accepted_tokens_per_position_total{worker="worker-0",draft_version="2",policy_version="3",position="1",proposer="draft"} 1
            rollspec_spec_decode_accepted_tokens_per_position_total{worker="worker-0",draft_version="2",policy_version="3",position="2",proposer="draft"} 0
            # HELP rollspec_generated_tokens_total Tokens generated (all samples of every request).
            # TYPE rollspec_generated_tokens_total counter
            rollspec_generated_tokens_total{worker="worker-0",draft_version="2",policy_version="3"} 2
            # HELP rollspec_generation_requests_total Rollout requests generated.
            # TYPE rollspec_generation_requests_total counter
            rollspec_generation_requests_total{worker="worker-0",draft_version="2",policy_version="3"} 1
            # HELP rollspec_generation_seconds_total Wall time spent generating requests (prefill and decode).
            # TYPE rollspec_generation_seconds_total counter
            rollspec_generation_seconds_total{worker="worker-0",draft_version="2",policy_version="3"} 0.5
            # HELP rollspec_process_start_time_seconds Unix time the worker process started.
            # TYPE rollspec_process_start_time_seconds gauge
            rollspec_process_start_time_seconds{worker="worker-0"} 1700000000
            # HELP rollspec_worker_policy_version Policy version the worker has loaded.
            # TYPE rollspec_worker_policy_version gauge
            rollspec_worker_policy_version{worker="worker-0"} 3
            # HELP rollspec_worker_draft_version Draft version the worker has loaded.
            # TYPE rollspec_worker_draft_version gauge
            rollspec_worker_draft_version{worker="worker-0"} 2
            # HELP rollspec_bus_rejected_messages_total Bus messages refused, by reason (without a worker label: refused by the broker).
            # TYPE rollspec_bus_rejected_messages_total counter
            rollspec_bus_rejected_messages_total{reason="checksum"} 2
            rollspec_bus_rejected_messages_total{reason="sequence_replayed"} 1
            rollspec_bus_rejected_messages_total{worker="worker-0",reason="chunk_duplicate"} 1
            # HELP rollspec_bus_error_replies_total Refused messages the broker answered with an error message (outcome="sent"), and those left unanswered because their connection had used its replies for that second (outcome="suppressed").
            # TYPE rollspec_bus_error_replies_total counter
            rollspec_bus_error_replies_total{outcome="sent"} 3
            rollspec_bus_error_replies_total{outcome="suppressed"} 1
            # HELP rollspec_trajectories_delivered_total Trajectories delivered to the client (each once).
            # TYPE rollspec_trajectories_delivered_total counter
            rollspec_trajectories_delivered_total{worker="worker-0",policy_version="3",draft_version="2"} 2
            # HELP rollspec_requests_redelivered_total Requests dispatched again because their worker died.
            # TYPE rollspec_requests_redelivered_total counter
            rollspec_requests_redelivered_total 2
            # HELP rollspec_trajectories_resent_total Trajectories sent again because the client had not acked them in time.
            # TYPE rollspec_trajectories_resent_total counter
            rollspec_trajectories_resent_total 1
            # HELP rollspec_rollout_latency_seconds Seconds from a request's first dispatch to each of its trajectories.
            # TYPE rollspec_rollout_latency_seconds histogram
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="0.1"} 0
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="0.25"} 0
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="0.5"} 1
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="1"} 1
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="2.5"} 1
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="5"} 1
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="10"} 1
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="25"} 1
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="50"} 2
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="100"} 2
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="250"} 2
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="500"} 2
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="1000"} 2
            rollspec_rollout_latency_seconds_bucket{worker="worker-0",le="+Inf"} 2
            rollspec_rollout_latency_seconds_sum{worker="worker-0"} 42.3
            rollspec_rollout_latency_seconds_count{worker="worker-0"} 2
            # HELP rollspec_policy_version Newest policy version the broker holds.
            # TYPE rollspec_policy_version gauge
            rollspec_policy_version 3
            # HELP rollspec_draft_version Newest draft version the broker holds.
            # TYPE rollspec_draft_version gauge
            rollspec_draft_version 2
            # HELP rollspec_workers_alive Workers whose heartbeats the broker currently receives.
            # TYPE rollspec_workers_alive gauge
            rollspec_workers_alive 1

            """#
        #expect(broker.prometheusText() == expected)
    }
}
