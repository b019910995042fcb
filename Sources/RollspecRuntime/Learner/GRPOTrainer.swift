import Foundation
import RollspecKernels
import RollspecModel
import RollspecTraining

/// One sampled response as the policy-gradient update sees it.
public struct PolicySample: Sendable, Equatable {
    /// Token ids of the prompt, at least one.
    public var promptTokens: [Int]
    /// `[T]` sampled tokens.
    public var responseTokens: [Int]
    /// `[T]` log-probability of each response token under the policy that sampled it.
    public var sampleLogprobs: [Float]
    /// The sequence's advantage, applied to every one of its tokens.
    public var advantage: Float

    public init(promptTokens: [Int], responseTokens: [Int], sampleLogprobs: [Float], advantage: Float) {
        self.promptTokens = promptTokens
        self.responseTokens = responseTokens
        self.sampleLogprobs = sampleLogprobs
        self.advantage = advantage
    }
}

/// What one policy-gradient update did.
public struct GRPOUpdateStats: Sendable, Equatable {
    public var loss: Float
    /// Mean of exp(logp − logp_sample) over the response tokens, before the update: 1 when the
    /// learner's own forward agrees with the sampler's logprobs.
    public var meanRatio: Float
    /// Largest |logp − logp_sample| over the response tokens, before the update.
    public var maxLogprobError: Float
    public var clipFraction: Float
    /// Mean k3 estimate of the KL to the reference policy (0 without one).
    public var meanKL: Float
    public var gradNorm: Float
    /// Response tokens in the update.
    public var tokens: Int
}

/// Trains a policy in place: a supervised warm-up on task demonstrations, then GRPO updates
/// (`Loss.policyGradient`) on sampled responses with AdamW.
///
/// The policy's weights are shared by reference: after an update, `weights` is the new policy,
/// ready to publish. Sampling at temperature T draws from softmax(z / T), so the learner's
/// logprobs and their gradient are taken at the same T (top-k / top-p truncation is not
/// modelled: with it the sampler's logprobs are those of the truncated distribution and the
/// first ratio differs from 1).
public final class GRPOTrainer {
    public let weights: LlamaWeights
    public let temperature: Float
    public let clipEpsilon: Float
    public let klCoefficient: Float
    private let model: TrainingModel
    private let optimizer: AdamW
    private let gradients: LlamaGradients
    /// The frozen reference policy of the KL penalty (a copy taken at creation), when β > 0.
    private let reference: TrainingModel?

    /// - Parameters:
    ///   - weights: the policy, trained in place.
    ///   - learningRate: AdamW's (constant) rate for the RL updates.
    ///   - temperature: the sampling temperature (0, greedy, is treated as 1).
    ///   - klCoefficient: β of the KL penalty to the policy as it is now.
    public init(weights: LlamaWeights, learningRate: Float, temperature: Float = 1, clipEpsilon: Float = 0.2,
                klCoefficient: Float = 0) {
        self.weights = weights
        self.temperature = temperature > 0 ? temperature : 1
        self.clipEpsilon = clipEpsilon
        self.klCoefficient = klCoefficient
        model = TrainingModel(weights: weights)
        // No weight decay: a few hundred RL steps should move the policy only where rewards say.
        optimizer = AdamW(weights: weights, config: AdamWConfig(schedule: .constant(learningRate), weightDecay: 0))
        gradients = LlamaGradients(config: weights.config)
        if klCoefficient > 0 {
            let copy = Dictionary(weights.namedTensors.map { ($0.name, $0.buffer.copy()) }, uniquingKeysWith: { a, _ in a })
            reference = TrainingModel(weights: LlamaWeights(config: weights.config, tensors: copy))
        } else {
            reference = nil
        }
    }

    // MARK: Warm-up

    /// Supervised warm-up: cross-entropy on demonstration completions (the prompt is context
    /// only), AdamW with a short linear warmup of the rate, then constant.
    ///
    /// - Parameters:
    ///   - steps: optimiser steps.
    ///   - batchSize: problems per step.
    ///   - progress: called after each step with (step, loss); the learner logs every few.
    public static func warmUp(_ weights: LlamaWeights, task: any VerifiableTask, steps: Int, batchSize: Int,
                              learningRate: Float, seed: UInt64, progress: (Int, Float) -> Void = { _, _ in }) {
        guard steps > 0 else { return }
        let trainer = DraftTrainer(weights: weights, optimizer: AdamWConfig(
            schedule: LearningRateSchedule(peak: learningRate, warmupSteps: min(20, steps / 10)), weightDecay: 0))
        let tokenizer = ByteTokenizer()
        var rng = RandomSource(seed: seed ^ 0x5741_524D)
        for step in 1...steps {
            let batch = (0..<batchSize).map { _ -> TrainingExample in
                let p = task.problem(&rng)
                let prompt = tokenizer.encode(p.prompt), completion = tokenizer.encode(task.demonstration(for: p))
                // Position i predicts token i + 1: the completion's tokens are predicted from
                // positions prompt.count − 1 …
                let mask = (0..<(prompt.count + completion.count)).map { $0 >= prompt.count - 1 && $0 < prompt.count + completion.count - 1 }
                return TrainingExample(tokens: prompt + completion, lossMask: mask)
            }
            progress(step, trainer.step(batch).loss)
        }
    }

    // MARK: Policy gradient

    /// One GRPO update on `samples` (all of them in one batch).
    /// - Returns: nil when no sample has a response token (nothing is changed then).
    @discardableResult
    public func update(_ samples: [PolicySample]) -> GRPOUpdateStats? {
        var sequences: [[Int]] = [], rows: [Int] = [], tokens: [Int] = []
        var advantages: [Float] = [], old: [Float] = []
        var offset = 0
        for s in samples where !s.responseTokens.isEmpty && !s.promptTokens.isEmpty {
            precondition(s.sampleLogprobs.count == s.responseTokens.count, "one sample logprob per response token")
            let sequence = s.promptTokens + s.responseTokens
            for j in s.responseTokens.indices {
                // The logits of row p + j − 1 predict response token j.
                rows.append(offset + s.promptTokens.count + j - 1)
                tokens.append(s.responseTokens[j])
                advantages.append(s.advantage)
                old.append(s.sampleLogprobs[j])
            }
            sequences.append(sequence)
            offset += sequence.count
        }
        guard !rows.isEmpty else { return nil }
        let vocab = weights.config.vocabSize
        let logits = model.forward(sequences, logitRows: rows)
        scale(logits, by: 1 / temperature)

        var maxError: Float = 0
        for r in rows.indices {
            let logp = logSoftmax(logits.pointer + r * vocab, vocabSize: vocab, at: tokens[r])
            maxError = max(maxError, abs(logp - old[r]))
        }
        var referenceLogprobs: [Float]?
        if let reference {
            let z = reference.forward(sequences, logitRows: rows)
            scale(z, by: 1 / temperature)
            referenceLogprobs = rows.indices.map { logSoftmax(z.pointer + $0 * vocab, vocabSize: vocab, at: tokens[$0]) }
        }
        let pg = Loss.policyGradient(
            logits: logits, vocab: vocab, tokens: tokens, advantages: advantages, oldLogprobs: old,
            referenceLogprobs: referenceLogprobs, clipEpsilon: clipEpsilon, klCoefficient: klCoefficient)
        // d/dz of f(z / T) is f'(z / T) / T.
        scale(pg.result.dLogits, by: 1 / temperature)
        gradients.zero()
        model.backward(pg.result.dLogits.pointer, into: gradients)
        let step = optimizer.step(gradients)
        return GRPOUpdateStats(loss: pg.result.loss, meanRatio: pg.meanRatio, maxLogprobError: maxError,
                               clipFraction: pg.clipFraction, meanKL: pg.meanKL, gradNorm: step.gradNorm,
                               tokens: rows.count)
    }

    private func scale(_ b: FloatBuffer, by factor: Float) {
        guard factor != 1 else { return }
        for i in 0..<b.count { b.pointer[i] *= factor }
    }
}
