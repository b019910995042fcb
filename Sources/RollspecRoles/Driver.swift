import Foundation
import Logging
import RollspecBus
import RollspecClient
import RollspecLogging
import RollspecModel

/// A stand-in for the learner: publishes a built-in policy (and draft), submits rollout
/// requests through a `RolloutClient`, collects the trajectories and checks that every
/// (request, sample) came exactly once.
public final class Driver {
    public let config: JobConfig

    /// What a driver run saw; printed as one JSON line.
    public struct Summary: Codable, Sendable, Equatable {
        public var requests: Int
        public var samples: Int
        public var received: Int
        /// Trajectories that arrived more than once (the client drops the copies).
        public var duplicates: Int
        public var missing: Int
        public var seconds: Double
        /// Trajectories per policy version / draft version (keys are the versions as text).
        public var policyVersions: [String: Int]
        public var draftVersions: [String: Int]
        public var tokens: Int
        public var acceptanceRate: Double
        public var ok: Bool
    }

    private let client: RolloutClient
    private let logger: Logger

    public init(config: JobConfig, index: Int = 0) throws {
        self.config = config
        logger = .role("driver", index: index, label: "driver")
        client = try RolloutClient(endpoint: config.endpoint, name: "driver-\(index)", security: config.security,
                                   role: .learner, heartbeatIntervalSeconds: config.heartbeatIntervalSeconds, logger: logger)
        // Small chunks, so that even the tiny built-in models travel in several.
        client.chunkSize = 64 << 10
    }

    /// Runs the job and returns the summary (`ok` is false on timeout or missing samples).
    public func run() throws -> Summary {
        let d = config.driver
        let start = now()
        defer { client.close() }
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: d.seed)
        // In the precision the workers run it at, as the learner publishes it.
        try client.publishPolicy(policy, version: 1, dtype: config.models.precision.checkpointDType)
        logger.event(.policyPublished, "published policy v1", ["version": .stringConvertible(1)])
        if d.publishDraft {
            // Untied: with tied embeddings two random models both mostly repeat the last token
            // and agree far more than unrelated models should.
            var unrelated = BuiltinModels.draftConfig()
            unrelated.tieWordEmbeddings = false
            try client.publishDraft(BuiltinModels.randomWeights(config: unrelated, seed: d.seed &+ 100),
                                    version: 1, policyVersion: 1)
            logger.event(.draftPublished, "published draft v1", ["version": .stringConvertible(1)])
        }
        let tokenizer = ByteTokenizer()
        for i in 0..<d.requests {
            client.submit(RolloutRequest(
                requestID: "r\(i)", groupID: "g\(i)", promptTokens: tokenizer.encode("prompt \(i): ").map { Int32($0) },
                n: UInt32(d.samples), temperature: config.sampling.temperature, topK: UInt32(config.sampling.topK),
                topP: config.sampling.topP, maxTokens: UInt32(config.sampling.maxTokens),
                seed: d.seed &* 1_000_003 &+ UInt64(i)))
        }

        let expected = d.requests * d.samples
        // The client delivers each (request, sample) once; a second copy is only counted.
        var seen: Set<SampleKey> = []
        var unexpected = 0, tokens = 0, acceptance = AcceptanceCounts()
        var policyVersions: [String: Int] = [:], draftVersions: [String: Int] = [:]
        var publishedMidRun = false
        while seen.count < expected, now() - start < d.timeoutSeconds {
            for t in client.collect(count: 1, timeout: min(0.2, max(0, d.timeoutSeconds - (now() - start)))) {
                let key = t.key
                guard seen.insert(key).inserted else { unexpected += 1; continue }
                tokens += t.responseTokens.count
                acceptance.add(t.acceptance)
                policyVersions["\(t.policyVersion)", default: 0] += 1
                draftVersions["\(t.draftVersion)", default: 0] += 1
                logger.event(.trajectoryReceived,
                             "\(key) policy v\(t.policyVersion) draft v\(t.draftVersion) \(t.responseTokens.count) tokens (\(seen.count)/\(expected))",
                             ["request": .string(key.requestID), "sample": .stringConvertible(key.sampleIndex), "trajectory_policy_version": .stringConvertible(t.policyVersion),
                              "trajectory_draft_version": .stringConvertible(t.draftVersion),
                              "tokens": .stringConvertible(t.responseTokens.count), "received": .stringConvertible(seen.count),
                              "expected": .stringConvertible(expected)])
                if d.draftMidRun, !publishedMidRun, seen.count >= max(1, expected / 4) {
                    publishedMidRun = true
                    // `policy`: a copy of the policy, the best possible draft; `random`: another random one.
                    let draft = d.midRunDraft == "policy"
                        ? policy : BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: d.seed &+ 200)
                    try client.publishDraft(draft, version: 2, policyVersion: 1)
                    logger.event(.draftPublished, "published draft v2 (\(d.midRunDraft))",
                                 ["version": .stringConvertible(2), "source": .string(d.midRunDraft)])
                }
            }
        }
        let missing = expected - seen.count
        return Summary(
            requests: d.requests, samples: d.samples, received: seen.count, duplicates: client.duplicates + unexpected,
            missing: missing, seconds: now() - start, policyVersions: policyVersions, draftVersions: draftVersions,
            tokens: tokens, acceptanceRate: acceptance.acceptanceRate, ok: missing == 0)
    }
}
