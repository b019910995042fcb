import Foundation
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

/// `Loss.sampledAcceptance`, the speculator trainer's held-out score: E_{x~p}[min(1, q(x)/p(x))]
/// from the policy's own samples and logprobs.
@Suite struct SampledAcceptanceTests {
    @Test func matchesAHandComputation() {
        // q/p = 0.5/0.25 = 2 → 1; 0.1/0.2 = 0.5; 0.9/0.9 = 1; 0/0.5 = 0. Mean (1 + 0.5 + 1 + 0) / 4.
        let q: [Float] = [0.5, 0.1, 0.9, 0]
        let logprobs = [0.25, 0.2, 0.9, 0.5].map { Float(log($0)) }
        #expect(abs(Loss.sampledAcceptance(draftProbabilities: q, logprobs: logprobs) - 0.625) < 1e-6)
        #expect(Loss.sampledAcceptance(draftProbabilities: [], logprobs: []) == 0)
    }

    /// A draft equal to the policy is always accepted: the score is ~1, where the mean of q over
    /// the same samples (E_p[q] = Σ p², the score this replaced) is far below it.
    @Test func aDraftEqualToThePolicyScoresOneNotTheMeanOfQ() throws {
        let config = TinyModels.llamaConfig(vocab: 64, hidden: 32, layers: 2)
        let weights = TinyModels.randomWeights(config: config, seed: 3)
        // A small (tied) embedding spreads the policy's distributions: E_p[q] is then far from 1.
        for i in 0..<weights.embedding.count { weights.embedding[i] *= 0.15 }
        let generator = Generator(model: LlamaModel(weights: weights))
        var examples: [TrainingExample] = [], logprobs: [[Float]] = []
        for i in 0..<6 {
            let prompt = [1, 2 + i, 7, 3]
            let out = try generator.generate(GenerationRequest(prompt: prompt, maxTokens: 24,
                                                               sampling: SamplingParameters(temperature: 1, seed: UInt64(i))))
            let tokens = prompt + out.tokens
            examples.append(TrainingExample(tokens: tokens,
                                            lossMask: tokens.indices.map { $0 >= prompt.count - 1 && $0 < tokens.count - 1 }))
            logprobs.append(out.logprobs)
        }
        let same = DraftTrainer(weights: weights, optimizer: AdamWConfig(schedule: .constant(0)))
        let probabilities = same.nextTokenProbabilities(examples)
        #expect(probabilities.count == logprobs.reduce(0) { $0 + $1.count })
        // Counted positions come in order, each the probability of the next (sampled) token.
        let q = probabilities.map(\.probability), p = logprobs.flatMap { $0 }
        let score = Loss.sampledAcceptance(draftProbabilities: q, logprobs: p)
        let meanQ = q.reduce(0.0) { $0 + Double($1) } / Double(q.count)
        #expect(score > 0.995, "a copy of the policy: \(score)")
        #expect(meanQ < 0.8, "E_p[q] for a spread-out policy: \(meanQ)")
        // A different draft scores lower.
        let otherWeights = TinyModels.randomWeights(config: config, seed: 4)
        for i in 0..<otherWeights.embedding.count { otherWeights.embedding[i] *= 0.15 }
        let other = DraftTrainer(weights: otherWeights, optimizer: AdamWConfig(schedule: .constant(0)))
        let otherScore = Loss.sampledAcceptance(draftProbabilities: other.nextTokenProbabilities(examples).map(\.probability), logprobs: p)
        #expect(otherScore < score - 0.1, "\(otherScore) vs \(score)")
    }

    /// Samples drawn at T = 0.7 with top-p 0.9: a copy of the policy scores ~1 when the draft's
    /// probabilities are taken at the same sampling, as trajectories now say it, and well under
    /// 1 at temperature 1 (the bias the trainer had at T ≠ 1).
    @Test func aCopyOfThePolicyScoresOneAtTheSamplesOwnTemperature() throws {
        let config = TinyModels.llamaConfig(vocab: 64, hidden: 32, layers: 2)
        let weights = TinyModels.randomWeights(config: config, seed: 3)
        for i in 0..<weights.embedding.count { weights.embedding[i] *= 0.15 }
        let params = SamplingParameters(temperature: 0.7, topP: 0.9)
        let generator = Generator(model: LlamaModel(weights: weights))
        var examples: [TrainingExample] = [], logprobs: [Float] = []
        for i in 0..<6 {
            let prompt = [1, 2 + i, 7, 3]
            var p = params
            p.seed = UInt64(i)
            let out = try generator.generate(GenerationRequest(prompt: prompt, maxTokens: 24, sampling: p))
            let tokens = prompt + out.tokens
            examples.append(TrainingExample(tokens: tokens,
                                            lossMask: tokens.indices.map { $0 >= prompt.count - 1 && $0 < tokens.count - 1 }))
            logprobs += out.logprobs
        }
        let same = DraftTrainer(weights: weights, optimizer: AdamWConfig(schedule: .constant(0)))
        let atSampling = same.nextTokenProbabilities(examples, sampling: examples.map { _ in params }).map(\.probability)
        let atOne = same.nextTokenProbabilities(examples).map(\.probability)
        let score = Loss.sampledAcceptance(draftProbabilities: atSampling, logprobs: logprobs)
        let biased = Loss.sampledAcceptance(draftProbabilities: atOne, logprobs: logprobs)
        #expect(score > 0.995, "a copy of the policy at the samples' sampling: \(score)")
        #expect(biased < score - 0.05, "scored at temperature 1: \(biased)")

    }
}
