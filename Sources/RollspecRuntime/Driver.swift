import Foundation
import RollspecBus
import RollspecModel

/// A stand-in for the learner: publishes a built-in policy (and draft), submits rollout
/// requests, collects and acks the trajectories and checks that every (request, sample) came
/// exactly once.
public final class Driver {
    public let config: JobConfig

    /// What a driver run saw; printed as one JSON line.
    public struct Summary: Codable, Sendable, Equatable {
        public var requests: Int
        public var samples: Int
        public var received: Int
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

    private let connection: BrokerConnection
    private var rejections = RejectionCounter()

    public init(config: JobConfig, index: Int = 0) throws {
        self.config = config
        connection = try BrokerConnection(endpoint: config.endpoint, sender: "driver-\(index)", security: config.security)
    }

    /// Runs the job and returns the summary (`ok` is false on timeout or missing samples).
    public func run() throws -> Summary {
        let d = config.driver
        let start = now()
        try connection.send(Heartbeat(role: .learner, index: 0, status: .ready, credit: 0, policyVersion: 1, draftVersion: 0))
        try publishPolicy(version: 1, weights: BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: d.seed))
        if d.publishDraft {
            try publishDraft(version: 1, weights: BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: d.seed &+ 100))
        }
        let tokenizer = ByteTokenizer()
        for i in 0..<d.requests {
            try connection.send(RolloutRequest(
                requestID: "r\(i)", groupID: "g\(i)", promptTokens: tokenizer.encode("prompt \(i): ").map { Int32($0) },
                n: UInt32(d.samples), temperature: config.sampling.temperature, topK: UInt32(config.sampling.topK),
                topP: config.sampling.topP, maxTokens: UInt32(config.sampling.maxTokens),
                seed: d.seed &* 1_000_003 &+ UInt64(i)))
        }

        let expected = d.requests * d.samples
        var seen: Set<String> = []
        var duplicates = 0, tokens = 0, drafted: UInt64 = 0, accepted: UInt64 = 0
        var policyVersions: [String: Int] = [:], draftVersions: [String: Int] = [:]
        var publishedMidRun = false
        while seen.count < expected, now() - start < d.timeoutSeconds {
            guard let envelope = try connection.receive(timeout: 0.2, rejections: &rejections),
                  case .trajectory(let t) = envelope.body else { continue }
            let key = sampleKey(t.requestID, t.sampleIndex)
            try connection.send(Ack(sequence: envelope.sequence, requestID: key))
            guard seen.insert(key).inserted else { duplicates += 1; continue }
            tokens += t.responseTokens.count
            drafted += t.acceptance.draftedTokens
            accepted += t.acceptance.acceptedTokens
            policyVersions["\(t.policyVersion)", default: 0] += 1
            draftVersions["\(t.draftVersion)", default: 0] += 1
            log("driver: \(key) policy v\(t.policyVersion) draft v\(t.draftVersion) \(t.responseTokens.count) tokens (\(seen.count)/\(expected))")
            if d.draftMidRun, !publishedMidRun, seen.count >= max(1, expected / 4) {
                publishedMidRun = true
                try publishDraft(version: 2, weights: BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: d.seed &+ 200))
            }
        }
        let missing = expected - seen.count
        return Summary(
            requests: d.requests, samples: d.samples, received: seen.count, duplicates: duplicates, missing: missing,
            seconds: now() - start, policyVersions: policyVersions, draftVersions: draftVersions, tokens: tokens,
            acceptanceRate: drafted == 0 ? 0 : Double(accepted) / Double(drafted), ok: missing == 0)
    }

    /// Chunks are kept small (64 KiB) so that even the tiny built-in models travel in several.
    private func publishPolicy(version: UInt64, weights: LlamaWeights) throws {
        for chunk in WeightsChunk.split(try CheckpointCodec.encode(weights), chunkSize: 64 << 10) {
            try connection.send(PolicyCheckpointChunk(version: version, chunk: chunk))
        }
        log("driver: published policy v\(version)")
    }

    private func publishDraft(version: UInt64, weights: LlamaWeights) throws {
        for chunk in WeightsChunk.split(try CheckpointCodec.encode(weights), chunkSize: 64 << 10) {
            try connection.send(DraftWeightsChunk(draftVersion: version, policyVersion: 1, acceptanceRate: 0, chunk: chunk))
        }
        log("driver: published draft v\(version)")
    }
}
