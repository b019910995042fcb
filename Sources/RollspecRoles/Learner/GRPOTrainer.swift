import Foundation
import RollspecClient
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
    /// Mean |logp − logp_sample| over the response tokens, before the update: the gap an
    /// importance weight corrects when the workers sample from another precision.
    public var meanLogprobError: Float
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
    /// The passes' logits and their gradient, `[R, V]` each, kept from pass to pass.
    let logitStorage: ReusableBuffer, gradientStorage: ReusableBuffer

    /// - Parameters:
    ///   - weights: the policy, trained in place.
    ///   - learningRate: AdamW's (constant) rate for the RL updates.
    ///   - temperature: the sampling temperature (0, greedy, is treated as 1).
    ///   - klCoefficient: β of the KL penalty to the policy as it is now.
    ///   - products: `.bfloat16` computes the policy (and reference) as bfloat16 workers do,
    ///     with bfloat16 products (`TrainingModel.init(weights:products:)`); AdamW still
    ///     updates the float32 weights.
    public init(weights: LlamaWeights, learningRate: Float, temperature: Float = 1, clipEpsilon: Float = 0.2,
                klCoefficient: Float = 0, products: WeightPrecision = .float32) {
        self.weights = weights
        self.temperature = temperature > 0 ? temperature : 1
        self.clipEpsilon = clipEpsilon
        self.klCoefficient = klCoefficient
        model = TrainingModel(weights: weights, products: products)
        // No weight decay: a few hundred RL steps should move the policy only where rewards say.
        optimizer = AdamW(weights: weights, config: AdamWConfig(schedule: .constant(learningRate), weightDecay: 0))
        gradients = LlamaGradients(config: weights.config)
        // Grown by 512 rows: a pass a few response tokens longer than any before reuses them.
        logitStorage = ReusableBuffer(step: 512 * weights.config.vocabSize)
        gradientStorage = ReusableBuffer(step: 512 * weights.config.vocabSize)
        if klCoefficient > 0 {
            let copy = Dictionary(weights.namedTensors.map { ($0.name, $0.buffer.copy()) }, uniquingKeysWith: { a, _ in a })
            reference = TrainingModel(weights: LlamaWeights(config: weights.config, tensors: copy), products: products)
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
    public static func warmUp(_ weights: LlamaWeights, format: TaskFormat, steps: Int, batchSize: Int,
                              learningRate: Float, seed: UInt64, progress: (Int, Float) -> Void = { _, _ in }) {
        guard steps > 0 else { return }
        let trainer = DraftTrainer(weights: weights, optimizer: AdamWConfig(
            schedule: LearningRateSchedule(peak: learningRate, warmupSteps: min(20, steps / 10)), weightDecay: 0))
        var rng = RandomSource(seed: seed ^ 0x5741_524D)
        for step in 1...steps {
            let batch = (0..<batchSize).map { _ -> TrainingExample in
                let (prompt, completion) = format.demonstration(format.task.problem(&rng))
                // Position i predicts token i + 1: the completion's tokens are predicted from
                // positions prompt.count − 1 …
                let mask = (0..<(prompt.count + completion.count)).map { $0 >= prompt.count - 1 && $0 < prompt.count + completion.count - 1 }
                return TrainingExample(tokens: prompt + completion, lossMask: mask)
            }
            progress(step, trainer.step(batch).loss)
        }
    }

    // MARK: Policy gradient

    /// One GRPO update on `samples`: the loss is the mean over all their response tokens, its
    /// gradient accumulated over passes of at most `maxRowsPerPass` rows (whole samples; a
    /// longer sample gets a pass of its own), then one AdamW step. Samples of a pass with the
    /// same prompt (a GRPO group) continue one copy of it (`TrainingModel.forward(_:continuing:…)`),
    /// so a prompt costs its rows once per pass, not once per sample. The passes bound the
    /// update's memory: activations of every layer for those rows, and logits for their
    /// response tokens only.
    /// - Returns: nil when no sample has a response token (nothing is changed then).
    @discardableResult
    public func update(_ samples: [PolicySample], maxRowsPerPass: Int = 2048) -> GRPOUpdateStats? {
        let usable = samples.filter { !$0.responseTokens.isEmpty && !$0.promptTokens.isEmpty }
        let total = usable.reduce(0) { $0 + $1.responseTokens.count }
        guard total > 0 else { return nil }
        var passes: [[PolicySample]] = [[]], rows = 0, prompts: Set<[Int]> = []
        for s in usable {
            var n = s.responseTokens.count + (prompts.contains(s.promptTokens) ? 0 : s.promptTokens.count)
            if rows + n > maxRowsPerPass, !passes[passes.count - 1].isEmpty {
                passes.append([])
                rows = 0
                prompts = []
                n = s.promptTokens.count + s.responseTokens.count
            }
            passes[passes.count - 1].append(s)
            prompts.insert(s.promptTokens)
            rows += n
        }
        gradients.zero()
        var loss: Double = 0, ratioSum: Double = 0, klSum: Double = 0, clipped: Double = 0
        var maxError: Float = 0, errorSum: Double = 0
        for pass in passes {
            let p = accumulate(pass, share: Float(pass.reduce(0) { $0 + $1.responseTokens.count }) / Float(total))
            let weight = Double(p.tokens) / Double(total)
            loss += Double(p.result.result.loss)
            ratioSum += Double(p.result.meanRatio) * weight
            klSum += Double(p.result.meanKL) * weight
            clipped += Double(p.result.clipFraction) * weight
            maxError = max(maxError, p.maxLogprobError)
            errorSum += p.logprobErrorSum
        }
        let step = optimizer.step(gradients)
        model.weightsDidChange()
        return GRPOUpdateStats(loss: Float(loss), meanRatio: Float(ratioSum), maxLogprobError: maxError,
                               meanLogprobError: Float(errorSum / Double(max(total, 1))), clipFraction: Float(clipped), meanKL: Float(klSum), gradNorm: step.gradNorm,
                               tokens: total)
    }

    /// Forward, loss and backward of one pass, adding its gradient into `gradients`; the pass's
    /// loss is its mean times `share`, its part of all the update's response tokens.
    private func accumulate(_ samples: [PolicySample], share: Float)
        -> (result: PolicyGradientResult, tokens: Int, maxLogprobError: Float, logprobErrorSum: Double)
    {
        // Each distinct prompt once, then each response continuing it.
        var sequences: [[Int]] = [], continuing: [Int?] = [], rows: [Int] = [], tokens: [Int] = []
        var advantages: [Float] = [], old: [Float] = []
        var promptAt: [[Int]: (sequence: Int, lastRow: Int)] = [:]
        var offset = 0
        for s in samples {
            precondition(s.sampleLogprobs.count == s.responseTokens.count, "one sample logprob per response token")
            let prompt: (sequence: Int, lastRow: Int)
            if let seen = promptAt[s.promptTokens] {
                prompt = seen
            } else {
                prompt = (sequences.count, offset + s.promptTokens.count - 1)
                promptAt[s.promptTokens] = prompt
                sequences.append(s.promptTokens)
                continuing.append(nil)
                offset += s.promptTokens.count
            }
            for j in s.responseTokens.indices {
                // Response token j is predicted by the row before it: the prompt's last row for
                // the first, then the response's own rows.
                rows.append(j == 0 ? prompt.lastRow : offset + j - 1)
                tokens.append(s.responseTokens[j])
                advantages.append(s.advantage)
                old.append(s.sampleLogprobs[j])
            }
            sequences.append(s.responseTokens)
            continuing.append(prompt.sequence)
            offset += s.responseTokens.count
        }
        let vocab = weights.config.vocabSize
        var referenceLogprobs: [Float]?
        if let reference {
            let z = reference.forward(sequences, continuing: continuing, logitRows: rows)
            scale(z, by: 1 / temperature)
            referenceLogprobs = Loss.tokenLogprobs(logits: z, vocab: vocab, tokens: tokens)
        }
        let logits = model.forward(sequences, continuing: continuing, logitRows: rows, logitsInto: logitStorage)
        scale(logits, by: 1 / temperature)
        let pg = Loss.policyGradient(
            logits: logits, vocab: vocab, tokens: tokens, advantages: advantages, oldLogprobs: old,
            referenceLogprobs: referenceLogprobs, clipEpsilon: clipEpsilon, klCoefficient: klCoefficient,
            rowWeights: [Float](repeating: share, count: rows.count), gradientInto: gradientStorage)
        // d/dz of f(z / T) is f'(z / T) / T.
        scale(pg.result.dLogits, by: 1 / temperature)
        model.backward(pg.result.dLogits.pointer, into: gradients)
        let errors = zip(pg.logprobs, old).map { abs($0 - $1) }
        return (pg, rows.count, errors.max() ?? 0, errors.reduce(0) { $0 + Double($1) })
    }

    private func scale(_ b: FloatBuffer, by factor: Float) {
        guard factor != 1 else { return }
        scaleInPlace(b.pointer, factor, count: b.count)
    }
}
