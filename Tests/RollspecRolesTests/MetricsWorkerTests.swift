import Foundation
import RollspecBus
import RollspecModel
@testable import RollspecClient
@testable import RollspecRoles
import RollspecSpeculation
import RollspecTesting
import Testing

/// A worker's own counting path (`RolloutWorker+Metrics`) on real speculative generation,
/// scraped over HTTP: the endpoint's figures equal the sums of the trajectories' statistics.
@Suite struct MetricsWorkerTests {
    @Test func scrapedCountersMatchTheTrajectoriesOwnStatistics() async throws {
        var config = JobConfig()
        // The worker's socket connects lazily; nothing is sent in this test.
        config.endpoint = "ipc://\(FileManager.default.temporaryDirectory.path)/rollspec-metrics-\(UUID().uuidString).sock"
        let worker = try RolloutWorker(config: config, index: 0)
        let policy = TinyModels.randomModel(seed: 0)
        let draft = TinyModels.randomModel(seed: 1)
        let suffix = SuffixIndex()

        // What each trajectory would carry, summed per policy version.
        var fromTrajectories: [UInt64: (counts: AcceptanceCounts, tokens: Int)] = [:]
        for (policyVersion, draftVersion) in [(UInt64(1), UInt64(0)), (1, 1), (2, 1)] {
            let generator = SpeculativeGenerator(model: policy, controller: SpeculationController(maxLookahead: 4)) {
                [DraftModelProposer(model: draft), SuffixProposer(global: suffix)]
            }
            let requests = (0..<3).map { i in
                GenerationRequest(prompt: [1, 2, 3, 1, 2, 3], maxTokens: 24,
                                  sampling: SamplingParameters(temperature: 0.8, topK: 0, topP: 1, seed: UInt64(i) + policyVersion * 10))
            }
            let outputs = try generator.generateBatch(requests)
            worker.recordMetrics(outputs, requests: 1, policyVersion: policyVersion, draftVersion: draftVersion)
            for out in outputs {
                let s = out.report.overall
                var sum = fromTrajectories[policyVersion] ?? (AcceptanceCounts(), 0)
                sum.counts.drafts += UInt64(s.drafts)
                sum.counts.draftedTokens += UInt64(s.draftTokens)
                sum.counts.acceptedTokens += UInt64(s.acceptedTokens)
                for (i, n) in s.acceptedAtPosition.enumerated() {
                    if sum.counts.acceptedPerPosition.count <= i { sum.counts.acceptedPerPosition.append(0) }
                    sum.counts.acceptedPerPosition[i] += UInt64(n)
                }
                sum.tokens += out.result.tokens.count
                fromTrajectories[policyVersion] = sum
            }
        }

        let hub = MetricsHub()
        let snapshot = worker.takeMetricsSnapshot(policyVersion: 2, draftVersion: 1)
        hub.update { #expect($0.record(snapshot: snapshot, worker: "worker-0").isEmpty) }
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0) { hub.prometheusText() }
        defer { server.stopSoon() }
        let url = server.url
        let (rows, _) = try await MetricsServerTests.offPool { try MetricsQuery.scrape(url: url, by: .policyVersion, timeout: 5) }

        #expect(rows.map(\.key) == ["1", "2"])
        for row in rows {
            let expected = fromTrajectories[UInt64(row.key)!]!
            #expect(UInt64(row.stats.drafts) == expected.counts.drafts)
            #expect(UInt64(row.stats.draftTokens) == expected.counts.draftedTokens)
            #expect(UInt64(row.stats.acceptedTokens) == expected.counts.acceptedTokens)
            #expect(row.stats.acceptedAtPosition.map { UInt64($0) } == expected.counts.acceptedPerPosition)
            #expect(row.generatedTokens == expected.tokens)
            #expect(row.requests == (row.key == "1" ? 2 : 1))
        }
        // Speculation happened at all, or the comparison above proves little.
        #expect(rows.allSatisfy { $0.stats.drafts > 0 })
    }
}
