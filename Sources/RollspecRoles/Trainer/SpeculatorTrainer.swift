import Foundation
import Logging
import RollspecBus
import RollspecClient
import RollspecKernels
import RollspecLogging
import RollspecModel
import RollspecTraining

/// The speculator trainer: keeps a buffer of the newest trajectories, trains the draft on them,
/// and publishes a new draft version only when its acceptance on held-out recent trajectories
/// beats the draft the workers have.
///
/// It trains whatever kind of draft the workers have (the kind of the last draft published on
/// the bus, or a token draft made from the policy's first layers when there is none): a
/// token-level draft by cross-entropy on the tokens the policy sampled, a feature-level (EAGLE)
/// draft by `FeatureDraftTrainer` on the policy's final-norm features at the trajectory's
/// positions. Trajectories do not carry features; the trainer receives every policy checkpoint
/// and recomputes them with one forward of the newest policy over prompt + response (see
/// docs/wire-protocol.md, "Features for feature drafts", for the cost against shipping them).
/// The draft's KL target, the policy's next-token distribution, is the policy's head applied to
/// the same features, which `FeatureDraftTrainer` does itself.
///
/// The held-out score of both kinds is `Loss.sampledAcceptance`: E_{x~p}[min(1, q(x)/p(x))]
/// over the held-out trajectories' response tokens, with p the policy's recorded probability
/// of each sampled token and q the draft's under the same temperature, top-k and top-p, which
/// every trajectory carries (the distribution the workers' verifier compares).
///
/// Under `trainer.priority: idle` (the default) the `trainer` command runs it at nice 19: it
/// trains on the cores the workers and the learner leave idle, so rollouts do not slow down
/// because it exists.
///
/// Recency weighting: training batches draw trajectory a (0 = newest) with weight
/// `recencyDecay^a`; the newest `heldOutFraction` of the buffer is never trained on and is
/// the evaluation set. Every publication is saved to `stateDirectory` (the draft, optimiser
/// state and `trainer.json` with the version), and a restarted trainer resumes from it.
public final class SpeculatorTrainer {
    public let config: JobConfig
    public let index: Int
    public private(set) var rejections = RejectionCounter()

    private struct State: Codable { var draftVersion: UInt64; var acceptance: Double }

    /// The draft being trained, of the kind the workers' draft has.
    private enum Candidate {
        case tokens(DraftTrainer)
        /// Bound to the embedding and head of policy `policyVersion`.
        case eagle(FeatureDraftTrainer, policyVersion: UInt64)
        /// A feature draft not yet bound: it arrived (or was resumed) before the policy it
        /// needs was decoded. `optimizerState` is a saved AdamW state to restore on binding.
        case unboundEagle(FeatureDraftTensors, optimizerState: URL?)

        var kind: DraftKind {
            switch self {
            case .tokens: .tokens
            case .eagle, .unboundEagle: .eagle
            }
        }
    }

    /// The newest policy, decoded, for recomputing features.
    private struct Policy {
        var version: UInt64
        var weights: LlamaWeights
        var model: LlamaModel
    }

    private let connection: BrokerConnection
    private var policyAssembler = ChunkReassembler()
    private var draftAssembler = ChunkReassembler()
    private var candidate: Candidate?
    /// The draft the workers have, as artifact bytes (decoded afresh for each evaluation).
    private var baseline: Data?
    private var baselineVersion: UInt64 = 0 { didSet { versions.set(draft: baselineVersion) } }
    private var policyVersion: UInt64 = 0 { didSet { versions.set(policy: policyVersion) } }
    /// The newest policy and the workers' draft (the one to beat), on every line the trainer logs.
    private let versions = HeldVersions()
    private let logger: Logger
    /// The newest policy's artifact, decoded only when a feature draft needs it.
    private var policyArtifact: Data?
    private var policy: Policy?
    /// Features of trajectories under `policy`, by trajectory key; emptied when it changes.
    private var featureCache: [SampleKey: [Float]] = [:]
    /// Each prompt's features and KV cache under `policy`, so that a GRPO group's trajectories
    /// run their shared prompt once; emptied when the policy changes or past `maxPrompts`.
    private var promptStates: [[Int32]: PromptState] = [:]
    static let maxPrompts = 256
    /// Time spent recomputing features and trajectories recomputed, since the last round's log.
    private var featureSeconds = 0.0, featureCount = 0
    private var buffer: [Trajectory] = []
    private var newSinceRound = 0
    /// Trajectories received since start (reported in heartbeats).
    private var trajectoriesTaken: UInt64 = 0
    private var rng = RandomSource(seed: 12345)
    private var lastHeartbeat = 0.0
    private var stateDirectory: URL { URL(fileURLWithPath: config.trainer.stateDirectory) }

    public init(config: JobConfig, index: Int) throws {
        self.config = config
        self.index = index
        logger = .role("trainer", index: index, label: "trainer-\(index)", versions: versions)
        connection = try BrokerConnection(endpoint: config.endpoint, sender: "trainer-\(index)", security: config.security,
                                          logger: logger)
    }

    private var optimizer: AdamWConfig { AdamWConfig(schedule: .constant(config.trainer.learningRate)) }

    /// Serves until the process is stopped.
    public func run() throws {
        try resume()
        while true {
            while let envelope = try connection.receive(timeout: 0.05, rejections: &rejections) { handle(envelope) }
            if now() - lastHeartbeat >= config.heartbeatIntervalSeconds {
                lastHeartbeat = now()
                // requestsCompleted = trajectories taken in: the broker samples our copies when we fall behind.
                try connection.send(Heartbeat(role: .trainer, index: UInt32(index), status: .ready, credit: 0,
                                              policyVersion: policyVersion, draftVersion: baselineVersion,
                                              stats: Heartbeat.Stats(requestsCompleted: trajectoriesTaken)))
            }
            if candidate != nil, buffer.count >= config.trainer.minTrajectories, newSinceRound >= config.trainer.batchSize {
                try round()
            }
        }
    }

    private func resume() throws {
        let stateFile = stateDirectory.appendingPathComponent("trainer.json")
        guard let data = FileManager.default.contents(atPath: stateFile.path),
              let state = try? JSONDecoder().decode(State.self, from: data) else { return }
        if FeatureDraftWeights.isFeatureDraft(path: stateDirectory.path) {
            let own = try FeatureDraftTensors.load(directory: stateDirectory)
            candidate = .unboundEagle(own, optimizerState: stateDirectory.appendingPathComponent(AdamW.fileName))
            baseline = try CheckpointCodec.encode(.eagle(own))
        } else {
            let resumed = try DraftTrainer.resume(from: stateDirectory, optimizer: optimizer)
            candidate = .tokens(resumed)
            baseline = try CheckpointCodec.encode(.tokens(resumed.weights))
        }
        baselineVersion = state.draftVersion
        logger.event(.trainerResumed, "resumed from draft v\(state.draftVersion) in \(stateDirectory.path)",
                     ["version": .stringConvertible(state.draftVersion), "directory": .string(stateDirectory.path)])
    }

    private func handle(_ envelope: Envelope) {
        do {
            switch envelope.body {
            case .policyCheckpointChunk(let m):
                guard let whole = try policyAssembler.add(m.chunk, version: m.version) else { return }
                policyVersion = m.version
                policyArtifact = whole
                if candidate == nil, baseline == nil {
                    // No draft anywhere yet: start from the policy's first layers.
                    let policy = try CheckpointCodec.decode(whole)
                    let layers = Array(0..<min(config.trainer.draftLayers, policy.config.numHiddenLayers))
                    candidate = .tokens(DraftTrainer(weights: DraftFactory.fromTarget(policy, layers: layers), optimizer: optimizer))
                    logger.event(.draftStarted, "starting from layers \(layers) of policy v\(m.version)",
                                 ["layers": .array(layers.map { .stringConvertible($0) })])
                }
            case .draftWeightsChunk(let m):
                guard let whole = try draftAssembler.add(m.chunk, version: m.draftVersion) else { return }
                guard m.draftVersion > baselineVersion else { return }  // ours, or older
                // Someone else's newer draft is what the workers now have: train from it, as its kind.
                let draft = try CheckpointCodec.decodeDraft(whole, name: "draft v\(m.draftVersion)")
                switch draft {
                case .tokens(let weights): candidate = .tokens(DraftTrainer(weights: weights, optimizer: optimizer))
                case .eagle(let own): candidate = .unboundEagle(own, optimizerState: nil)
                }
                baseline = whole
                baselineVersion = m.draftVersion
                logger.event(.draftAdopted, "adopted draft v\(m.draftVersion) (\(draft.kind.rawValue))",
                             ["version": .stringConvertible(m.draftVersion), "kind": .string(draft.kind.rawValue)])
            case .trajectory(let t):
                buffer.append(t)
                trajectoriesTaken += 1
                if buffer.count > config.trainer.bufferSize { buffer.removeFirst(buffer.count - config.trainer.bufferSize) }
                newSinceRound += 1
            default:
                break
            }
        } catch {
            rejections.record(error)
            logger.event(.messageRejected, "rejected \(envelope.body.type): \(error)",
                         ["type": "\(envelope.body.type)", "reason": .string(RejectionReason(error).rawValue)], error: error)
        }
    }

    /// The loss mask of a trajectory: position i predicts tokens[i + 1], so the positions
    /// whose next token is a response token count.
    static func responseMask(_ t: Trajectory) -> [Bool] {
        let count = t.promptTokens.count + t.responseTokens.count
        return (0..<count).map { $0 >= t.promptTokens.count - 1 && $0 < count - 1 }
    }

    /// The sampling a trajectory's tokens were drawn with and its logprobs are of.
    static func sampling(_ t: Trajectory) -> SamplingParameters {
        SamplingParameters(temperature: t.temperature, topK: Int(t.topK), topP: t.topP)
    }

    static func example(_ t: Trajectory) -> TrainingExample {
        TrainingExample(tokens: (t.promptTokens + t.responseTokens).map(Int.init), lossMask: responseMask(t))
    }

    /// The newest policy, decoded (once per version).
    private func currentPolicy() throws -> Policy {
        if let policy, policy.version == policyVersion { return policy }
        guard let policyArtifact else { throw CheckpointCodecError.malformed("no policy received yet") }
        let weights = try CheckpointCodec.decode(policyArtifact, name: "policy v\(policyVersion)")
        // The workers' precision: drafts learn the distribution they are checked against.
        let model = LlamaModel(weights: weights, precision: config.models.precision)
        let decoded = Policy(version: policyVersion, weights: model.weights, model: model)
        policy = decoded
        featureCache = [:]
        promptStates = [:]
        return decoded
    }

    /// The policy's final-norm feature at every position of `t` but the last, `[T − 1, C]`:
    /// one forward over prompt + response without its last token. Only the last row's logits
    /// are computed: the draft's KL target is the head applied to these features. Given its
    /// prompt's state under the same policy (`promptState(_:policy:)`), only the response runs,
    /// on a copy of the prompt's KV cache.
    static func features(of t: Trajectory, policy: LlamaModel, prompt: PromptState? = nil) -> [Float] {
        guard let prompt, !t.responseTokens.isEmpty else {
            let tokens = (t.promptTokens + t.responseTokens).map(Int.init)
            let cache = policy.makeCache(capacity: tokens.count)
            let out = policy.forward([ForwardSegment(tokens: Array(tokens.dropLast()), cache: cache)], logits: .last, features: true)
            return out.features!.array
        }
        let rest = t.responseTokens.dropLast().map(Int.init)
        if rest.isEmpty { return prompt.features }
        let out = policy.forward([ForwardSegment(tokens: rest, cache: prompt.cache.fork())], logits: .last, features: true)
        return prompt.features + out.features!.array
    }

    /// A prompt's features at every one of its positions, and the KV cache after it.
    struct PromptState {
        var features: [Float]
        var cache: KVCache
    }

    /// Runs `prompt` (non-empty) through `policy` once, for `features(of:policy:prompt:)`.
    static func promptState(_ prompt: [Int32], policy: LlamaModel) -> PromptState {
        let cache = policy.makeCache(capacity: prompt.count)
        let out = policy.forward([ForwardSegment(tokens: prompt.map(Int.init), cache: cache)], logits: .last, features: true)
        return PromptState(features: out.features!.array, cache: cache)
    }

    private func featureExample(_ t: Trajectory, policy: Policy) -> FeatureExample {
        FeatureExample(tokens: (t.promptTokens + t.responseTokens).map(Int.init),
                       features: featureCache[t.key] ?? recomputedFeatures(of: t, policy: policy),
                       lossMask: Self.responseMask(t))
    }

    /// Recomputes `t`'s features and caches them; its prompt runs only if no trajectory of
    /// the same prompt ran it under this policy.
    private func recomputedFeatures(of t: Trajectory, policy: Policy) -> [Float] {
        let start = now()
        var prompt: PromptState?
        if !t.promptTokens.isEmpty, !t.responseTokens.isEmpty {
            prompt = promptStates[t.promptTokens]
            if prompt == nil {
                if promptStates.count >= Self.maxPrompts { promptStates = [:] }
                prompt = Self.promptState(t.promptTokens, policy: policy.model)
                promptStates[t.promptTokens] = prompt
            }
        }
        let features = Self.features(of: t, policy: policy.model, prompt: prompt)
        featureSeconds += now() - start
        featureCount += 1
        featureCache[t.key] = features
        return features
    }

    /// A feature-draft trainer bound to `policy`: binds an unbound draft, or moves a bound one
    /// onto the newer policy's embedding and head (keeping its optimiser state).
    private func bind(_ candidate: Candidate, to policy: Policy) throws -> FeatureDraftTrainer? {
        switch candidate {
        case .tokens: return nil
        case .eagle(let trainer, let version):
            return version == policy.version ? trainer : try trainer.rebound(to: policy.weights)
        case .unboundEagle(let own, let state):
            let trainer = FeatureDraftTrainer(draft: try own.bound(to: policy.weights), optimizer: optimizer,
                                              products: config.resolvedTrainerPrecision)
            if let state, FileManager.default.fileExists(atPath: state.path) { try trainer.optimizer.load(from: state) }
            return trainer
        }
    }

    /// The held-out acceptance of a draft: `Loss.sampledAcceptance` over the response tokens
    /// of `heldOut`, given the draft's probability of each next token.
    static func heldOutAcceptance(_ heldOut: [Trajectory], _ probabilities: [NextTokenProbability]) -> Double {
        var q: [Float] = [], logprobs: [Float] = []
        for p in probabilities {
            let t = heldOut[p.example]
            let j = p.position - (t.promptTokens.count - 1)  // index of tokens[position + 1] in the response
            guard j >= 0 && j < t.logprobs.count else { continue }
            q.append(p.probability)
            logprobs.append(t.logprobs[j])
        }
        return Loss.sampledAcceptance(draftProbabilities: q, logprobs: logprobs)
    }

    private func round() throws {
        guard var candidate else { return }
        newSinceRound = 0
        let heldOutCount = max(1, Int(Double(buffer.count) * config.trainer.heldOutFraction))
        let train = Array(buffer.dropLast(heldOutCount)), heldOut = Array(buffer.suffix(heldOutCount))
        guard !train.isEmpty else { return }
        // Recency weights over the training part; its last element is the newest.
        let weights = train.indices.map { pow(config.trainer.recencyDecay, Double(train.count - 1 - $0)) }
        let total = weights.reduce(0, +)
        func draw() -> Trajectory {
            var u = rng.nextUnit() * total
            for (i, w) in weights.enumerated() { u -= w; if u <= 0 { return train[i] } }
            return train[train.count - 1]
        }
        let steps = config.trainer.stepsPerRound, batchSize = config.trainer.batchSize
        var loss: Float = 0
        var stepSeconds = 0.0  // the optimiser steps alone: features and evaluations not included
        func timed(_ step: () -> Void) { let start = now(); step(); stepSeconds += now() - start }
        let candidateScore: Double, current: Double, artifact: Data
        // Drafts are scored at each trajectory's own sampling, as the workers verify them.
        let sampling = heldOut.map(Self.sampling)
        switch candidate {
        case .tokens(let trainer):
            for _ in 0..<steps {
                let batch = (0..<batchSize).map { _ in Self.example(draw()) }
                timed { loss = trainer.step(batch).loss }
            }
            let held = heldOut.map(Self.example)
            candidateScore = Self.heldOutAcceptance(heldOut, trainer.nextTokenProbabilities(held, sampling: sampling))
            current = try baseline.map { data -> Double in
                guard case .tokens(let w) = try CheckpointCodec.decodeDraft(data) else { return 0 }
                return Self.heldOutAcceptance(
                    heldOut, DraftTrainer(weights: w, optimizer: optimizer).nextTokenProbabilities(held, sampling: sampling))
            } ?? 0
            artifact = try CheckpointCodec.encode(.tokens(trainer.weights))
        case .eagle, .unboundEagle:
            let policy = try currentPolicy()
            guard let trainer = try bind(candidate, to: policy) else { return }
            candidate = .eagle(trainer, policyVersion: policy.version)
            self.candidate = candidate
            let held = heldOut.map { featureExample($0, policy: policy) }
            for _ in 0..<steps {
                let batch = (0..<batchSize).map { _ in featureExample(draw(), policy: policy) }
                timed { loss = trainer.step(batch).loss }
            }
            candidateScore = Self.heldOutAcceptance(heldOut, trainer.nextTokenProbabilities(held, sampling: sampling))
            current = try baseline.map { data -> Double in
                guard case .eagle(let own) = try CheckpointCodec.decodeDraft(data) else { return 0 }
                let workers = FeatureDraftTrainer(draft: try own.bound(to: policy.weights), optimizer: optimizer,
                                                  products: config.resolvedTrainerPrecision)
                return Self.heldOutAcceptance(heldOut, workers.nextTokenProbabilities(held, sampling: sampling))
            } ?? 0
            artifact = try CheckpointCodec.encode(.eagle(trainer.draft.ownTensors))
        }
        var recompute = ""
        var round: Logger.Metadata = [
            "kind": .string(candidate.kind.rawValue), "loss": .stringConvertible(loss),
            "acceptance": .stringConvertible(candidateScore), "workers_acceptance": .stringConvertible(current),
            "step_seconds": .stringConvertible(stepSeconds / Double(steps)),
        ]
        if featureCount > 0 {
            let each = featureSeconds * 1000 / Double(featureCount)
            recompute = String(format: "; features recomputed for %d trajectories, %.1f ms each", featureCount, each)
            round["features_recomputed"] = .stringConvertible(featureCount)
            round["feature_ms"] = .stringConvertible(each)
            featureSeconds = 0
            featureCount = 0
        }
        let line = "round (\(candidate.kind.rawValue) draft): "
            + String(format: "loss %.3f, held-out acceptance %.4f (workers' draft %.4f); %d steps, %.0f ms each",
                     loss, candidateScore, current, steps, stepSeconds * 1000 / Double(steps)) + recompute
        logger.event(.trainingRound, "\(line)", round)
        guard candidateScore > current + config.trainer.minImprovement else { return }
        let version = max(baselineVersion, draftAssembler.version ?? 0) + 1
        for chunk in WeightsChunk.split(artifact) {
            try connection.send(DraftWeightsChunk(draftVersion: version, policyVersion: policyVersion,
                                                  acceptanceRate: candidateScore, chunk: chunk))
        }
        baseline = artifact
        baselineVersion = version
        switch candidate {
        case .tokens(let trainer): try trainer.save(to: stateDirectory)
        case .eagle(let trainer, _):
            try trainer.save(to: stateDirectory)
            try trainer.optimizer.save(to: stateDirectory.appendingPathComponent(AdamW.fileName))
        case .unboundEagle: break
        }
        try JSONEncoder().encode(State(draftVersion: version, acceptance: candidateScore))
            .write(to: stateDirectory.appendingPathComponent("trainer.json"), options: .atomic)
        let published = String(format: "published draft v\(version), held-out acceptance %.4f (was %.4f), ", candidateScore, current)
            + "\(candidate.kind.rawValue) draft"
        logger.event(.draftPublished, "\(published)",
                     ["version": .stringConvertible(version), "kind": .string(candidate.kind.rawValue),
                      "acceptance": .stringConvertible(candidateScore), "previous_acceptance": .stringConvertible(current)])
    }
}
